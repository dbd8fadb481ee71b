"""Real HTTP servers on a loopback port, for the tests of the HTTP client (`SendKitClient`).

The client's tests talk over a real socket to a server the test starts itself, in its own event
loop, on 127.0.0.1 and a port the system picks: they see only what goes over the wire, nothing of
the HTTP library the client is built on. Two servers, each an async context manager whose `url`
is the base URL (`http://127.0.0.1:PORT`, no trailing slash) to give the client as `base_url`:

- `Answers`: an `aiohttp.web` server that answers from queues, one per (method, path), each
  answer used once, in the order queued::

      async with Answers() as server, client(base_url=server.url) as c:
          server.add("PATCH", "/v1/leads/x", status=429, headers={"Retry-After": "2"})
          reply = await c.send(update)
      (arrival,) = server.requests  # method, path, query, headers, body

  `payload=` sends JSON; `handler=` answers in the queue's place when a test needs the request
  itself or an answer no queue holds (a body that never ends). A request nothing was queued for
  is answered `599 No Answer Queued`, so that the test fails loudly.
- `RawServer`: a bare TCP server (`asyncio.start_server`) for what no HTTP server would send. It
  reads each request (head and body), records it, then sends the bytes given, verbatim, and
  closes the connection (`RawServer(b"HTTP/1.1 2x0 ...")`; with `keep_alive=True` it waits for
  the next request, and `RawServer(a, b, c)` answers the first with a, the second with b...); or
  closes it without a word (`RawServer("close")`); or never answers (`RawServer("silent")`: the
  connection waits for an event that is set only when the server stops); or hands the writer
  to a function of the test's.

Tests import them from here (`from tests.http_server import Answers, RawServer`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Final, Literal

from aiohttp import web
from multidict import CIMultiDictProxy

from bulk_updater.sandbox import start_app

__all__ = ["OK", "Answers", "Arrival", "Handler", "RawAnswer", "RawServer"]

#: Answers a request of `Answers` in a queue's place.
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: The status of a request nothing was queued for (no real server sends it).
UNANSWERED: Final = 599

_UNSET: Final = object()


@dataclass(frozen=True)
class Arrival:
    """One request as `Answers` received it."""

    method: str
    path: str  # as sent, percent-encoded, without the query
    query: dict[str, str]  # decoded
    headers: CIMultiDictProxy[str]  # case-insensitive, each header as many times as it was sent
    body: bytes


class Answers:
    """An HTTP server on 127.0.0.1 answering from queues per (method, path); see the module."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        """`tls`: serve https with this context; the `url` is then `https://localhost:PORT`."""
        self.tls = tls
        self.requests: list[Arrival] = []
        self._queues: defaultdict[tuple[str, str], deque[Handler]] = defaultdict(deque)
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        """The base URL, e.g. `http://127.0.0.1:41234`."""
        if self._url is None:
            raise RuntimeError("the server is not running; use 'async with Answers()'")
        return self._url

    def add(
        self,
        method: str,
        path: str,
        *,
        status: int = 200,
        body: bytes | str = b"",
        payload: object = _UNSET,
        headers: Mapping[str, str] | None = None,
        content_type: str | None = "application/json",
        reason: str | None = None,
        handler: Handler | None = None,
    ) -> None:
        """Queue the next answer to `method` `path` (the path as sent, without the query).

        `payload` is sent as JSON (instead of `body`); `content_type` is the Content-Type header
        (None: aiohttp's default), `reason` the status line's phrase (None: the standard one).
        `handler`, when given, answers instead, and the other arguments are ignored.
        """
        if handler is None:
            data = body.encode() if isinstance(body, str) else body
            if payload is not _UNSET:
                data = json.dumps(payload).encode()
            fields = dict(headers or {})
            if content_type is not None:
                fields["Content-Type"] = content_type
            handler = _canned(status, data, fields, reason)
        self._queues[method.upper(), path].append(handler)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.rel_url.raw_path
        body = await request.read()
        self.requests.append(
            Arrival(request.method, path, dict(request.query), request.headers, body)
        )
        queue = self._queues.get((request.method, path))
        if not queue:
            text = f"nothing was queued for {request.method} {path}"
            return web.Response(status=UNANSWERED, reason="No Answer Queued", text=text)
        return await queue.popleft()(request)

    async def __aenter__(self) -> Answers:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        runner = self._runner = await start_app(app, "127.0.0.1", 0, tls=self.tls)
        where = "https://localhost" if self.tls else "http://127.0.0.1"
        self._url = f"{where}:{runner.addresses[0][1]}"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        runner, self._runner, self._url = self._runner, None, None
        if runner is not None:
            await runner.cleanup()


def _canned(status: int, body: bytes, headers: dict[str, str], reason: str | None) -> Handler:
    async def answer(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, reason=reason, body=body, headers=headers)

    return answer


#: What `RawServer` does with a request: send bytes verbatim, call a function with the writer
#: (to write, close or do nothing), close the connection at once ("close"), or never answer
#: ("silent", until the server stops).
RawAnswer = bytes | Callable[[asyncio.StreamWriter], object] | Literal["close", "silent"]


class RawServer:
    """A TCP server on 127.0.0.1 that answers the n-th request with `answers[n]` (the last one
    again once they run out), or not at all.

    After bytes the connection is closed, unless `keep_alive` (then it waits for the next
    request). `requests` holds each request as it arrived (head and body, as bytes), `arrived` is
    set as each one does, `connections` counts the connections accepted.
    """

    def __init__(self, *answers: RawAnswer, keep_alive: bool = False) -> None:
        self.answers = list(answers)
        self.keep_alive = keep_alive
        self.requests: list[bytes] = []
        self.connections = 0
        self.arrived = asyncio.Event()
        self.port = 0
        self._server: asyncio.Server | None = None
        self._stopping = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        """The base URL, e.g. `http://127.0.0.1:41234`."""
        if self._server is None:
            raise RuntimeError("the server is not running; use 'async with RawServer(...)'")
        return f"http://127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            while not writer.is_closing():
                self.requests.append(await _read_request(reader))
                self.arrived.set()
                answer = self.answers[min(len(self.requests), len(self.answers)) - 1]
                if answer == "silent":
                    await self._stopping.wait()
                    return
                if answer == "close":
                    return
                if callable(answer):
                    answer(writer)
                else:
                    writer.write(answer)
                await writer.drain()
                if not self.keep_alive and not callable(answer):
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # the client went away first
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            self._tasks.discard(task)

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        server, self._server = self._server, None
        self._stopping.set()
        if server is not None:
            server.close()
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await server.wait_closed()


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    """One request, head and body (by Content-Length, or chunked), so that none is left unread:
    closing a socket with unread bytes resets the connection instead of ending it."""
    head = await reader.readuntil(b"\r\n\r\n")
    fields = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        fields[name.strip().lower()] = value.strip().lower()
    if fields.get(b"transfer-encoding") == b"chunked":
        body = b""
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            body += size_line + await reader.readexactly(size + 2)  # the chunk and its CRLF
            if size == 0:
                return head + body
    return head + await reader.readexactly(int(fields.get(b"content-length") or 0))


#: The API's success answer, as bytes on the wire.
OK: Final = b'HTTP/1.1 200 OK\r\nContent-Length: 16\r\n\r\n{"success":true}'

"""HTTP/1.1 over a pool of kept-alive connections: the two requests the client sends, and nothing
else (no redirects, cookies, proxies, compression or upgrades).

Why not aiohttp's `ClientSession`: a request through it costs about 100 µs of CPU on the project's
machine, most of it in setting up what these requests never use (URL and header merging, cookie
jars, traces, a task to write each body), and at `--rate 0` that cost is the job's speed. Here a
request is one `write` of bytes made once per job but for the path and body, and its answer is
parsed by `httptools` (llhttp, Node's parser, in C): about 12 µs of CPU a request (`make bench`,
the throughput measure). What the answer says is judged in `client.py` and `answers.py`.

What is read of an answer is bounded: its head at `MAX_HEAD` bytes, its body at the caller's
`limit` (the rest is never read: the connection is closed instead of drained). A connection is
reused only after an answer that ended where the protocol says it ends, and that did not say
`Connection: close`; any failure, cancellation or doubt closes it.
"""

from __future__ import annotations

import asyncio
import collections
import socket
import ssl
from collections.abc import Callable
from typing import Final, NamedTuple, cast

import httptools

MAX_HEAD: Final = 64 * 1024  # status line and headers; aiohttp allows 8 KiB a line
#: The headers `answers.py` and the client read, by their lowercase names.
KEPT: Final = frozenset(
    name.encode()
    for name in (
        "retry-after",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
        "ratelimit",
        "ratelimit-policy",
        "location",
    )
)
_LOST: Final = "the server closed the connection without answering"
_TOO_BIG: Final = f"the server's answer has more than {MAX_HEAD >> 10} KiB of headers"


class TransportError(Exception):
    """No HTTP answer arrived: the request timed out, the connection failed, or the host's name
    does not resolve (`kind` "dns": not transient, retrying cannot help)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class Headers(dict[str, str]):
    """The headers kept of an answer (`KEPT`), looked up by any spelling of their name; the first
    of a repeated header wins."""

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return super().get(name.lower(), default)


class Answer(NamedTuple):
    status: int
    reason: str
    headers: Headers
    body: bytes
    complete: bool  # False: the body was longer than the limit, and only its start was read


class Origin(NamedTuple):
    """Where the requests go: `host` as it is connected to, `authority` as the Host header says."""

    https: bool
    host: str
    port: int
    authority: str


class Pool:
    """At most `limit` connections to one origin; a request takes an idle one or opens one."""

    def __init__(
        self,
        origin: Origin,
        *,
        limit: int,
        connect_timeout: float,
        header_lines: bytes,
        body_limit: int,
    ) -> None:
        """`header_lines` go out with every request (each `Name: value\\r\\n`, Host among them)."""
        self.origin = origin
        self._limit = max(1, limit)
        self._connect_timeout = connect_timeout
        self._lines = header_lines
        self._body_limit = body_limit
        self._idle: list[_Connection] = []
        self._open: set[_Connection] = set()
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._ssl: ssl.SSLContext | None = None
        self._closed = False

    async def request(
        self,
        method: bytes,
        target: bytes,
        body: bytes | None,
        on_sent: Callable[[], None] | None = None,
    ) -> Answer:
        """One exchange; `on_sent` is called as the request is written. Raises `TransportError`
        when no whole answer came (a timeout is the caller's: it cancels)."""
        head = method + b" " + target + b" HTTP/1.1\r\n" + self._lines
        if body is not None:
            head += b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        else:
            head += b"\r\n"
        connection = await self._take()
        try:
            answer = await connection.exchange(head, on_sent)
        except BaseException:
            connection.abort()
            self._forget(connection)
            raise
        if connection.reusable and not self._closed:
            self._idle.append(connection)
            self._wake()
        else:
            connection.abort()
            self._forget(connection)
        return answer

    async def close(self) -> None:
        self._closed = True
        for connection in list(self._open):
            connection.abort()
        self._open.clear()
        self._idle.clear()
        while self._waiters:  # they find the pool closed
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    async def _take(self) -> _Connection:
        while True:
            if self._closed:
                raise RuntimeError("the client is closed")
            idle = self._idle
            while idle:
                connection = idle.pop()
                if connection.usable:
                    return connection
                self._forget(connection)
            if len(self._open) < self._limit:
                return await self._connect()
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                elif waiter.done() and not waiter.cancelled():
                    self._wake()  # woken, but leaving: the place goes to the next in line
                raise

    def _forget(self, connection: _Connection) -> None:
        self._open.discard(connection)
        self._wake()

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def _connect(self) -> _Connection:
        origin = self.origin
        loop = asyncio.get_running_loop()
        connection = _Connection(self._body_limit)
        self._open.add(connection)
        try:
            async with asyncio.timeout(self._connect_timeout):
                if origin.https:
                    await loop.create_connection(
                        lambda: connection,
                        origin.host,
                        origin.port,
                        ssl=self._ssl_context(),
                        server_hostname=origin.host,
                    )
                else:
                    await loop.create_connection(lambda: connection, origin.host, origin.port)
        except BaseException as exc:
            connection.abort()
            self._forget(connection)
            if isinstance(exc, Exception):
                raise _connect_error(origin, exc) from exc
            raise
        return connection

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl


def _connect_error(origin: Origin, exc: Exception) -> TransportError:
    where = f"{origin.host}:{origin.port}"
    if isinstance(exc, TimeoutError):
        return TransportError("timeout", f"no connection to {where} within the timeout")
    if isinstance(exc, socket.gaierror):
        return TransportError(
            "dns",
            f"the host {origin.host} is not known (its name does not resolve); check --base-url",
        )
    if isinstance(exc, ssl.SSLError):
        return TransportError("connection", f"TLS with {where} failed ({exc.reason or exc})")
    if isinstance(exc, OSError):
        return TransportError("connection", f"cannot connect to {where} ({exc.strerror or exc})")
    return TransportError("connection", f"cannot connect to {where} ({type(exc).__name__})")


class _Connection(asyncio.Protocol):
    """One kept-alive connection: one exchange at a time, its answer parsed as it arrives."""

    def __init__(self, body_limit: int) -> None:
        self._limit = body_limit
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[Answer] | None = None
        self.closed = False
        self.reusable = False
        self._reset()

    def _reset(self) -> None:
        self._reason = b""
        self._headers = Headers()
        self._body: list[bytes] = []
        self._size = 0
        self._head_size = 0  # of this answer's status line and headers, as parsed
        self._received = 0  # bytes received before its head was whole
        self._problem = ""
        self._headers_done = False
        self._framed = False  # a Content-Length or chunked body: its end is known without EOF

    @property
    def usable(self) -> bool:
        return not self.closed and self._transport is not None

    async def exchange(self, data: bytes, on_sent: Callable[[], None] | None) -> Answer:
        transport = self._transport
        if transport is None or self.closed:
            raise TransportError("connection", _LOST)
        self.reusable = False
        self._reset()
        waiter = self._waiter = asyncio.get_running_loop().create_future()
        transport.write(data)
        if on_sent is not None:
            on_sent()
        try:
            answer: Answer = await waiter
        finally:
            self._waiter = None
        return answer

    def abort(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.abort()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass of it

    def data_received(self, data: bytes) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():  # nothing was asked: a server talking out of turn
            self.abort()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail("the server switched protocols instead of answering")
        except httptools.HttpParserError as exc:
            self._fail(self._problem or f"the server's answer is not valid HTTP/1.1 ({exc})")
        else:
            if not self._headers_done:  # a head that does not end: held one read past the bound
                self._received += len(data)
                if self._received > MAX_HEAD:
                    self._fail(_TOO_BIG)

    def eof_received(self) -> bool:
        return False  # close; connection_lost says what that means

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._headers_done and not self._framed and exc is None:
            self._answer(True)  # a body that ends with the connection, as HTTP/1.0 allows
            return
        message = _LOST if not self._headers_done else "the server closed the connection mid-answer"
        if exc is not None:
            message = f"{message} ({getattr(exc, 'strerror', None) or exc})"
        waiter.set_exception(TransportError("connection", message))

    # httptools callbacks

    def on_message_begin(self) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():  # a second answer to one request: trust none after
            self.abort()
            raise _Enough

    def on_status(self, status: bytes) -> None:
        self._reason += status
        self._count(len(status))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value))
        key = name.lower()
        if key in KEPT:
            self._headers.setdefault(key.decode("latin-1"), value.decode("latin-1"))
        elif key == b"content-length" or key == b"transfer-encoding":
            self._framed = True

    def on_headers_complete(self) -> None:
        self._headers_done = True

    def on_body(self, body: bytes) -> None:
        room = self._limit - self._size
        if len(body) > room:  # longer than is read: answer with its start, never drain the rest
            if room > 0:
                self._body.append(body[:room])
            self._size = self._limit
            self._answer(False)
            self.abort()
            raise _Enough
        self._body.append(body)
        self._size += len(body)

    def on_message_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200:  # an interim answer (100 Continue, 103 Early Hints): wait on
            self._reset()
            return
        self.reusable = self._parser.should_keep_alive()
        self._answer(True)

    def _count(self, size: int) -> None:
        """Bound the head when it arrived in one read (and was parsed in one go)."""
        self._head_size += size
        if self._head_size > MAX_HEAD:
            self._problem = _TOO_BIG
            raise _Enough

    def _answer(self, complete: bool) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        status = self._parser.get_status_code()
        reason = self._reason.decode("utf-8", "replace")
        body = b"".join(self._body)
        waiter.set_result(Answer(status, reason, self._headers, body, complete))

    def _fail(self, message: str) -> None:
        waiter = self._waiter
        self.abort()
        if waiter is not None and not waiter.done():
            waiter.set_exception(TransportError("connection", message))


class _Enough(Exception):
    """Raised in a callback to stop the parser once enough of a body was read."""

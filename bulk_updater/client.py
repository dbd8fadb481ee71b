"""The one place that speaks HTTP: headers, URL, body, and aiohttp's errors mapped to ours.

A `Sender` turns one `LeadUpdate` into one `PATCH /v1/leads/{id}` and returns a `Reply`, or raises
`TransportError` when no answer came (timeout, refused or dropped connection, unknown host). It
does not retry, classify or pace: that is `retry.py`, `deliver.py` and `limits/`. What it reads
of an answer is bounded (`answers.MAX_BODY`), and the key is removed from every text a server
sends back.

The timeout of a request is kept by a `Watchdog`, not by aiohttp: its `ClientTimeout(total=...)`
schedules a timer and enters a timer context twice for every request, the largest part of
aiohttp's per-request cost that the engine can avoid (`make bench` profiles the fast path).
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable
from importlib.metadata import version
from types import TracebackType
from typing import Any, Final, Literal, Protocol, runtime_checkable
from urllib.parse import quote

import aiohttp
from yarl import URL

from .answers import (
    MAX_BODY,
    Redactor,
    Reply,
    describe_error,
    is_success,
    one_line,
    parse_retry_after,
    rate_headers,
    search_page,
    unexpected_success,
)
from .models import LeadUpdate

__all__ = [
    "Reply",
    "Searcher",
    "SendKitClient",
    "Sender",
    "TransportError",
    "describe_error",
    "dumps",
    "parse_retry_after",
]

USER_AGENT: Final = f"bulk-updater/{version('bulk-updater')}"
SEARCH_PAGE: Final = 100  # leads per page of a search, the API's most

try:  # orjson is faster; the standard library gives the same bytes.
    import orjson

    dumps: Callable[[Any], bytes] = orjson.dumps
except ImportError:  # pragma: no cover - depends on the environment

    def dumps(obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


class TransportError(Exception):
    """No HTTP answer arrived: the request timed out, the connection failed, or the host's name
    does not resolve (`kind` "dns": not transient, retrying cannot help)."""

    def __init__(self, kind: Literal["timeout", "connection", "dns"], message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class Watchdog:
    """One task that times out every request in flight, instead of one timer per request.

    Each request notes its deadline; every `tick` (an eighth of the timeout, at most a second)
    the watchdog cancels the requests past theirs, and `expired()` tells their `send` that the
    cancellation was a timeout. So a request times out between `timeout` and `timeout + tick`.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.tick = min(1.0, max(timeout / 8, 0.005))
        self.deadlines: dict[asyncio.Task[Any], float] = {}
        self._expired: set[asyncio.Task[Any]] = set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._watch())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def expired(self, task: asyncio.Task[Any]) -> bool:
        """Whether `task` was cancelled for its timeout alone (and, if so, take that back)."""
        return task in self._expired and task.uncancel() == 0

    def forget(self, task: asyncio.Task[Any]) -> None:
        del self.deadlines[task]
        self._expired.discard(task)

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.tick)
            now = loop.time()
            for task, deadline in self.deadlines.items():
                if deadline <= now and task not in self._expired:
                    self._expired.add(task)
                    task.cancel()


class Sender(Protocol):
    """Anything that can send one update; the engine's tests use fakes of this."""

    async def send(self, update: LeadUpdate) -> Reply: ...


@runtime_checkable
class Searcher(Protocol):
    """Anything that can search leads, one page at a time (matching rows by email needs it)."""

    async def search(self, text: str, cursor: str | int | None) -> Reply:
        """`GET /v1/leads?search=text`; a 2xx `Reply` carries the `page`.

        `cursor` is the previous page's `nextCursor`, or (a number) the page to read of an API
        that pages by number; None for the first page.
        """


async def read_bounded(
    response: aiohttp.ClientResponse, limit: int = MAX_BODY
) -> tuple[bytes, bool]:
    """At most `limit` bytes of the body, and whether that is all of it.

    The rest is never read: leaving the response then closes the connection instead of
    draining a body of any size.
    """
    length = response.content_length
    if length is not None and length <= limit:
        return await response.read(), True
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await response.content.read(limit - size)
        if not chunk:
            return b"".join(chunks), True
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks), response.content.at_eof()


class SendKitClient:
    """Sends PATCH /v1/leads/{id} over one pooled aiohttp session (an async context manager)."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str,
        timeout: float,
        concurrency: int,
        workspace_id: str | None = None,
        on_departure: Callable[[], None] | None = None,
    ) -> None:
        """`on_departure` is called as each request is written, in the task that sends it (a
        shared rate budget moves the record of a start that left late); None costs nothing."""
        origin = URL(base_url)
        self._scheme, self._authority = origin.scheme, origin.raw_authority
        self._headers = {
            "X-Api-Key": api_key,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
        }
        if workspace_id:
            self._headers["X-Workspace-Id"] = workspace_id
        # Connecting keeps aiohttp's timeout (it is once per connection); the rest is ours.
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout)
        self._watchdog = Watchdog(timeout if math.isfinite(timeout) else 86_400.0)
        self._redact = Redactor(api_key, workspace_id)
        self._limit = concurrency
        self._traces = _departures(on_departure) if on_departure is not None else []
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> SendKitClient:
        connector = aiohttp.TCPConnector(limit=self._limit, limit_per_host=0)
        self._session = aiohttp.ClientSession(
            headers=self._headers,
            timeout=self._timeout,
            connector=connector,
            trace_configs=self._traces or None,
        )
        self._watchdog.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._watchdog.close()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def url_for(self, lead_id: str) -> URL:
        """The request URL; the id is percent-encoded even though validation allows only tokens."""
        if lead_id in ("", ".", ".."):  # encoding leaves these as they are; servers resolve them
            raise ValueError(f"refusing to build a URL for the lead id {lead_id!r}")
        path = "/v1/leads/" + quote(lead_id, safe="")
        return URL.build(scheme=self._scheme, authority=self._authority, path=path, encoded=True)

    async def send(self, update: LeadUpdate) -> Reply:
        url = self.url_for(update.id)
        return await self._exchange("PATCH", url, dumps(update.body()), search=False)

    async def search(self, text: str, cursor: str | int | None) -> Reply:
        """One page (100 leads at most) of the API's text search; never leaves `/v1/leads`."""
        query = {"search": text, "limit": str(SEARCH_PAGE)}
        if isinstance(cursor, int):
            query["page"] = str(cursor)
        elif cursor is not None:
            query["cursor"] = cursor
        url = URL.build(scheme=self._scheme, authority=self._authority, path="/v1/leads")
        return await self._exchange("GET", url.with_query(query), None, search=True)

    async def _exchange(self, method: str, url: URL, data: bytes | None, *, search: bool) -> Reply:
        """One request and its answer, aiohttp's errors mapped to `TransportError`."""
        session = self._session
        if session is None:
            raise RuntimeError("SendKitClient is not open; use `async with`")
        watchdog = self._watchdog
        task = asyncio.current_task()
        assert task is not None
        watchdog.deadlines[task] = task.get_loop().time() + watchdog.timeout
        try:
            async with session.request(method, url, data=data, allow_redirects=False) as response:
                body, complete = await read_bounded(response)
                reply = self._reply(response, body, complete)
                if not search or reply.status >= 300 or reply.malformed:
                    return reply
                page = search_page(body, complete, SEARCH_PAGE)
                if page is None:
                    message = unexpected_success(response.status, body, self._redact)
                    code = "UNEXPECTED_ANSWER"
                    return Reply(reply.status, code, message, headers=reply.headers, malformed=True)
                return Reply(reply.status, headers=reply.headers, page=page)
        except asyncio.CancelledError:
            if watchdog.expired(task):
                raise TransportError("timeout", "no answer within the timeout") from None
            raise
        except TimeoutError:
            raise TransportError("timeout", "no answer within the timeout") from None
        except aiohttp.ClientConnectorDNSError as exc:
            raise TransportError(
                "dns",
                f"the host {exc.host} is not known (its name does not resolve); check --base-url",
            ) from exc
        except aiohttp.ClientError as exc:
            # aiohttp quotes what the server sent (a bad status or header line): it may hold a key.
            message = one_line(_connection_message(exc), redact=self._redact)
            raise TransportError("connection", message) from exc
        finally:
            watchdog.forget(task)

    def _reply(self, response: aiohttp.ClientResponse, body: bytes, complete: bool) -> Reply:
        status = response.status
        headers = rate_headers(response.headers, self._redact)
        if status < 300:
            if is_success(body, complete):
                return Reply(status, headers=headers)
            message = unexpected_success(status, body, self._redact)
            return Reply(status, "UNEXPECTED_ANSWER", message, headers=headers, malformed=True)
        code, message = describe_error(status, body, response.reason or "", self._redact)
        if 300 <= status < 400:
            where = one_line(response.headers.get("Location", "elsewhere"), 200, self._redact)
            message = f"the API redirected to {where}; check --base-url"
        retry_after = parse_retry_after(headers.get("Retry-After")) if headers else None
        return Reply(status, code, message, retry_after, headers)


def _departures(on_departure: Callable[[], None]) -> list[aiohttp.TraceConfig]:
    """A trace that calls `on_departure` as the request is written: with its body (a PATCH's
    headers wait for it, and aiohttp writes it from a task of its own, a loop turn later), or
    with its headers when it has none (a search)."""

    async def headers_sent(
        _: aiohttp.ClientSession, __: object, params: aiohttp.TraceRequestHeadersSentParams
    ) -> None:
        if params.method == "GET":
            on_departure()

    async def body_sent(*_: object) -> None:
        on_departure()

    trace = aiohttp.TraceConfig()
    trace.on_request_headers_sent.append(headers_sent)
    trace.on_request_chunk_sent.append(body_sent)
    return [trace]


def _connection_message(exc: aiohttp.ClientError) -> str:
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the server closed the connection without answering"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect to {exc.host}:{exc.port} ({exc.strerror or exc.os_error})"
    return f"{type(exc).__name__}: {exc}".strip()

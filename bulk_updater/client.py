"""The one place that speaks HTTP: headers, URL, body, and the transport's errors mapped to ours.

A `Sender` turns one `LeadUpdate` into one `PATCH /v1/leads/{id}` and returns a `Reply`, or raises
`TransportError` when no answer came (timeout, refused or dropped connection, unknown host). It
does not retry, classify or pace: that is `retry.py`, `deliver.py` and `limits/`. What it reads
of an answer is bounded (`answers.MAX_BODY`), and the key is removed from every text a server
sends back. The bytes go over `transport.Pool` (HTTP/1.1, kept-alive connections).

The timeout of a request is kept by a `Watchdog`, not by a timer per request: one task cancels
every request past its deadline.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable
from importlib.metadata import version
from types import TracebackType
from typing import Any, Final, Protocol, runtime_checkable
from urllib.parse import quote, unquote

from yarl import URL

from .answers import (
    MAX_BODY,
    RATE_HEADERS,
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
from .transport import Answer, Origin, Pool, TransportError

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


class SendKitClient:
    """Sends PATCH /v1/leads/{id} over one pool of kept-alive connections (an async context
    manager)."""

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
        https = origin.scheme == "https"
        host = unquote(origin.raw_host or "")  # an IPv6 zone (`[fe80::1%25eth0]`) as sockets say it
        port = origin.port or (443 if https else 80)
        self._origin = Origin(https, host, port, origin.raw_authority)
        headers = {
            "Host": origin.raw_authority,
            "X-Api-Key": api_key,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
        }
        if workspace_id:
            headers["X-Workspace-Id"] = workspace_id
        # Settings refuse values that are no header (controls, non-ASCII): none splits a line.
        self._lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items()).encode(
            "latin-1"
        )
        self._timeout = timeout if math.isfinite(timeout) else 86_400.0  # connecting, answering
        self._watchdog = Watchdog(self._timeout)
        self._redact = Redactor(api_key, workspace_id)
        self._limit = concurrency
        self._on_departure = on_departure
        self._pool: Pool | None = None

    async def __aenter__(self) -> SendKitClient:
        self._pool = Pool(
            self._origin,
            limit=self._limit,
            connect_timeout=self._timeout,
            header_lines=self._lines,
            body_limit=MAX_BODY,
            kept_headers=(*RATE_HEADERS, "Location"),
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
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    def url_for(self, lead_id: str) -> URL:
        """The request URL; the id is percent-encoded even though validation allows only tokens."""
        path = _lead_path(lead_id)
        return URL.build(scheme=self._scheme, authority=self._authority, path=path, encoded=True)

    async def send(self, update: LeadUpdate) -> Reply:
        target = _lead_path(update.id).encode("ascii")  # what url_for's path is, with no URL made
        return await self._exchange(b"PATCH", target, dumps(update.body()), search=False)

    async def search(self, text: str, cursor: str | int | None) -> Reply:
        """One page (100 leads at most) of the API's text search; never leaves `/v1/leads`."""
        query = {"search": text, "limit": str(SEARCH_PAGE)}
        if isinstance(cursor, int):
            query["page"] = str(cursor)
        elif cursor is not None:
            query["cursor"] = cursor
        url = URL.build(scheme=self._scheme, authority=self._authority, path="/v1/leads")
        target = url.with_query(query).raw_path_qs.encode("ascii")
        return await self._exchange(b"GET", target, None, search=True)

    async def _exchange(
        self, method: bytes, target: bytes, data: bytes | None, *, search: bool
    ) -> Reply:
        """One request and its answer; the transport's errors are `TransportError`s already."""
        pool = self._pool
        if pool is None:
            raise RuntimeError("SendKitClient is not open; use `async with`")
        watchdog = self._watchdog
        task = asyncio.current_task()
        assert task is not None
        watchdog.deadlines[task] = task.get_loop().time() + watchdog.timeout
        try:
            answer = await pool.request(method, target, data, self._on_departure)
        except asyncio.CancelledError:
            if watchdog.expired(task):
                raise TransportError("timeout", "no answer within the timeout") from None
            raise
        except TransportError as exc:
            # Nothing a server sent is quoted unredacted, and no message spans lines.
            raise TransportError(exc.kind, one_line(exc.message, redact=self._redact)) from None
        finally:
            watchdog.forget(task)
        reply = self._reply(answer)
        if not search or reply.status >= 300 or reply.malformed:
            return reply
        page = search_page(answer.body, answer.complete, SEARCH_PAGE)
        if page is None:
            message = unexpected_success(answer.status, answer.body, self._redact)
            code = "UNEXPECTED_ANSWER"
            return Reply(reply.status, code, message, headers=reply.headers, malformed=True)
        return Reply(reply.status, headers=reply.headers, page=page)

    def _reply(self, answer: Answer) -> Reply:
        status, body = answer.status, answer.body
        headers = rate_headers(answer.headers, self._redact)
        if status < 300:
            if is_success(body, answer.complete):
                return Reply(status, headers=headers)
            message = unexpected_success(status, body, self._redact)
            return Reply(status, "UNEXPECTED_ANSWER", message, headers=headers, malformed=True)
        code, message = describe_error(status, body, answer.reason, self._redact)
        if 300 <= status < 400:
            where = one_line(answer.headers.get("Location") or "elsewhere", 200, self._redact)
            message = f"the API redirected to {where}; check --base-url"
        retry_after = parse_retry_after(headers.get("Retry-After")) if headers else None
        return Reply(status, code, message, retry_after, headers)


def _lead_path(lead_id: str) -> str:
    if lead_id in ("", ".", ".."):  # encoding leaves these as they are; servers resolve them
        raise ValueError(f"refusing to build a URL for the lead id {lead_id!r}")
    return "/v1/leads/" + quote(lead_id, safe="")

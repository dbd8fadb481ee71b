"""The one place that speaks HTTP: headers, URL, body, and aiohttp's errors mapped to ours.

A `Sender` turns one `LeadUpdate` into one `PATCH /v1/leads/{id}` and returns a `Reply`, or raises
`TransportError` when no answer came (timeout, refused or dropped connection, unknown host, a
proxy that cannot be used). It does not retry, classify or pace: that is `retry.py`,
`deliver.py` and `limits/`. What it reads of an answer is bounded (`answers.MAX_BODY`; aiohttp
bounds the headers), and the key is removed from every text a server sends back.

Requests go through one `aiohttp.ClientSession` per job: no redirects followed, no cookies kept,
no compression asked for, TLS verified against the system's authorities (and `SSL_CERT_FILE`,
checked as the job starts: `tls.py`). The proxy comes from `proxy.py`, read once per job: aiohttp's
`trust_env=True` would read the environment again for every request, and `~/.netrc` with it,
each in a thread of its own (and would send a `.netrc` login for the API's host).

The timeout of a request is kept by a `Watchdog`, not by aiohttp: its `ClientTimeout(total=...)`
schedules a timer and enters a timer context twice for every request, the largest part of
aiohttp's per-request cost that the client can avoid.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
from collections.abc import Callable
from importlib.metadata import version
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable
from urllib.parse import quote

import aiohttp
from yarl import URL

from .answers import (
    Redactor,
    Reply,
    codings,
    describe_error,
    one_line,
    parse_retry_after,
    proxys_own,
    read_bounded,
    reply_of,
)
from .errors import ConfigError
from .failures import (
    PACING,
    TransportError,
    Tunnels,
    connect_refused,
    proxy_forbids,
    proxy_paces,
    proxy_refused,
    timed_out,
    transport_error,
)
from .models import LeadUpdate
from .pages import SEARCH_PAGE
from .proxy import Proxy, bypassed_by, clear_text_problem, proxy_for
from .tls import tls_context
from .watchdog import Watchdog

if TYPE_CHECKING:
    from .settings import Settings

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

log = logging.getLogger("bulk_updater")

USER_AGENT: Final = f"bulk-updater/{version('bulk-updater')}"
#: RFC 3986's unreserved characters: `quote()` leaves an id of only these as it is (in a
#: tenth of its time, for the usual id).
_UNRESERVED: Final = re.compile(r"[A-Za-z0-9_.~-]+")
#: What a `CONNECT` says besides the host (and the proxy's login): who asks, and nothing secret.
CONNECT_HEADERS: Final = {"User-Agent": USER_AGENT}
try:  # orjson is faster; the standard library gives the same bytes.
    import orjson

    dumps: Callable[[Any], bytes] = orjson.dumps
except ImportError:  # pragma: no cover - depends on the environment

    def dumps(obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


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
    """Sends PATCH /v1/leads/{id} over one aiohttp session (an async context manager)."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str,
        timeout: float,
        concurrency: int,
        workspace_id: str | None = None,
        proxy: str | None = None,
        on_departure: Callable[[], None] | None = None,
    ) -> None:
        """`proxy` replaces the one the environment names (see `proxy.py`). `on_departure` is
        called as each request is written, in the task that sends it (a shared rate budget
        moves the record of a start that left late); None costs nothing."""
        origin = self._origin = URL(base_url)
        self._scheme, self._authority = origin.scheme, origin.raw_authority
        self._base_url, self._proxy_setting = base_url, proxy
        self._proxy: Proxy | None = None  # found as the session opens
        self._tunnels = Tunnels()
        self._headers = {
            "X-Api-Key": api_key,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
            # No header would let a server compress (RFC 9110 12.5.3); the body is read raw.
            "Accept-Encoding": "identity",
        }
        if workspace_id:
            self._headers["X-Workspace-Id"] = workspace_id
        # Connecting keeps aiohttp's timeout (it is once per connection); the rest is ours.
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout)
        self._watchdog = Watchdog(timeout if math.isfinite(timeout) else 86_400.0)
        self._secrets: tuple[str | None, ...] = (api_key, workspace_id)
        # Every text shown or written goes through `_redact`, which takes out the proxy's login
        # too: any answer may be a proxy's, JSON or not. `_redact_api` holds only what the API
        # is sent, for the check that a search's leads do not echo it.
        self._redact_api = self._redact = Redactor(api_key, workspace_id)
        self._connect_headers: dict[str, str] | None = None  # with a proxy: what `CONNECT` says
        self._limit = concurrency
        self._traces = _departures(on_departure) if on_departure is not None else []
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def for_settings(
        cls, s: Settings, on_departure: Callable[[], None] | None = None
    ) -> SendKitClient:
        """The client that a job's settings call for."""
        return cls(
            api_key=s.api_key.get_secret_value() if s.api_key else "",
            base_url=s.base_url,
            timeout=s.timeout,
            concurrency=s.in_flight_cap,
            workspace_id=s.workspace_id,
            proxy=s.proxy,
            on_departure=on_departure,
        )

    async def __aenter__(self) -> SendKitClient:
        try:
            self._proxy = proxy_for(self._base_url, self._proxy_setting)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if self._proxy is not None and (problem := clear_text_problem(self._base_url, self._proxy)):
            raise ConfigError(problem)
        if self._proxy is not None:
            self._use_proxy(self._proxy)
        # The context is the job's own, checked now: a bad `SSL_CERT_FILE` stops it (exit 2).
        tls = tls_context() if self._scheme == "https" else True
        connector = aiohttp.TCPConnector(limit=self._limit, limit_per_host=0, ssl=tls)
        # The headers go with each request, not as the session's: aiohttp sends a session's
        # headers in every `CONNECT` too, and the key would go to the proxy in clear text.
        self._session = aiohttp.ClientSession(
            timeout=self._timeout,
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("Accept-Encoding",),
            auto_decompress=False,
            trace_configs=self._traces or None,
        )
        self._watchdog.start()
        self._say_proxy()
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

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret the client sends: the key, the workspace id, the proxy's login; for a
        message about the job to leave out."""
        proxy = self._proxy.secrets if self._proxy is not None else ()
        return tuple(s for s in (*self._secrets, *proxy) if s)

    def _use_proxy(self, proxy: Proxy) -> None:
        """The proxy's login goes in `Proxy-Authorization` as curl sends it (UTF-8): in the
        `CONNECT` for an `https://` API, in each request for an `http://` one (aiohttp sends
        `proxy_headers` only in a `CONNECT`)."""
        self._connect_headers = dict(CONNECT_HEADERS)
        if proxy.authorization is None:
            return
        # A proxy's error page may quote what it was sent: its login goes like the key.
        self._redact = Redactor(*self._secrets, *proxy.secrets)
        if self._scheme == "https":
            self._connect_headers["Proxy-Authorization"] = proxy.authorization
        else:
            self._headers = {**self._headers, "Proxy-Authorization": proxy.authorization}

    def _say_proxy(self) -> None:
        bypass = bypassed_by(self._base_url)
        if self._proxy is not None:
            log.info("sending through %s", self._proxy)
        elif self._proxy_setting is not None:  # empty: `--proxy ''`
            log.info("sending directly: the proxy setting is empty")
        elif bypass is not None:
            log.info("sending directly, not through a proxy: %s names the host", bypass)
        else:
            log.info("sending directly: no proxy is set")

    def url_for(self, lead_id: str) -> URL:
        """The request URL; the id is percent-encoded even though validation allows only tokens."""
        if lead_id in ("", ".", ".."):  # encoding leaves these as they are; servers resolve them
            raise ValueError(f"refusing to build a URL for the lead id {lead_id!r}")
        plain = _UNRESERVED.fullmatch(lead_id) is not None  # what `quote` leaves as it is
        path = "/v1/leads/" + (lead_id if plain else quote(lead_id, safe=""))
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
        """One request and its answer, aiohttp's errors mapped to `TransportError`. aiohttp
        sends a GET again once when a kept-alive connection closes under it; a PATCH is not."""
        session = self._session
        if session is None:
            raise RuntimeError("SendKitClient is not open; use `async with`")
        watchdog = self._watchdog
        task = asyncio.current_task()
        assert task is not None
        watchdog.deadlines[task] = task.get_loop().time() + watchdog.timeout
        proxy = self._proxy
        try:
            async with session.request(
                method,
                url,
                data=data,
                headers=self._headers,
                allow_redirects=False,
                proxy=proxy.url if proxy is not None else None,
                proxy_headers=self._connect_headers,
            ) as response:
                if proxy is not None:
                    self._tunnels.through = True
                    if response.status == 407:  # the API never asks for it
                        raise proxy_refused(proxy, response.status, self._reason(response))
                body, complete = await read_bounded(response)
                if coding := codings(response.headers):  # compressed all the same: said so
                    shown = one_line(coding, 20, self._redact)  # as sent: it may hold the key
                    body = f"(a body compressed as {shown}, not asked for)".encode()
                if proxy is not None and proxys_own(response, body, proxy, self._scheme):
                    if response.status == 401:
                        raise proxy_refused(proxy, 401, self._reason(response))
                    raise proxy_forbids(proxy, 403, self._reason(response), "the request")
                return reply_of(response, body, complete, self._redact, self._redact_api, search)
        except asyncio.CancelledError as exc:
            if watchdog.expired(task):
                raise timed_out(exc, proxy, self._origin) from None
            raise
        except aiohttp.ClientHttpProxyError as exc:  # the proxy's answer to `CONNECT`, not 200
            assert proxy is not None
            if exc.status in PACING:  # waited and retried as the API's own would be
                return proxy_paces(exc, proxy, self._redact)
            now = task.get_loop().time()
            tunnels = self._tunnels
            raise connect_refused(exc, proxy, self._redact, self._origin, tunnels, now) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise transport_error(exc, proxy, self._redact, self._origin) from exc
        finally:
            watchdog.forget(task)

    def _reason(self, response: aiohttp.ClientResponse) -> str:
        return one_line(response.reason or "", 100, self._redact)


def _departures(on_departure: Callable[[], None]) -> list[aiohttp.TraceConfig]:
    """A trace that calls `on_departure` as the request is written: with its body (a PATCH's
    headers wait for it, and aiohttp writes it from a task of its own, which runs in a copy of
    the sending task's context), or with its headers when it has none (a search)."""

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

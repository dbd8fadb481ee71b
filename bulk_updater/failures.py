"""`TransportError`: a request that got no HTTP answer, and aiohttp's errors said in its words.

Every message is one line, and none repeats what a server sent unredacted (aiohttp quotes a bad
status or header line, which may hold the key) or a proxy's password (a proxy is named by
`Proxy.__str__`, which leaves it out). A proxy's failures say "check --base-url" only when the
proxy could not reach the API's host: with a proxy, every connection the client opens goes to
the proxy, and the proxy resolves the API's name.
"""

from __future__ import annotations

import socket
import ssl
import traceback
from typing import Final, Literal

import aiohttp
from yarl import URL

from .answers import Redactor, Reply, describe_error, one_line, parse_retry_after, rate_headers
from .proxy import Proxy

TransportKind = Literal["timeout", "connection", "dns", "proxy"]

#: Kinds that stop the job at once (exit 3): retrying cannot help.
FINAL: Final = frozenset({"dns", "proxy"})
NO_ANSWER: Final = "the server closed the connection without answering"
#: A proxy's answers to `CONNECT` that pace the job, not refuse it: waited (`Retry-After`) and
#: retried as the API's own 429 and 408 are, and as the proxy's are on an `http://` API.
PACING: Final = frozenset({408, 429})
#: A proxy's 5xx to `CONNECT` (it could not reach the API's host) that stop the job while no
#: request has gone through it yet, once they span `TUNNEL_STOP_SPAN` seconds: a mistyped host
#: fails this way through a proxy, every time, and nothing has been sent. A few at once are no
#: sign: the proxy's way to the API may be down for a moment (an API deploy), which the rows'
#: retries outlast. One request through the proxy lifts the rule.
TUNNEL_FAILURES_AT_START: Final = 3
TUNNEL_STOP_SPAN: Final = 3.0
#: Lookup failures that say the name does not exist; any other (`EAI_AGAIN`: the resolver did
#: not answer) may pass, and is retried.
_NO_SUCH_NAME: Final = frozenset(
    code for code in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", None)) if code is not None
)
#: aiohttp raises the same errors whichever part of a connection through a proxy fails: these
#: frames, in the failure's traceback, tell the proxy's part (its connection, its answer to
#: `CONNECT`) from the API's TLS handshake through the tunnel the proxy opened.
_PROXY_FRAME: Final = "_create_proxy_connection"
_TUNNEL_FRAMES: Final = frozenset({"_start_tls_connection", "_wrap_existing_connection"})

Stage = Literal["proxy", "tunnel"]


class TransportError(Exception):
    """No HTTP answer arrived: the request timed out, the connection failed, the host's name does
    not exist (`kind` "dns"), or the proxy cannot be used, nor reach the API's host from the
    start (`kind` "proxy"); the last two are `final`: retrying cannot help."""

    def __init__(self, kind: TransportKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message

    @property
    def final(self) -> bool:
        return self.kind in FINAL

    @property
    def error_code(self) -> str:
        """The report's `error_code` of a row that ended on this: `TIMEOUT` or `CONNECTION`."""
        return "TIMEOUT" if self.kind == "timeout" else "CONNECTION"


def proxy_refused(proxy: Proxy, status: int, reason: str) -> TransportError:
    """A proxy that answered 407 (or 401 to `CONNECT`): it wants a login, or refused the one
    given."""
    what = "refused the login in" if proxy.with_login else "wants a login, and none is in"
    return TransportError(
        "proxy",
        f"{proxy} answered {status} {reason}: it {what} {proxy.source} "
        f"(http://USER:PASSWORD@HOST:PORT); check {proxy.source}",
    )


def proxy_forbids(proxy: Proxy, status: int, reason: str, what: str) -> TransportError:
    """A proxy whose rules refuse `what` (a tunnel, a request): asking again cannot help."""
    return TransportError(
        "proxy", f"{proxy} refused {what} ({status} {reason}); check {proxy.source}"
    )


class Tunnels:
    """What a job's requests through a proxy have met so far: whether one got an answer
    (`through`), and how many `CONNECT`s the proxy could not carry to the API before that, the
    first at `since` (the event loop's time)."""

    __slots__ = ("failed", "since", "through")

    def __init__(self) -> None:
        self.through = False
        self.failed = 0
        self.since: float | None = None

    def fail(self, now: float) -> bool:
        """Count one tunnel the proxy could not open at `now`; whether the job should stop."""
        self.failed += 1
        since = self.since = now if self.since is None else self.since
        enough = self.failed >= TUNNEL_FAILURES_AT_START and now - since >= TUNNEL_STOP_SPAN
        return not self.through and enough


def proxy_paces(exc: aiohttp.ClientHttpProxyError, proxy: Proxy, redact: Redactor) -> Reply:
    """A proxy's 429 or 408 (`PACING`) to `CONNECT`, as the reply the API's would be."""
    reason = one_line(exc.message or "", 100, redact)
    headers = rate_headers(exc.headers, redact) if exc.headers else None
    retry_after = parse_retry_after(headers.get("Retry-After")) if headers else None
    code, _ = describe_error(exc.status, b"", reason, redact)
    message = f"{proxy} answered the CONNECT {exc.status} {reason}".rstrip()
    return Reply(exc.status, code, message, retry_after, headers)


def connect_refused(
    exc: aiohttp.ClientHttpProxyError,
    proxy: Proxy,
    redact: Redactor,
    api: URL,
    tunnels: Tunnels,
    now: float,
) -> TransportError:
    """A proxy's answer to `CONNECT` other than 200 (and `PACING`) at `now`: it wants a login,
    its rules forbid the tunnel (each final), or it could not reach the API's host (retried,
    unless no request has gone through it yet: `TUNNEL_FAILURES_AT_START`)."""
    reason = one_line(exc.message or "", 100, redact)
    if exc.status in (401, 407):  # tinyproxy answers a wrong login with 401
        return proxy_refused(proxy, exc.status, reason)
    if exc.status < 500:  # its rules forbid the tunnel: asking again cannot help
        return proxy_forbids(proxy, exc.status, reason, "a tunnel to the API")
    said = f"{proxy} could not connect to {_target(api)} ({exc.status} {reason})"
    if not tunnels.fail(now):
        return TransportError("connection", said)
    return TransportError(
        "proxy",
        f"{said}, {tunnels.failed} times in {now - (tunnels.since or now):.0f}s and no request "
        "through it yet; check --base-url "
        f"(or that the proxy may reach {api.host})",
    )


def transport_error(
    exc: aiohttp.ClientError | TimeoutError, proxy: Proxy | None, redact: Redactor, api: URL
) -> TransportError:
    """`exc` in our words; `proxy` is the one every connection goes to, if any, and `api` the
    base URL. A proxy's answer to `CONNECT` is `connect_refused`'s or `proxy_paces`'s."""
    if proxy is not None and (failure := _proxy_failure(exc, proxy, api)) is not None:
        return failure
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        where = f"{proxy}" if proxy is not None else "the server"
        return TransportError("timeout", f"no connection to {where} within the timeout")
    if isinstance(exc, TimeoutError):
        return TransportError("timeout", "no answer within the timeout")
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientConnectorSSLError):
        return TransportError("connection", _tls(exc))
    if isinstance(exc, aiohttp.ClientConnectorError):
        return _connect_error(exc, proxy, api)
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return TransportError("connection", NO_ANSWER)
    if isinstance(exc, aiohttp.ClientPayloadError):
        return TransportError("connection", "the server closed the connection mid-answer")
    if isinstance(exc, aiohttp.ClientResponseError):  # what aiohttp could not parse
        detail = one_line(exc.message or type(exc).__name__, 200, redact)
        return TransportError("connection", f"the server's answer is not valid HTTP ({detail})")
    return TransportError("connection", one_line(f"{type(exc).__name__}: {exc}", redact=redact))


def timed_out(cancelled: BaseException, proxy: Proxy | None, api: URL) -> TransportError:
    """The request that the timeout cancelled (`cancelled`, where it was waiting), said as the
    part that did not answer: through a proxy, the proxy or the TLS handshake in its tunnel."""
    stage = _stage(cancelled) if proxy is not None else None
    if stage == "proxy":
        return TransportError("timeout", f"{proxy} did not answer the CONNECT within the timeout")
    if stage == "tunnel":
        return TransportError("timeout", _no_handshake(api, proxy))
    return TransportError("timeout", "no answer within the timeout")


def _proxy_failure(
    exc: aiohttp.ClientError | TimeoutError, proxy: Proxy, api: URL
) -> TransportError | None:
    """What the proxy did, or the API did through its tunnel, when aiohttp's words would blame
    the wrong party (None: the usual words are right). Each is transient: retried."""
    closed = isinstance(exc, aiohttp.ServerDisconnectedError)
    if api.scheme == "http" and closed:  # no tunnel: the proxy is the peer
        return TransportError("connection", f"{proxy} closed the connection without answering")
    stage = _stage(exc)
    if stage == "tunnel" and isinstance(exc, aiohttp.ConnectionTimeoutError):
        return TransportError("timeout", _no_handshake(api, proxy))
    if stage != "proxy" or isinstance(exc, aiohttp.ClientConnectorError):
        return None  # not in its `CONNECT`, or a connection to it that failed: said below
    if closed:
        return TransportError(
            "connection", f"{proxy} closed the connection without answering the CONNECT"
        )
    if isinstance(exc, aiohttp.ClientOSError):
        return TransportError(
            "connection", f"{proxy} dropped the connection before answering the CONNECT"
        )
    return None


def _no_handshake(api: URL, proxy: Proxy | None) -> str:
    return f"no TLS handshake with {_target(api)} through {proxy} within the timeout"


def _target(api: URL) -> str:
    """The API's `host:port`, as a `CONNECT` names it."""
    host = f"[{api.host}]" if api.host and ":" in api.host else api.host
    return f"{host}:{api.port}"


def _stage(exc: BaseException) -> Stage | None:
    """Where in a connection through a proxy `exc` (or what caused it) was raised: in the
    proxy's part, in the TLS handshake through its tunnel, or neither (an open connection)."""
    names: set[str] = set()
    seen: BaseException | None = exc
    while seen is not None:
        names.update(frame.f_code.co_name for frame, _ in traceback.walk_tb(seen.__traceback__))
        seen = seen.__cause__ or seen.__context__
    if names & _TUNNEL_FRAMES:
        return "tunnel"
    return "proxy" if _PROXY_FRAME in names else None


def _connect_error(
    exc: aiohttp.ClientConnectorError, proxy: Proxy | None, api: URL
) -> TransportError:
    """A connection that could not be made. Through a proxy, aiohttp raises
    `ClientProxyConnectionError` for the connection to the proxy, `ClientConnectorDNSError` for
    the proxy's name (the proxy resolves the API's), and a plain `ClientConnectorError` for the
    TLS handshake with the API through the tunnel the proxy opened."""
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return _dns_error(exc, proxy)
    if proxy is None:
        return TransportError(
            "connection", f"cannot connect to {exc.host}:{exc.port} ({_reason(exc)})"
        )
    if isinstance(exc, aiohttp.ClientProxyConnectionError):
        return TransportError(
            "proxy", f"{proxy} cannot be reached ({_reason(exc)}); check {proxy.source}"
        )
    return TransportError(  # the proxy answered `CONNECT` 200: it was reached
        "connection",
        f"the connection to {_target(api)} through {proxy} was dropped during the TLS "
        f"handshake ({_reason(exc)})",
    )


def _dns_error(exc: aiohttp.ClientConnectorDNSError, proxy: Proxy | None) -> TransportError:
    """A name that does not exist stops the job; a lookup that failed for now is retried. A
    failure without a lookup's code (aiodns's) is taken as a name that does not exist."""
    error = exc.os_error
    if isinstance(error, socket.gaierror) and error.errno not in _NO_SUCH_NAME:
        now = f"could not be resolved just now ({_reason(exc)})"
        if proxy is None:
            return TransportError("connection", f"the name {exc.host} {now}")
        return TransportError("connection", f"{proxy} cannot be reached: its host {exc.host} {now}")
    if proxy is None:
        return TransportError(
            "dns", f"the host {exc.host} is not known (its name does not resolve); check --base-url"
        )
    return TransportError(
        "proxy",
        f"{proxy} cannot be reached: its host {exc.host} is not known (its name does not "
        f"resolve); check {proxy.source}",
    )


def _tls(exc: aiohttp.ClientConnectorError) -> str:
    cause = getattr(exc, "certificate_error", None) or exc.os_error
    detail = getattr(cause, "verify_message", None) or getattr(cause, "reason", None)
    if isinstance(cause, ssl.SSLCertVerificationError) and cause.reason:
        detail = f"{cause.reason}: {cause.verify_message}"
    return f"TLS with {exc.host}:{exc.port} failed ({detail or _reason(exc)})"


def _reason(exc: aiohttp.ClientConnectorError) -> str:
    """What went wrong, in a few words: never empty (a bare `ConnectionResetError()` is)."""
    error = exc.os_error
    return error.strerror or str(error) or type(error).__name__

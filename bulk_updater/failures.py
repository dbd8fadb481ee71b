"""`TransportError`: a request that got no HTTP answer, and aiohttp's errors said in its words.

Every message is one line, and none repeats what a server sent unredacted (aiohttp quotes a bad
status or header line, which may hold the key) or a proxy's password (a proxy is named by
`Proxy.__str__`, which leaves it out). A proxy's failures never say "check --base-url": with a
proxy, every connection the client opens goes to the proxy.
"""

from __future__ import annotations

import ssl
import traceback
from typing import Final, Literal

import aiohttp
from yarl import URL

from .answers import Redactor, one_line
from .proxy import Proxy

TransportKind = Literal["timeout", "connection", "dns", "proxy"]

#: Kinds that stop the job at once (exit 3): retrying cannot help.
FINAL: Final = frozenset({"dns", "proxy"})
NO_ANSWER: Final = "the server closed the connection without answering"
#: aiohttp raises the same errors whichever part of a connection through a proxy fails: these
#: frames, in the failure's traceback, tell the proxy's part (its connection, its answer to
#: `CONNECT`) from the API's TLS handshake through the tunnel the proxy opened.
_PROXY_FRAME: Final = "_create_proxy_connection"
_TUNNEL_FRAMES: Final = frozenset({"_start_tls_connection", "_wrap_existing_connection"})

Stage = Literal["proxy", "tunnel"]


class TransportError(Exception):
    """No HTTP answer arrived: the request timed out, the connection failed, the host's name does
    not resolve (`kind` "dns"), or the proxy cannot be used (`kind` "proxy"); the last two are
    `final`: retrying cannot help."""

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


def transport_error(
    exc: aiohttp.ClientError | TimeoutError, proxy: Proxy | None, redact: Redactor, api: URL
) -> TransportError:
    """`exc` in our words; `proxy` is the one every connection goes to, if any, and `api` the
    base URL."""
    if proxy is not None and (failure := _proxy_failure(exc, proxy, api)) is not None:
        return failure
    if isinstance(exc, aiohttp.ClientHttpProxyError):  # the proxy's answer to CONNECT
        reason = one_line(exc.message or "", 100, redact)
        assert proxy is not None
        if exc.status in (401, 407):  # tinyproxy answers a wrong login with 401
            return proxy_refused(proxy, exc.status, reason)
        if exc.status < 500:  # its rules forbid the tunnel: asking again cannot help
            return proxy_forbids(proxy, exc.status, reason, "a tunnel to the API")
        return TransportError(
            "connection", f"{proxy} opened no tunnel to the API ({exc.status} {reason})"
        )
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        where = f"{proxy}" if proxy is not None else "the server"
        return TransportError("timeout", f"no connection to {where} within the timeout")
    if isinstance(exc, TimeoutError):
        return TransportError("timeout", "no answer within the timeout")
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientConnectorSSLError):
        return TransportError("connection", _tls(exc))
    if isinstance(exc, aiohttp.ClientConnectorError):
        return _connect_error(exc, proxy)
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
    host = f"[{api.host}]" if api.host and ":" in api.host else api.host
    return f"no TLS handshake with {host}:{api.port} through {proxy} within the timeout"


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


def _connect_error(exc: aiohttp.ClientConnectorError, proxy: Proxy | None) -> TransportError:
    dns = isinstance(exc, aiohttp.ClientConnectorDNSError)
    if proxy is not None:
        if dns:
            return TransportError(
                "proxy",
                f"{proxy} cannot be reached: its host {exc.host} is not known (its name does "
                f"not resolve); check {proxy.source}",
            )
        return TransportError(
            "proxy", f"{proxy} cannot be reached ({_reason(exc)}); check {proxy.source}"
        )
    if dns:
        return TransportError(
            "dns", f"the host {exc.host} is not known (its name does not resolve); check --base-url"
        )
    return TransportError("connection", f"cannot connect to {exc.host}:{exc.port} ({_reason(exc)})")


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

"""Reading the API's answers: `Reply`, the error shapes, `Retry-After`, and what a success is.

`reply_of` reads an aiohttp response (its body read by `read_bounded`) into a `Reply`;
`proxys_own` tells a proxy's refusal from the API's; `codings` names a body compressed anyway.

Everything a server sends back is treated as untrusted text: it is read only up to a bounded
prefix, the key is removed from it wherever the server echoes it, and it is cut to one short line
without control characters before it reaches a terminal, a log or a report.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Final

from .pages import SEARCH_PAGE, Page, search_page
from .printable import UNPRINTABLE

if TYPE_CHECKING:
    import aiohttp

    from .proxy import Proxy

#: The most of an answer's body that is read (enough for any error message or lead).
MAX_BODY: Final = 1 << 20
#: The most of a body that is made into text for a message.
TEXT_READ: Final = 1 << 16
#: Rate-limit headers a limiter may read, as they are spelled on the wire.
RATE_HEADERS: Final = (
    "Retry-After",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "RateLimit",
    "RateLimit-Policy",
)
REDACTED: Final = "[redacted]"
_TAG: Final = re.compile(r"<[^>]*>")
_SPACE: Final = re.compile(r"\s+")
_SUCCESS_START: Final = re.compile(rb'\s*\{\s*"success"\s*:\s*true\b')

try:  # every success answer is parsed: orjson does it in a fifth of the time
    import orjson

    _loads: Callable[[bytes], Any] = orjson.loads
except ImportError:  # pragma: no cover - depends on the environment
    _loads = json.loads


@dataclass(frozen=True, slots=True)
class Reply:
    """The API's answer to one request, reduced to what classification and the report need."""

    status: int
    error_code: str | None = None
    message: str = ""
    retry_after: float | None = None  # seconds, from a Retry-After header
    headers: Mapping[str, str] | None = None  # the rate-limit headers present, as sent
    malformed: bool = False  # a 2xx whose body is not the API's success answer
    page: Page | None = None  # a search's answer


def rate_headers(
    headers: Mapping[str, str], redact: Callable[[str], str] | None = None
) -> dict[str, str] | None:
    """The rate-limit headers of an answer (`RATE_HEADERS`), or None when it has none.

    Their values may be quoted in a complaint about them, so the key is removed from them too.
    """
    found = {name: value for name in RATE_HEADERS if (value := headers.get(name)) is not None}
    if redact is not None and found:
        found = {name: redact(value) for name, value in found.items()}
    return found or None


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date); None if unusable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def is_success(body: bytes, complete: bool) -> bool:
    """Whether a 2xx body is the API's success answer (`{"success": true, ...}`).

    A captive portal or a misrouted proxy answers 200 with a page of its own: that is no update.
    """
    if not complete:  # longer than we read: judge by how it starts
        return _SUCCESS_START.match(body) is not None
    try:
        data = _loads(body)
    except ValueError:  # orjson is stricter (NaN, integers past 64 bits): the standard one judges
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            return False
    return isinstance(data, dict) and data.get("success") is True


class Redactor:
    """Removes secrets (the key, a proxy's login) from any text a server sent, before it is shown.

    A secret is replaced wherever it occurs whole, and so is any run of `FRAGMENT` or more of
    its characters: a server may quote a request (and so the key) cut anywhere, so a key may be
    shown in part. `clip` cuts a text only after that, and drops the start of a secret at the cut.
    A secret shorter than `SHORT` cannot be told from a word: a text holding one is not shown.
    """

    FRAGMENT: Final = 8  # the shortest piece of a secret replaced wherever it occurs
    PREFIX: Final = 4  # the shortest start of a secret dropped at a cut
    SHORT: Final = 4  # a secret shorter than this withholds the whole text it occurs in

    def __init__(self, *secrets: str | None) -> None:
        given = {s for s in secrets if s}
        self._secrets = sorted((s for s in given if len(s) >= self.SHORT), key=len, reverse=True)
        self._short = tuple(s for s in given if len(s) < self.SHORT)
        self._longest = max(map(len, given), default=0)
        size = self.FRAGMENT
        self._pieces = [
            (secret, frozenset(secret[i : i + size] for i in range(len(secret) - size + 1)))
            for secret in self._secrets
            if len(secret) > size
        ]

    def __call__(self, text: str) -> str:
        if any(secret in text for secret in self._short):
            return REDACTED
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        if len(text) >= self.FRAGMENT:
            for secret, pieces in self._pieces:
                text = _drop_pieces(text, secret, pieces, self.FRAGMENT)
        return text

    def clip(self, text: str, limit: int) -> str:
        """`text` redacted, cut to `limit` characters, with no start of a secret left at its end."""
        if self._longest:  # a secret that starts within `limit` ends within this window
            text = self(text[: limit + self._longest])[:limit]
        for secret in self._secrets:
            for size in range(min(len(secret), len(text)), self.PREFIX - 1, -1):
                if text.endswith(secret[:size]):
                    text = text[:-size] + REDACTED
                    break
        return text


def _drop_pieces(text: str, secret: str, pieces: frozenset[str], fragment: int) -> str:
    """`text` with every run of `fragment` or more characters found in `secret` replaced."""
    out: list[str] = []
    i = start = 0
    while i <= len(text) - fragment:
        if text[i : i + fragment] not in pieces:
            i += 1
            continue
        end = i + fragment
        while end < len(text) and text[i : end + 1] in secret:
            end += 1
        out += (text[start:i], REDACTED)
        i = start = end
    return "".join(out) + text[start:] if out else text


def describe_error(
    status: int, body: bytes, reason: str = "", redact: Redactor | None = None
) -> tuple[str, str]:
    """(error_code, message) from either documented error shape, an HTML page or nothing."""
    code: Any = None
    message: Any = None
    try:
        data = json.loads(body) if body else None
    except (ValueError, RecursionError):
        data = None
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict):  # {"success": false, "error": {"code", "message"}}
            code, message = error.get("code"), error.get("message")
        elif isinstance(error, str):  # {"error": "Forbidden", "message": ..., "code": 403}
            code, message = error, data.get("message")
        else:
            code, message = data.get("code"), data.get("message")
    if not isinstance(code, str) or not code.strip():
        code = f"HTTP_{status}"
    if not isinstance(message, str) or not message.strip():
        text = _SPACE.sub(" ", _TAG.sub(" ", body.decode("utf-8", "replace"))).strip()
        message = _cut(text, 200, redact) if text and data is None else (reason or f"HTTP {status}")
        if not body:
            message = f"{reason or 'HTTP ' + str(status)} (empty body)"
    code = _cut(_SPACE.sub("_", UNPRINTABLE.sub(" ", code).strip()), 100, redact).upper()
    return code, one_line(message, redact=redact)


def one_line(text: str, limit: int = 500, redact: Redactor | None = None) -> str:
    """A server's text as it may reach a terminal or a report: one line, no character that acts
    (`printable`), bounded, and (given a `redact`) without the key, removed before the cut."""
    return _cut(_SPACE.sub(" ", UNPRINTABLE.sub(" ", text)).strip(), limit, redact)


def _cut(text: str, limit: int, redact: Redactor | None) -> str:
    return text[:limit] if redact is None else redact.clip(text, limit)


def unexpected_success(status: int, body: bytes, redact: Redactor | None = None) -> str:
    """The message for a 2xx that is not the API's answer (it is retried, like a 5xx)."""
    what = "an empty body" if not body else None
    if what is None:
        # A first part is cheaper to clean than a megabyte; `clip` drops a key cut at its end.
        text = _SPACE.sub(" ", _TAG.sub(" ", body[:TEXT_READ].decode("utf-8", "replace"))).strip()
        what = f"something else: {one_line(text, 120, redact)!r}"
    return f"HTTP {status}, but not the API's answer ({what}); a proxy or portal in the way?"


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


def reply_of(
    response: aiohttp.ClientResponse,
    body: bytes,
    complete: bool,
    redact: Redactor,
    sent: Redactor,
    search: bool,
) -> Reply:
    """The `Reply` to a request, a search's with its `Page`. `redact` takes out every secret (a
    proxy may answer as the API would, in JSON); `sent` only what the API is sent, which no lead
    of a search may hold (the API is never sent the proxy's login: a lead may hold it)."""
    reply = _reply(response, body, complete, redact)
    if not search or reply.status >= 300 or reply.malformed:
        return reply
    page = search_page(body, complete, SEARCH_PAGE)
    if page is None:
        message = unexpected_success(response.status, body, redact)
        code = "UNEXPECTED_ANSWER"
        return Reply(reply.status, code, message, headers=reply.headers, malformed=True)
    if any(sent(text) != text for lead in page.leads for text in lead):
        # A server that echoes requests: the key would go to the report as a lead's id.
        message = "a lead in the search answer holds the API key; a server echoing requests?"
        code = "UNEXPECTED_ANSWER"
        return Reply(reply.status, code, message, headers=reply.headers, malformed=True)
    return Reply(reply.status, headers=reply.headers, page=page)


def proxys_own(response: aiohttp.ClientResponse, body: bytes, proxy: Proxy, scheme: str) -> bool:
    """Whether a 401 or 403 through a proxy is the proxy's own, not the API's refusing the key:
    on an `http://` API (`scheme`; no tunnel) one `_from_proxy` tells; on either, one that quotes
    the proxy's login, which the API is never sent. A proxy that inspects TLS (its authority in
    `SSL_CERT_FILE`) answers inside the tunnel too."""
    if response.status not in (401, 403):
        return False
    if scheme == "http" and _from_proxy(response, body):
        return True
    text = body[:TEXT_READ].decode("utf-8", "replace")
    # The bare user name may be a word of the API's message; the password or the login not.
    login = (s for s in proxy.secrets if s != proxy.user)
    return any(len(secret) >= Redactor.SHORT and secret in text for secret in login)


def _reply(
    response: aiohttp.ClientResponse, body: bytes, complete: bool, redact: Redactor
) -> Reply:
    status = response.status
    headers = rate_headers(response.headers, redact)
    if status < 300:
        if is_success(body, complete):
            return _success(status) if headers is None else Reply(status, headers=headers)
        message = unexpected_success(status, body, redact)
        return Reply(status, "UNEXPECTED_ANSWER", message, headers=headers, malformed=True)
    code, message = describe_error(status, body, response.reason or "", redact)
    if 300 <= status < 400:
        where = one_line(response.headers.get("Location", "elsewhere"), 200, redact)
        message = f"the API redirected to {where}; check --base-url"
    retry_after = parse_retry_after(headers.get("Retry-After")) if headers else None
    return Reply(status, code, message, retry_after, headers)


_SUCCESSES: dict[int, Reply] = {}


def _success(status: int) -> Reply:
    """The API's success answer, without rate-limit headers: one `Reply` per status, shared
    (it is immutable), instead of a frozen dataclass built for every request."""
    reply = _SUCCESSES.get(status)
    if reply is None:
        reply = _SUCCESSES[status] = Reply(status)
    return reply


def _from_proxy(response: aiohttp.ClientResponse, body: bytes) -> bool:
    """Whether a 401 or 403 to a request through a proxy (`http://`: no tunnel) is the proxy's:
    it asks for a proxy login, or it is no error of the API's (always a JSON object)."""
    if response.status not in (401, 403):
        return False
    return "Proxy-Authenticate" in response.headers or not body.lstrip().startswith(b"{")


def codings(headers: Mapping[str, str]) -> str:
    """The codings a body came in that aiohttp leaves as they are (no compression was asked
    for, and none is undone): `Content-Encoding`'s, and `Transfer-Encoding`'s but chunked."""
    content = headers.get("Content-Encoding")
    transfer = headers.get("Transfer-Encoding")
    if content is None and transfer is None:
        return ""
    sent = ",".join(filter(None, (content, transfer))).split(",")
    found = [c.strip() for c in sent if c.strip().lower() not in ("", "identity", "chunked")]
    return ", ".join(found)

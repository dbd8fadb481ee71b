"""Reading the API's answers: `Reply`, the error shapes, `Retry-After`, and what a success is.

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
from typing import Any, Final

from .printable import UNPRINTABLE

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
class Page:
    """One page of `GET /v1/leads?search=`: each lead's id and email, and how to ask for the next.

    The API pages by cursor (`hasMore`, `nextCursor`); an older shape pages by number (`page`,
    `pages`), and then `number` and `pages` are set. `broken` says why the next page cannot be
    asked for although more leads are said to follow: a search is then never read as complete.
    `total` is how many leads the API says the whole search matches, when it says: pages that
    held fewer were read short.
    """

    leads: tuple[tuple[str, str], ...]
    next_cursor: str | None = None
    number: int | None = None
    pages: int | None = None
    broken: str = ""
    total: int | None = None


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


def search_page(body: bytes, complete: bool, limit: int = 100) -> Page | None:
    """The leads of a search answer, or None when the body is not one (then it is retried).

    `limit` is the page size asked for: a full page that says nothing of what follows may not
    be the last, so it is `broken` rather than read as the whole answer. So is a page with a
    field of the wrong type (`hasMore: "true"`, an `_id` that is a number): what it says of the
    next page, or of a lead, cannot be known.
    """
    if not complete:
        return None
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get("success") is not True:
        return None
    items, paging = data.get("data"), data.get("pagination")
    if not isinstance(items, list):
        return None
    leads = tuple((item["_id"], item["email"]) for item in items if _is_lead(item))
    if len(leads) < len(items):
        return Page(leads, broken=_lead_problem(items))
    if paging is None:
        paging = {}
    if not isinstance(paging, dict):
        return Page(leads, broken=f"`pagination` is {_kind(paging)}, not an object")
    problem = _paging_problem(paging)
    if problem:
        return Page(leads, broken=problem)
    total: int | None = paging.get("total")
    if "hasMore" in paging or "nextCursor" in paging:
        return _by_cursor(leads, paging, total)
    if "pages" in paging:
        return _by_number(leads, paging, total)
    if total is None and len(items) >= min(limit, paging.get("limit") or limit):
        return Page(leads, broken="a full page of leads came with no word on the next one")
    return Page(leads, total=total)


def _is_lead(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and isinstance(item.get("_id"), str)
        and isinstance(item.get("email"), str)
    )


def _lead_problem(items: list[Any]) -> str:
    """Why the first item that is no lead is none."""
    item = next(item for item in items if not _is_lead(item))
    if not isinstance(item, dict):
        return f"a lead in the answer is {_kind(item)}, not an object"
    name = "_id" if not isinstance(item.get("_id"), str) else "email"
    what = _kind(item[name]) if name in item else "missing"
    return f"a lead's `{name}` is {what}, not a string"


def _paging_problem(paging: dict[str, Any]) -> str:
    """What makes a pagination field unreadable (its type), or "" when nothing does."""
    more, cursor = paging.get("hasMore"), paging.get("nextCursor")
    if more is not None and not isinstance(more, bool):
        return f"`hasMore` is {_kind(more)}, not true or false"
    if cursor is not None and not isinstance(cursor, str):
        return f"`nextCursor` is {_kind(cursor)}, not a string"
    for name in ("total", "limit", "page", "pages"):
        value = paging.get(name)
        if value is not None and not _whole(value):
            return f"`{name}` is {_kind(value)}, not a count"
    return ""


def _kind(value: Any) -> str:
    """A JSON value's kind, as a message names it (never the value: it is the server's text)."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a negative number" if value < 0 else "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object" if value is not None else "null"


def _by_cursor(
    leads: tuple[tuple[str, str], ...], paging: dict[str, Any], total: int | None
) -> Page:
    more, cursor = paging.get("hasMore"), paging.get("nextCursor")
    if more is False:
        return Page(leads, total=total)
    if cursor:
        return Page(leads, cursor, total=total)
    if more is True:
        return Page(leads, broken="the API says more leads follow but gives no cursor for them")
    return Page(leads, total=total)


def _by_number(
    leads: tuple[tuple[str, str], ...], paging: dict[str, Any], total: int | None
) -> Page:
    number, pages = paging.get("page"), paging["pages"]
    if pages is None:
        return Page(leads, broken="`pages` is null, not a count")
    return Page(leads, number=1 if number is None else number, pages=pages, total=total)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0

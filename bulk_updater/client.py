"""The one place that speaks HTTP: headers, URL, body, and aiohttp's errors mapped to ours.

A `Sender` turns one `LeadUpdate` into one `PATCH /v1/leads/{id}` and returns a `Reply`, or raises
`TransportError` when no answer came (timeout, refused or dropped connection). It does not retry,
classify or pace: that is `retry.py` and `pacing.py`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from importlib.metadata import version
from types import TracebackType
from typing import Any, Final, Literal, Protocol
from urllib.parse import quote

import aiohttp
from yarl import URL

from .models import LeadUpdate

USER_AGENT: Final = f"bulk-updater/{version('bulk-updater')}"
_TAG: Final = re.compile(r"<[^>]*>")
_SPACE: Final = re.compile(r"\s+")
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")

try:  # orjson is an optional speed-up (extra `[speed]`); the standard library gives the same bytes.
    import orjson

    dumps: Callable[[Any], bytes] = orjson.dumps
except ImportError:  # pragma: no cover - depends on the environment

    def dumps(obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True, slots=True)
class Reply:
    """The API's answer to one request, reduced to what classification and the report need."""

    status: int
    error_code: str | None = None
    message: str = ""
    retry_after: float | None = None  # seconds, from a Retry-After header


class TransportError(Exception):
    """No HTTP answer arrived: the request timed out or the connection failed."""

    def __init__(self, kind: Literal["timeout", "connection"], message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class Sender(Protocol):
    """Anything that can send one update; the engine's tests use fakes of this."""

    async def send(self, update: LeadUpdate) -> Reply: ...


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


def describe_error(status: int, body: bytes, reason: str = "") -> tuple[str, str]:
    """(error_code, message) from either documented error shape, an HTML page or nothing."""
    code: Any = None
    message: Any = None
    try:
        data = json.loads(body) if body else None
    except ValueError:
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
    code = _SPACE.sub("_", code.strip()).upper()
    if not isinstance(message, str) or not message.strip():
        text = _SPACE.sub(" ", _TAG.sub(" ", body.decode("utf-8", "replace"))).strip()
        message = text[:200] if text and data is None else (reason or f"HTTP {status}")
        if not body:
            message = f"{reason or 'HTTP ' + str(status)} (empty body)"
    # A server's text goes to terminals and reports: no escape codes, one line, bounded.
    return code, _SPACE.sub(" ", _CONTROL.sub(" ", message)).strip()[:500]


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
    ) -> None:
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
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._limit = concurrency
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> SendKitClient:
        connector = aiohttp.TCPConnector(limit=self._limit, limit_per_host=0)
        self._session = aiohttp.ClientSession(
            headers=self._headers, timeout=self._timeout, connector=connector
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
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
        session = self._session
        if session is None:
            raise RuntimeError("SendKitClient is not open; use `async with`")
        try:
            async with session.patch(
                self.url_for(update.id), data=dumps(update.body()), allow_redirects=False
            ) as response:
                body = await response.read()
                status = response.status
                if status < 300:
                    return Reply(status)
                code, message = describe_error(status, body, response.reason or "")
                if 300 <= status < 400:
                    where = response.headers.get("Location", "elsewhere")
                    message = f"the API redirected to {where}; check --base-url"
                return Reply(
                    status, code, message, parse_retry_after(response.headers.get("Retry-After"))
                )
        except TimeoutError:
            raise TransportError("timeout", "no answer within the timeout") from None
        except aiohttp.ClientError as exc:
            raise TransportError("connection", _connection_message(exc)) from exc


def _connection_message(exc: aiohttp.ClientError) -> str:
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the server closed the connection without answering"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect to {exc.host}:{exc.port} ({exc.strerror or exc.os_error})"
    return f"{type(exc).__name__}: {exc}".strip()

"""A local SendKit-compatible API server, for the demo, end-to-end tests and users without a key.

This module owns the sandbox: an aiohttp.web application that serves ``PATCH /v1/leads/{id}``
with the documented semantics (``customFields`` merged, every other field replaced, ``email``
immutable, ``NOT_FOUND`` for an unknown id), checks the API contract strictly (one auth header,
JSON object body, known fields with the right types) and can misbehave on purpose: a sliding
one-second rate limit answering 429 with ``Retry-After`` (seconds, HTTP date or absent) and
injected faults (HTML 503, JSON 500, dropped connection, slow answer).

Everything a test wants to check afterwards is recorded in a :class:`SandboxState`. The server
runs in the current event loop (:class:`Sandbox`), in a background thread with its own loop
(:class:`SandboxThread`), or in the foreground until a signal arrives (:func:`serve`).

It is self-contained (standard library and aiohttp only) so it never depends on the code it tests.
"""

from __future__ import annotations

import asyncio
import collections
import copy
import email.utils
import hmac
import json
import math
import os
import random
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal, cast

from aiohttp import web
from aiohttp.typedefs import Handler

__all__ = [
    "DEFAULT_SANDBOX_KEY",
    "FaultPlan",
    "Sandbox",
    "SandboxState",
    "SandboxThread",
    "create_app",
    "load_leads",
    "serve",
]

DEFAULT_SANDBOX_KEY = "sk_sandbox_demo"

RetryAfter = Literal["seconds", "date", "none"]

FAULT_KINDS = ("503", "500", "drop", "slow")
_RETRY_AFTER_MODES = ("seconds", "date", "none")
_PLATFORM_KEY_PREFIX = "sk_user_"

_STRING_FIELDS = frozenset(
    {
        "firstName",
        "lastName",
        "companyName",
        "jobTitle",
        "phone",
        "linkedinUrl",
        "city",
        "state",
        "country",
    }
)
_ALLOWED_FIELDS = _STRING_FIELDS | {"tags", "customFields"}

_HTML_503 = "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>"
_UNAUTHORIZED = {"error": "Unauthorized", "message": "Invalid or missing API key", "code": 401}
_FORBIDDEN = {
    "error": "Forbidden",
    "message": "You don't have permission to access this resource",
    "code": 403,
}


@dataclass(frozen=True)
class FaultPlan:
    """Which faults the sandbox injects into PATCH requests, and how often."""

    rate: float = 0.0
    """Probability (0..1) that a PATCH gets an injected fault."""
    kinds: tuple[str, ...] = FAULT_KINDS
    """Fault kinds, chosen uniformly: ``"503"``, ``"500"``, ``"drop"``, ``"slow"``."""
    slow_seconds: float = 5.0
    """How long a ``"slow"`` answer waits (after the update was applied)."""
    seed: int | None = None
    """Seed for a reproducible fault sequence."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"fault rate must be between 0 and 1, got {self.rate!r}")
        if not self.kinds:
            raise ValueError(f"fault kinds must not be empty; choose from {', '.join(FAULT_KINDS)}")
        unknown = [kind for kind in self.kinds if kind not in FAULT_KINDS]
        if unknown:
            raise ValueError(
                f"unknown fault kind(s) {', '.join(map(repr, unknown))}; "
                f"choose from {', '.join(FAULT_KINDS)}"
            )
        if not self.slow_seconds >= 0.0:
            raise ValueError(f"slow_seconds must be >= 0, got {self.slow_seconds!r}")


@dataclass
class SandboxState:
    """Everything the sandbox saw and did, for tests to inspect afterwards."""

    leads: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Lead id -> lead object, in the API's shape; updated in place."""
    requests: int = 0
    """Every HTTP request received, on any path."""
    patches_by_lead: collections.Counter[str] = field(default_factory=collections.Counter)
    """PATCH requests per lead id, whatever the answer (faults, 429, 404 included)."""
    applied_by_lead: collections.Counter[str] = field(default_factory=collections.Counter)
    """Successful updates applied per lead id."""
    stray: list[str] = field(default_factory=list)
    """``"METHOD path"`` of every request outside ``PATCH /v1/leads/{id}``."""
    bad_requests: list[str] = field(default_factory=list)
    """A description of every request that broke the API contract."""
    max_in_flight_per_lead: int = 0
    """Highest number of requests for one lead id being handled at once."""
    rate_limited: int = 0
    """429 answers sent."""
    faults: collections.Counter[str] = field(default_factory=collections.Counter)
    """Injected faults by kind."""
    auth_failures: int = 0
    """401 and 403 answers sent."""
    changed: threading.Condition = field(default_factory=threading.Condition, compare=False)
    """Notified when a request arrives and when it is answered, so another thread can wait."""


def load_leads(path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """Read a JSON list of lead objects (each with a string ``_id``) into an id -> lead dict."""
    with open(path, encoding="utf-8") as file:
        data = json.load(file)
    if not isinstance(data, list):
        raise ValueError(f"{os.fspath(path)}: expected a JSON list of lead objects")
    leads: dict[str, dict[str, Any]] = {}
    for index, lead in enumerate(data):
        if not isinstance(lead, dict) or not isinstance(lead.get("_id"), str) or not lead["_id"]:
            raise ValueError(f"{os.fspath(path)}: item {index} is not a lead object with an _id")
        if lead["_id"] in leads:
            raise ValueError(f"{os.fspath(path)}: duplicate lead id {lead['_id']!r}")
        leads[lead["_id"]] = lead
    return leads


def create_app(
    state: SandboxState,
    *,
    api_key: str = DEFAULT_SANDBOX_KEY,
    rate: float = 0.0,
    burst: int = 0,
    retry_after: RetryAfter = "seconds",
    faults: FaultPlan = FaultPlan(),
) -> web.Application:
    """Build the sandbox application, recording into ``state``.

    ``rate`` > 0 allows ``rate + burst`` requests in any sliding one-second window and answers
    429 beyond that; ``retry_after`` chooses the form of the ``Retry-After`` header.
    """
    if not api_key:
        raise ValueError("api_key must not be empty")
    if not rate >= 0.0:
        raise ValueError(f"rate must be >= 0 (0 disables the limit), got {rate!r}")
    if burst < 0:
        raise ValueError(f"burst must be >= 0, got {burst!r}")
    handler = _Handler(
        state,
        api_key=api_key,
        rate=rate,
        burst=burst,
        retry_after=_retry_after_mode(retry_after),
        faults=faults,
    )
    app = web.Application(middlewares=[handler.middleware])
    app.router.add_route("PATCH", "/v1/leads/{id}", handler.patch_lead)
    return app


def _retry_after_mode(value: str) -> RetryAfter:
    if value not in _RETRY_AFTER_MODES:
        raise ValueError(
            f"retry_after must be one of {', '.join(_RETRY_AFTER_MODES)}, got {value!r}"
        )
    return cast(RetryAfter, value)


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response(
        {"success": False, "error": {"code": code, "message": message}}, status=status
    )


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _BadRequest(Exception):
    """The request body broke the API contract."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _reject_constant(name: str) -> Any:
    # json.loads accepts NaN and Infinity, which are not JSON.
    raise ValueError(f"{name} is not valid JSON")


def _validate(body: object) -> dict[str, Any]:
    """Check a decoded body against the update contract; return it as a dict."""
    if not isinstance(body, dict):
        raise _BadRequest(400, "VALIDATION_ERROR", "Body must be a JSON object")
    if "email" in body:
        raise _BadRequest(400, "VALIDATION_ERROR", "Email cannot be changed after creation")
    if not body:
        raise _BadRequest(400, "VALIDATION_ERROR", "Body must set at least one field")
    for key, value in body.items():
        if key in _STRING_FIELDS:
            if not isinstance(value, str):
                raise _BadRequest(400, "VALIDATION_ERROR", f"Field '{key}' must be a string")
        elif key == "tags":
            if not isinstance(value, list) or not all(isinstance(tag, str) for tag in value):
                raise _BadRequest(
                    400, "VALIDATION_ERROR", "Field 'tags' must be an array of strings"
                )
        elif key == "customFields":
            if not isinstance(value, dict):
                raise _BadRequest(400, "VALIDATION_ERROR", "Field 'customFields' must be an object")
            for name, item in value.items():
                if item is not None and not isinstance(item, str | int | float | bool):
                    raise _BadRequest(
                        400,
                        "VALIDATION_ERROR",
                        f"Field 'customFields.{name}' must be a string, number, boolean or null",
                    )
        else:
            raise _BadRequest(
                400,
                "VALIDATION_ERROR",
                f"Unknown field '{key}'; allowed: {', '.join(sorted(_ALLOWED_FIELDS))}",
            )
    return body


class _Handler:
    """The request handling of one sandbox app, with its private bookkeeping."""

    def __init__(
        self,
        state: SandboxState,
        *,
        api_key: str,
        rate: float,
        burst: int,
        retry_after: RetryAfter,
        faults: FaultPlan,
    ) -> None:
        self.state = state
        self.api_key = api_key
        self.platform_key = api_key.startswith(_PLATFORM_KEY_PREFIX)
        self.limit = rate + burst if rate > 0 else 0.0
        self.retry_after = retry_after
        self.faults = faults
        self.random = random.Random(faults.seed)
        self.window: collections.deque[float] = collections.deque()
        self.in_flight: collections.Counter[str] = collections.Counter()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.state.requests += 1
        self._notify()
        try:
            if request.match_info.http_exception is None:
                return await handler(request)
            # Anything but PATCH /v1/leads/{id}: a client of this API should never send it.
            self.state.stray.append(f"{request.method} {request.raw_path}")
            return _error(404, "ROUTE_NOT_FOUND", f"No route for {request.method} {request.path}")
        finally:
            self._notify()

    def _notify(self) -> None:
        """Wake whoever waits on the state (`SandboxThread.wait_until`): on arrival and answer."""
        with self.state.changed:
            self.state.changed.notify_all()

    async def patch_lead(self, request: web.Request) -> web.StreamResponse:
        lead_id = request.match_info["id"]
        state = self.state
        state.patches_by_lead[lead_id] += 1
        self.in_flight[lead_id] += 1
        state.max_in_flight_per_lead = max(state.max_in_flight_per_lead, self.in_flight[lead_id])
        try:
            return await self._patch_lead(request, lead_id)
        finally:
            self.in_flight[lead_id] -= 1
            if not self.in_flight[lead_id]:
                del self.in_flight[lead_id]

    async def _patch_lead(self, request: web.Request, lead_id: str) -> web.StreamResponse:
        denied = self._authenticate(request)
        if denied is not None:
            self.state.auth_failures += 1
            return denied
        limited = self._rate_limit()
        if limited is not None:
            self.state.rate_limited += 1
            return limited
        slow = False
        if self.faults.rate > 0 and self.random.random() < self.faults.rate:
            kind = self.random.choice(self.faults.kinds)
            self.state.faults[kind] += 1
            if kind == "503":
                return web.Response(status=503, text=_HTML_503, content_type="text/html")
            if kind == "500":
                return _error(500, "INTERNAL", "Internal server error")
            if kind == "drop":
                return self._drop(request)
            slow = True
        response = await self._update(request, lead_id)
        if slow:
            # The update is applied but the answer comes late: the client times out and retries.
            await asyncio.sleep(self.faults.slow_seconds)
        return response

    def _authenticate(self, request: web.Request) -> web.Response | None:
        x_api_key = request.headers.get("X-Api-Key")
        authorization = request.headers.get("Authorization")
        if x_api_key is not None and authorization is not None:
            self._bad(request, "sent both X-Api-Key and Authorization")
        presented: list[str] = []
        if x_api_key is not None:
            presented.append(x_api_key)
        if authorization is not None:
            scheme, _, token = authorization.partition(" ")
            presented.append(token.strip() if scheme.lower() == "bearer" else "")
        # aiohttp decodes header bytes with surrogateescape; encode them back the same way.
        expected = self.api_key.encode()
        if not presented or not all(
            hmac.compare_digest(key.encode("utf-8", "surrogateescape"), expected)
            for key in presented
        ):
            return web.json_response(_UNAUTHORIZED, status=401)
        if self.platform_key and not request.headers.get("X-Workspace-Id"):
            return web.json_response(_FORBIDDEN, status=403)
        return None

    def _rate_limit(self) -> web.Response | None:
        if not self.limit:
            return None
        now = asyncio.get_running_loop().time()
        window = self.window
        while window and window[0] <= now - 1.0:
            window.popleft()
        if len(window) < self.limit:
            window.append(now)
            return None
        wait = window[0] + 1.0 - now
        response = _error(429, "RATE_LIMITED", "Too many requests")
        if self.retry_after == "seconds":
            response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
        elif self.retry_after == "date":
            response.headers["Retry-After"] = email.utils.formatdate(
                math.ceil(time.time() + wait), usegmt=True
            )
        return response

    def _drop(self, request: web.Request) -> web.StreamResponse:
        # Close the socket without an answer; aiohttp then fails to write the response below
        # with a ConnectionError, which it treats as a client that went away (nothing logged).
        response = web.Response(status=204)
        response.force_close()
        if request.transport is not None:
            request.transport.close()
        return response

    async def _update(self, request: web.Request, lead_id: str) -> web.Response:
        try:
            fields = await self._read_body(request)
        except _BadRequest as exc:
            self._bad(request, f"{exc.status} {exc.message}")
            return _error(exc.status, exc.code, exc.message)
        lead = self.state.leads.get(lead_id)
        if lead is None:
            return _error(404, "NOT_FOUND", "Lead not found")
        for key, value in fields.items():
            if key == "customFields":
                custom = lead.get("customFields")
                lead["customFields"] = {**(custom if isinstance(custom, dict) else {}), **value}
            elif key == "tags":
                lead["tags"] = list(value)
            else:
                lead[key] = value
        lead["updatedAt"] = _now_iso()
        self.state.applied_by_lead[lead_id] += 1
        return web.json_response({"success": True, "data": lead})

    async def _read_body(self, request: web.Request) -> dict[str, Any]:
        if request.content_type != "application/json":
            raise _BadRequest(
                415,
                "UNSUPPORTED_MEDIA_TYPE",
                f"Content-Type must be application/json, got {request.content_type}",
            )
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge as exc:
            raise _BadRequest(413, "PAYLOAD_TOO_LARGE", "Body is too large") from exc
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _BadRequest(400, "VALIDATION_ERROR", "Body is not valid UTF-8") from exc
        try:
            body = json.loads(text, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:
            raise _BadRequest(400, "VALIDATION_ERROR", "Body is not valid JSON") from exc
        return _validate(body)

    def _bad(self, request: web.Request, problem: str) -> None:
        self.state.bad_requests.append(f"{request.method} {request.raw_path}: {problem}")


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class Sandbox:
    """The sandbox served in the current event loop; ``async with`` starts and stops it.

    ``port=0`` picks a free port; :attr:`url` says which, once started.
    """

    def __init__(
        self,
        leads: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        port: int = 0,
        api_key: str = DEFAULT_SANDBOX_KEY,
        rate: float = 0.0,
        burst: int = 0,
        retry_after: RetryAfter = "seconds",
        faults: FaultPlan = FaultPlan(),
        host: str = "127.0.0.1",
    ) -> None:
        self.state = SandboxState(
            leads={str(key): copy.deepcopy(dict(lead)) for key, lead in (leads or {}).items()}
        )
        # Build the app now so that bad settings fail at construction, not at start.
        self._app = create_app(
            self.state,
            api_key=api_key,
            rate=rate,
            burst=burst,
            retry_after=retry_after,
            faults=faults,
        )
        self._host = host
        self._port = port
        # In-flight handlers (a slow fault) get this long to finish when the sandbox stops.
        self._shutdown_timeout = faults.slow_seconds + 1.0
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. ``http://127.0.0.1:41234``."""
        if self._url is None:
            raise RuntimeError("the sandbox is not running; use 'async with Sandbox(...)'")
        return self._url

    async def __aenter__(self) -> Sandbox:
        if self._runner is not None:
            raise RuntimeError("the sandbox is already running")
        runner = web.AppRunner(
            self._app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=self._shutdown_timeout,
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._url = _url(self._host, runner.addresses[0][1])
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


class SandboxThread:
    """The sandbox served by a background thread with its own event loop; ``with`` starts it.

    For synchronous tests and for tests that run the CLI in a subprocess.
    """

    def __init__(
        self,
        leads: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        port: int = 0,
        api_key: str = DEFAULT_SANDBOX_KEY,
        rate: float = 0.0,
        burst: int = 0,
        retry_after: RetryAfter = "seconds",
        faults: FaultPlan = FaultPlan(),
        host: str = "127.0.0.1",
    ) -> None:
        self._sandbox = Sandbox(
            leads,
            port=port,
            api_key=api_key,
            rate=rate,
            burst=burst,
            retry_after=retry_after,
            faults=faults,
            host=host,
        )
        self.state = self._sandbox.state
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. ``http://127.0.0.1:41234``."""
        if self._url is None:
            raise RuntimeError("the sandbox is not running; use 'with SandboxThread(...)'")
        return self._url

    def wait_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Block until `condition()` holds, re-checked after every request; False on timeout."""
        with self.state.changed:
            return self.state.changed.wait_for(condition, timeout)

    def __enter__(self) -> SandboxThread:
        if self._thread is not None:
            raise RuntimeError("the sandbox thread was already started")
        self._thread = threading.Thread(target=self._run, name="bulk-updater-sandbox", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            self._thread.join()
            raise self._error
        self._url = self._sandbox.url
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._thread is None:
            return
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join()
        self._url = None
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported in the caller's thread, not lost in this one
            self._error = exc
        finally:
            self._started.set()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        async with self._sandbox:
            self._loop = asyncio.get_running_loop()
            self._started.set()
            await self._stop.wait()


def serve(
    *,
    port: int,
    leads_file: str | None,
    api_key: str,
    rate: float,
    burst: int,
    retry_after: str,
    faults: FaultPlan,
    host: str = "127.0.0.1",
) -> None:
    """Serve the sandbox in the foreground until SIGINT or SIGTERM, then return.

    Prints one line, ``sandbox: serving N leads at URL``, to stdout first.
    """
    leads = load_leads(leads_file) if leads_file is not None else {}
    sandbox = Sandbox(
        leads,
        port=port,
        api_key=api_key,
        rate=rate,
        burst=burst,
        retry_after=_retry_after_mode(retry_after),
        faults=faults,
        host=host,
    )
    asyncio.run(_serve(sandbox))


async def _serve(sandbox: Sandbox) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    handled = (signal.SIGINT, signal.SIGTERM)  # POSIX only, like the rest of the package (flock)
    for signum in handled:
        loop.add_signal_handler(signum, stop.set)
    try:
        async with sandbox:
            print(f"sandbox: serving {len(sandbox.state.leads)} leads at {sandbox.url}", flush=True)
            await stop.wait()
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)

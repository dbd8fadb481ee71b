"""The sandbox application: its routes and the one path every API request takes.

API requests (anything not under `/_sandbox/`) all go through `_Handler.middleware`, in order:

1. Bookkeeping that does not depend on the key: `requests`, `arrivals`, `patches_by_lead`,
   `searches`, `stray` and the in-flight count per lead.
2. The `intercept` hook, if any. An answer from it is sent as is: no rate-limit headers, no
   latency, nothing else recorded.
3. The route. `PATCH /v1/leads/{id}` and `GET /v1/leads` check the key, then the rate limit, then
   draw a fault, then do their work. Any other path is a 404 `ROUTE_NOT_FOUND`.
4. Rate-limit headers (`ratelimit.py`), then the latency, then the answer goes out.

The latency stands for the real server's processing time, so it comes after the request was
counted and the update applied: `latency_ms` times a uniform jitter in [0.8, 1.2], drawn from a
generator seeded by `seed`.

`GET /_sandbox/leads` and `GET /_sandbox/leads/{id}` show the leads to a person with `curl`, and
`GET /_sandbox/stats` what the sandbox counted (for `make bench`, which runs it as a process): no
key, not counted, no limit, never intercepted.
"""

from __future__ import annotations

import asyncio
import collections
import json
import random
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TypedDict

from aiohttp import web
from aiohttp.typedefs import Handler

from . import contract, search
from .faults import FaultPlan, Faults
from .leads import apply_update
from .ratelimit import HeaderStyle, RateLimit, RetryAfter, Shape, max_in_any_window
from .recorded import DEFAULT_SANDBOX_KEY, SandboxState

__all__ = ["HANDLER", "Intercept", "SandboxOptions", "create_app"]

Intercept = Callable[[web.Request], Awaitable[web.StreamResponse | None]]
"""`async def intercept(request) -> web.StreamResponse | None`; an answer replaces the usual one."""

_NO_FAULTS = FaultPlan()
_INSPECT_PREFIX = "/_sandbox/"
_PATCH_LEAD = "patch-lead"
_LIST_LEADS = "list-leads"


class SandboxOptions(TypedDict, total=False):
    """The keyword options of `create_app`, also accepted by `Sandbox` and `SandboxThread`."""

    api_key: str
    rate: float
    burst: int
    retry_after: RetryAfter
    faults: FaultPlan
    headers: HeaderStyle | None
    shape: Shape
    halve_after: float | None
    restore_after: float | None
    latency_ms: float
    seed: int | None
    intercept: Intercept | None


def create_app(
    state: SandboxState,
    *,
    api_key: str = DEFAULT_SANDBOX_KEY,
    rate: float = 0.0,
    burst: int = 0,
    retry_after: RetryAfter = "seconds",
    faults: FaultPlan = _NO_FAULTS,
    headers: HeaderStyle | None = None,
    shape: Shape = "sliding",
    halve_after: float | None = None,
    restore_after: float | None = None,
    latency_ms: float = 0.0,
    seed: int | None = None,
    intercept: Intercept | None = None,
) -> web.Application:
    """Build the sandbox application, recording into `state`.

    `rate` > 0 allows `rate + burst` requests in any sliding one-second window and answers 429
    beyond that; `retry_after` chooses the form of the `Retry-After` header and `headers` the
    rate-limit headers, `shape` the kind of limit, `halve_after` and `restore_after` a limit that
    halves mid-job (`ratelimit.py` has the exact rules). `latency_ms` delays every API answer.
    `intercept` may answer an API request before the sandbox does.
    """
    if not api_key:
        raise ValueError("api_key must not be empty")
    if not latency_ms >= 0.0:
        raise ValueError(f"latency_ms must be >= 0, got {latency_ms!r}")
    limit = RateLimit(
        rate=rate,
        burst=burst,
        retry_after=retry_after,
        headers=headers,
        shape=shape,
        halve_after=halve_after,
        restore_after=restore_after,
    )
    handler = _Handler(
        state,
        api_key=api_key,
        limit=limit,
        faults=faults,
        latency_ms=latency_ms,
        seed=seed,
        intercept=intercept,
    )
    app = web.Application(middlewares=[handler.middleware])
    app[HANDLER] = handler
    app.router.add_route("PATCH", "/v1/leads/{id}", handler.patch_lead, name=_PATCH_LEAD)
    app.router.add_route("GET", "/v1/leads", handler.list_leads, name=_LIST_LEADS)
    app.router.add_route("GET", "/_sandbox/leads", handler.inspect_leads)
    app.router.add_route("GET", "/_sandbox/leads/{id}", handler.inspect_lead)
    app.router.add_route("GET", "/_sandbox/stats", handler.inspect_stats)
    return app


def _pretty(data: object, status: int = 200) -> web.Response:
    # Indented: these answers are read by a person at a terminal.
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    return web.Response(text=text, status=status, content_type="application/json")


class _Handler:
    """The request handling of one sandbox app, with its private bookkeeping."""

    def __init__(
        self,
        state: SandboxState,
        *,
        api_key: str,
        limit: RateLimit,
        faults: FaultPlan,
        latency_ms: float,
        seed: int | None,
        intercept: Intercept | None,
    ) -> None:
        self.state = state
        self.api_key = api_key
        self.limit = limit
        self.faults = Faults(faults, state.faults)
        self.latency = latency_ms / 1000.0
        # Apart from the faults' generator, so that a latency never shifts a seeded fault sequence.
        self._jitter = random.Random(seed)
        self.intercept = intercept
        self.in_flight: collections.Counter[str] = collections.Counter()

    def longest_answer(self) -> float:
        """Seconds a handler may still need to answer: what a clean stop should wait for."""
        return self.faults.plan.slow_seconds + self.latency * 1.2

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(_INSPECT_PREFIX):
            if request.match_info.http_exception is not None:
                return contract.error(404, "ROUTE_NOT_FOUND", f"No route for {request.path}")
            return await handler(request)
        lead_id = self._arrive(request)
        try:
            return await self._answer(request, handler)
        finally:
            if lead_id is not None:
                self.in_flight[lead_id] -= 1
                if not self.in_flight[lead_id]:
                    del self.in_flight[lead_id]
            self._notify()

    def _arrive(self, request: web.Request) -> str | None:
        """Record an API request; return its lead id if it is a PATCH of one."""
        state = self.state
        state.requests += 1
        state.arrivals.append(asyncio.get_running_loop().time())
        lead_id = None
        route = request.match_info.route.name
        if request.match_info.http_exception is not None:
            # Anything but the API's routes: a client of this API should never send it.
            state.stray.append(f"{request.method} {request.raw_path}")
        elif route == _PATCH_LEAD:
            lead_id = request.match_info["id"]
            state.patches_by_lead[lead_id] += 1
            self.in_flight[lead_id] += 1
            state.max_in_flight_per_lead = max(
                state.max_in_flight_per_lead, self.in_flight[lead_id]
            )
        elif route == _LIST_LEADS:
            state.search_requests += 1
            state.searches[request.query.get("search", "")] += 1
        self._notify()
        return lead_id

    def _notify(self) -> None:
        """Wake whoever waits on the state (`SandboxThread.wait_until`)."""
        with self.state.changed:
            self.state.changed.notify_all()

    async def _answer(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.intercept is not None:
            intercepted = await self.intercept(request)
            if intercepted is not None:
                return intercepted
        if request.match_info.http_exception is not None:
            response: web.StreamResponse = contract.error(
                404, "ROUTE_NOT_FOUND", f"No route for {request.method} {request.path}"
            )
        else:
            response = await handler(request)
        if request.transport is None or request.transport.is_closing():
            return response  # dropped: nobody to answer, nothing to delay
        self.limit.add_headers(response)
        if self.latency:
            await asyncio.sleep(self.latency * self._jitter.uniform(0.8, 1.2))
        return response

    def _admit(self, request: web.Request) -> tuple[web.StreamResponse | None, bool]:
        """Key, rate limit, fault: an answer that ends the request, and whether to answer late."""
        problem = contract.auth_problem(request)
        if problem is not None:
            self._bad(request, problem)
        denied = contract.refuse(request, self.api_key)
        if denied is not None:
            self.state.auth_failures += 1
            return denied, False
        limited = self.limit.admit()
        if limited is not None:
            self.state.rate_limited += 1
            return limited, False
        kind = self.faults.draw()
        if kind is None:
            return None, False
        return self.faults.answer(kind, request), kind == "slow"

    async def _serve(
        self, request: web.Request, action: Callable[[], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """The API routes' shared path: `_admit`, then `action`, then a slow fault's wait."""
        ended, slow = self._admit(request)
        if ended is not None:
            return ended
        response = await action()
        if slow:
            # The work is done but the answer comes late: the client times out and retries.
            await asyncio.sleep(self.faults.plan.slow_seconds)
        return response

    async def patch_lead(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, partial(self._update, request, request.match_info["id"]))

    async def list_leads(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, partial(self._search, request))

    async def _update(self, request: web.Request, lead_id: str) -> web.Response:
        try:
            fields = await contract.read_update(request)
        except contract.BadRequest as exc:
            self._bad(request, f"{exc.status} {exc.message}")
            return exc.answer()
        lead = self.state.leads.get(lead_id)
        if lead is None:
            return contract.error(404, "NOT_FOUND", "Lead not found")
        apply_update(lead, fields)
        self.state.applied_by_lead[lead_id] += 1
        self._notify()
        return web.json_response({"success": True, "data": lead})

    async def _search(self, request: web.Request) -> web.Response:
        try:
            query = search.parse_query(request.query)
        except contract.BadRequest as exc:
            self._bad(request, f"{exc.status} {exc.message}")
            return exc.answer()
        return web.json_response(search.page(self.state.leads, query))

    def _bad(self, request: web.Request, problem: str) -> None:
        self.state.bad_requests.append(f"{request.method} {request.raw_path}: {problem}")

    async def inspect_leads(self, request: web.Request) -> web.StreamResponse:
        return _pretty(list(self.state.leads.values()))

    async def inspect_lead(self, request: web.Request) -> web.StreamResponse:
        lead = self.state.leads.get(request.match_info["id"])
        if lead is None:
            body = {"success": False, "error": {"code": "NOT_FOUND", "message": "Lead not found"}}
            return _pretty(body, status=404)
        return _pretty(lead)

    async def inspect_stats(self, request: web.Request) -> web.StreamResponse:
        state = self.state
        arrivals = state.arrivals
        return _pretty(
            {
                "requests": state.requests,
                "rate_limited": state.rate_limited,
                "faults": dict(state.faults),
                "auth_failures": state.auth_failures,
                "bad_requests": len(state.bad_requests),
                "stray": len(state.stray),
                "first_arrival": arrivals[0] if arrivals else None,
                "last_arrival": arrivals[-1] if arrivals else None,
                "max_in_any_window": max_in_any_window(arrivals),
            }
        )


HANDLER = web.AppKey("sandbox-handler", _Handler)
"""Where `create_app` keeps the handler, so `Sandbox` can change its limit while it serves."""

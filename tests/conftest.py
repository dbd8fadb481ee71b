"""Shared test helpers: a virtual-time event loop, a scriptable fake sender, lead factories."""

from __future__ import annotations

import asyncio
import collections
import inspect
import selectors
from collections.abc import Callable, Coroutine
from types import SimpleNamespace
from typing import Any, TypeVar

import aiohttp
import aioresponses.core
import pytest

from bulk_updater import LeadUpdate, Reply, TransportError

T = TypeVar("T")


class _VirtualSelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    """Polls real file descriptors without blocking; moves the virtual clock instead of waiting."""

    def __init__(self) -> None:
        super().__init__()
        self.loop: VirtualTimeLoop | None = None

    def select(self, timeout: float | None = None) -> list[Any]:
        events = super().select(0)
        if events or self.loop is None:
            return events  # type: ignore[no-any-return]
        if timeout is None:
            return super().select(0.001)  # type: ignore[no-any-return]
        self.loop.now += timeout
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock jumps straight to the next timer: sleeps cost no real time.

    Everything built on `loop.time()` and `asyncio.sleep` (the pacer, backoffs, 429 pauses, grace
    periods) runs exactly as in production, only without waiting. Only for tests with no real I/O.
    """

    def __init__(self) -> None:
        self.now = 0.0
        selector = _VirtualSelector()
        super().__init__(selector)
        selector.loop = self

    def time(self) -> float:
        return self.now


async def advance(seconds: float) -> None:
    """Let `seconds` of virtual time pass (inside `run_virtual` only: it costs no real time)."""
    loop = asyncio.get_running_loop()
    assert isinstance(loop, VirtualTimeLoop), "advance() is for virtual-time tests"
    await asyncio.sleep(seconds)


def run_virtual(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion in virtual time."""
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


Script = Callable[[LeadUpdate, int], Reply | Exception]


def always_ok(update: LeadUpdate, attempt: int) -> Reply | Exception:
    return Reply(200)


class FakeSender:
    """A `Sender` that answers from a script: `script(update, attempt_for_this_id)`.

    Records every call (loop time, id) and the highest number of calls in flight at once, overall
    and for one id.
    """

    def __init__(self, script: Script = always_ok, *, latency: float = 0.01) -> None:
        self.script = script
        self.latency = latency
        self.calls: list[tuple[float, str]] = []
        self.bodies: list[dict[str, Any]] = []
        self.attempts: collections.Counter[str] = collections.Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self._per_id: collections.Counter[str] = collections.Counter()
        self.max_in_flight_per_id = 0

    async def send(self, update: LeadUpdate) -> Reply:
        loop = asyncio.get_running_loop()
        self.calls.append((loop.time(), update.id))
        self.bodies.append(update.body())
        self.attempts[update.id] += 1
        attempt = self.attempts[update.id]
        self.in_flight += 1
        self._per_id[update.id] += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.max_in_flight_per_id = max(self.max_in_flight_per_id, self._per_id[update.id])
        try:
            if self.latency:
                await asyncio.sleep(self.latency)
            result = self.script(update, attempt)
        finally:
            self.in_flight -= 1
            self._per_id[update.id] -= 1
        if isinstance(result, Exception):
            raise result
        return result


def transport_error() -> TransportError:
    return TransportError("connection", "the server closed the connection without answering")


def make_leads(n: int) -> dict[str, dict[str, Any]]:
    """`n` leads with 24-hex ids, in the API's shape."""
    leads = {}
    for i in range(n):
        lead_id = f"{i:024x}"
        leads[lead_id] = {
            "_id": lead_id,
            "email": f"lead{i}@example.com",
            "firstName": f"First{i}",
            "lastName": f"Last{i}",
            "companyName": "Acme",
            "jobTitle": "Engineer",
            "tags": ["old"],
            "customFields": {"industry": "SaaS", "keep": str(i)},
            "createdAt": "2025-06-10T10:30:00.000Z",
            "updatedAt": "2025-06-10T10:30:00.000Z",
        }
    return leads


@pytest.fixture
def fake_sender() -> FakeSender:
    return FakeSender()


class _CompatResponse(aiohttp.ClientResponse):
    """aioresponses 0.7.x builds responses without aiohttp 3.14's new `stream_writer` argument
    (pnuckowski/aioresponses#289); give it the stand-in aiohttp itself uses once a request is sent.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", SimpleNamespace(output_size=0))
        super().__init__(*args, **kwargs)


@pytest.fixture(autouse=True)
def _aioresponses_compat(monkeypatch: pytest.MonkeyPatch) -> None:
    if "stream_writer" in inspect.signature(aiohttp.ClientResponse.__init__).parameters:
        monkeypatch.setattr(aioresponses.core, "ClientResponse", _CompatResponse)

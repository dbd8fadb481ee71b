"""Injected faults: HTML 503, JSON 500, dropped connections, late answers; seeded and checked."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from bulk_updater.sandbox import FaultPlan, Sandbox

from .conftest import KEY, LEAD_ID, get, patch, two_leads


async def test_fault_503_is_html_and_leaves_lead_alone(session: aiohttp.ClientSession) -> None:
    faults = FaultPlan(rate=1.0, kinds=("503",))
    async with Sandbox(two_leads(), faults=faults) as sandbox:
        url = f"{sandbox.url}/v1/leads/{LEAD_ID}"
        async with session.patch(url, json={"city": "Oslo"}, headers={"X-Api-Key": KEY}) as answer:
            assert answer.status == 503
            assert answer.content_type == "text/html"
            assert "503 Service Temporarily Unavailable" in await answer.text()

    assert sandbox.state.faults == {"503": 1}
    assert sandbox.state.applied_by_lead == {}
    assert sandbox.state.leads[LEAD_ID].get("city") is None


async def test_fault_500_is_json_and_leaves_lead_alone(session: aiohttp.ClientSession) -> None:
    faults = FaultPlan(rate=1.0, kinds=("500",))
    async with Sandbox(two_leads(), faults=faults) as sandbox:
        status, body, _ = await patch(session, sandbox.url, {"city": "Oslo"})

    assert status == 500
    assert body["success"] is False
    assert body["error"]["code"] == "INTERNAL"
    assert sandbox.state.faults == {"500": 1}
    assert sandbox.state.leads[LEAD_ID].get("city") is None


async def test_fault_drop_closes_the_connection_without_an_answer(
    session: aiohttp.ClientSession,
) -> None:
    faults = FaultPlan(rate=1.0, kinds=("drop",))
    async with Sandbox(two_leads(), faults=faults) as sandbox:
        with pytest.raises(aiohttp.ClientConnectionError):
            await patch(session, sandbox.url, {"city": "Oslo"})

    assert sandbox.state.faults == {"drop": 1}
    assert sandbox.state.patches_by_lead == {LEAD_ID: 1}
    assert sandbox.state.applied_by_lead == {}
    assert sandbox.state.leads[LEAD_ID].get("city") is None


async def test_fault_drop_with_latency_and_headers_is_still_just_a_drop(
    session: aiohttp.ClientSession,
) -> None:
    faults = FaultPlan(rate=1.0, kinds=("drop",))
    settings = {"rate": 5.0, "headers": "ietf", "latency_ms": 60_000.0}
    async with Sandbox(two_leads(), faults=faults, **settings) as sandbox:  # type: ignore[arg-type]
        with pytest.raises(aiohttp.ClientConnectionError):
            await asyncio.wait_for(patch(session, sandbox.url, {"city": "Oslo"}), timeout=30)

    assert sandbox.state.faults == {"drop": 1}


async def test_fault_slow_applies_then_answers_late(session: aiohttp.ClientSession) -> None:
    faults = FaultPlan(rate=1.0, kinds=("slow",), slow_seconds=0.05)
    async with Sandbox(two_leads(), faults=faults) as sandbox:
        status, body, _ = await patch(session, sandbox.url, {"city": "Oslo"})

    assert status == 200
    assert body["data"]["city"] == "Oslo"
    assert sandbox.state.faults == {"slow": 1}


async def test_fault_slow_times_out_but_the_update_is_applied(
    session: aiohttp.ClientSession,
) -> None:
    faults = FaultPlan(rate=1.0, kinds=("slow",), slow_seconds=0.05)
    async with Sandbox(two_leads(), faults=faults) as sandbox:
        with pytest.raises(asyncio.TimeoutError):
            await patch(session, sandbox.url, {"city": "Oslo"}, total_timeout=0.01)

    # Leaving the sandbox waits for the late answer, so the update is visible now.
    assert sandbox.state.faults == {"slow": 1}
    assert sandbox.state.applied_by_lead == {LEAD_ID: 1}
    assert sandbox.state.leads[LEAD_ID]["city"] == "Oslo"


async def test_faults_are_reproducible_with_a_seed(session: aiohttp.ClientSession) -> None:
    async def run() -> list[int]:
        faults = FaultPlan(rate=0.5, kinds=("503", "500"), seed=7)
        async with Sandbox(two_leads(), faults=faults) as sandbox:
            return [(await patch(session, sandbox.url, {"city": "x"}))[0] for _ in range(30)]

    first, second = await run(), await run()
    assert first == second
    assert {200, 500, 503} == set(first)


async def test_latency_jitter_does_not_shift_a_seeded_fault_sequence(
    session: aiohttp.ClientSession,
) -> None:
    async def run(latency_ms: float) -> list[int]:
        faults = FaultPlan(rate=0.5, kinds=("503", "500"), seed=7)
        async with Sandbox(two_leads(), faults=faults, latency_ms=latency_ms, seed=1) as sandbox:
            return [(await patch(session, sandbox.url, {"city": "x"}))[0] for _ in range(12)]

    assert await run(0) == await run(1)


async def test_faults_apply_to_searches_too(session: aiohttp.ClientSession) -> None:
    faults = FaultPlan(rate=1.0, kinds=("500",))
    async with Sandbox(two_leads(), faults=faults) as sandbox:
        status, body, _ = await get(session, f"{sandbox.url}/v1/leads", {"search": "jane"})

    assert status == 500
    assert body["error"]["code"] == "INTERNAL"
    assert sandbox.state.faults == {"500": 1}
    assert sandbox.state.searches == {"jane": 1}


async def test_a_slow_search_answers_late(session: aiohttp.ClientSession) -> None:
    faults = FaultPlan(rate=1.0, kinds=("slow",), slow_seconds=0.05)
    async with Sandbox(two_leads(), faults=faults) as sandbox:
        status, body, _ = await get(session, f"{sandbox.url}/v1/leads")

    assert status == 200
    assert body["pagination"]["total"] == 2


def test_fault_plan_checks_its_values() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        FaultPlan(rate=1.5)
    with pytest.raises(ValueError, match="unknown fault kind"):
        FaultPlan(rate=0.1, kinds=("timeout",))
    with pytest.raises(ValueError, match="must not be empty"):
        FaultPlan(kinds=())
    with pytest.raises(ValueError, match="slow_seconds"):
        FaultPlan(slow_seconds=-1)

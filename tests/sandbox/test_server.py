"""Running the sandbox and what every API request goes through: semantics, bookkeeping, latency,
the intercept hook and the `/_sandbox/` pages, over real loopback sockets."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import re
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bulk_updater.sandbox import FaultPlan, Sandbox, SandboxThread, load_leads

from .conftest import (
    KEY,
    LEAD_ID,
    MISSING_ID,
    OTHER_ID,
    ROOT,
    SAMPLES,
    get,
    patch,
    two_leads,
)

# --- update semantics -------------------------------------------------------------------------


async def test_update_merges_custom_fields_and_replaces_other_fields(
    session: aiohttp.ClientSession,
) -> None:
    leads = two_leads()
    async with Sandbox(leads) as sandbox:
        status, body, _ = await patch(
            session,
            sandbox.url,
            {
                "jobTitle": "CTO",
                "tags": ["vip", "enterprise"],
                "customFields": {"industry": "Fintech", "revenue": 1200000, "nda": True},
            },
        )

    assert status == 200
    assert body["success"] is True
    lead = body["data"]
    assert lead == sandbox.state.leads[LEAD_ID]
    assert lead["jobTitle"] == "CTO"
    assert lead["tags"] == ["vip", "enterprise"]  # replaced, not appended
    assert lead["customFields"] == {
        "industry": "Fintech",
        "source": "web",  # not sent, so kept
        "revenue": 1200000,
        "nda": True,
    }
    assert lead["firstName"] == "Jane"
    assert lead["email"] == "jane@example.com"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", lead["updatedAt"])
    assert lead["updatedAt"] != "2026-01-01T00:00:00.000Z"
    assert sandbox.state.applied_by_lead == {LEAD_ID: 1}
    assert sandbox.state.patches_by_lead == {LEAD_ID: 1}
    assert sandbox.state.bad_requests == []
    assert sandbox.state.leads[OTHER_ID] == two_leads()[OTHER_ID]
    # The caller's leads were copied, not updated in place.
    assert leads[LEAD_ID]["jobTitle"] == "Engineer"
    assert leads[LEAD_ID]["customFields"] == {"industry": "SaaS", "source": "web"}


async def test_unknown_lead_is_404_not_found(session: aiohttp.ClientSession) -> None:
    async with Sandbox(two_leads()) as sandbox:
        status, body, _ = await patch(session, sandbox.url, {"city": "Oslo"}, lead_id=MISSING_ID)

    assert status == 404
    assert body == {"success": False, "error": {"code": "NOT_FOUND", "message": "Lead not found"}}
    assert sandbox.state.patches_by_lead == {MISSING_ID: 1}
    assert sandbox.state.applied_by_lead == {}
    assert sandbox.state.bad_requests == []


async def test_stray_requests_are_recorded_and_404(session: aiohttp.ClientSession) -> None:
    async with Sandbox(two_leads()) as sandbox:
        async with session.get(f"{sandbox.url}/v1/leads/{LEAD_ID}") as get_lead:
            assert get_lead.status == 404
            answer = await get_lead.json()
        async with session.patch(f"{sandbox.url}/v1/leads/a/b?x=1", json={"city": "x"}) as nested:
            assert nested.status == 404
        async with session.post(f"{sandbox.url}/v1/account") as account:
            assert account.status == 404

    assert answer["success"] is False
    assert answer["error"]["code"] == "ROUTE_NOT_FOUND"
    assert sandbox.state.stray == [
        f"GET /v1/leads/{LEAD_ID}",
        "PATCH /v1/leads/a/b?x=1",
        "POST /v1/account",
    ]
    assert sandbox.state.requests == 3
    assert sandbox.state.patches_by_lead == {}


# --- bookkeeping ------------------------------------------------------------------------------


async def test_every_api_request_records_its_arrival(session: aiohttp.ClientSession) -> None:
    async with Sandbox(two_leads()) as sandbox:
        loop = asyncio.get_running_loop()
        before = loop.time()
        await patch(session, sandbox.url, {"city": "Oslo"})
        await patch(session, sandbox.url, {"city": "Oslo"}, headers={"X-Api-Key": "wrong"})
        await get(session, f"{sandbox.url}/v1/leads")
        await get(session, f"{sandbox.url}/nowhere")
        after = loop.time()

    arrivals = sandbox.state.arrivals
    assert len(arrivals) == sandbox.state.requests == 4
    assert arrivals == sorted(arrivals)
    assert before <= arrivals[0]
    assert arrivals[-1] <= after


async def test_max_in_flight_per_lead_counts_concurrent_requests(
    session: aiohttp.ClientSession,
) -> None:
    # Each slow answer keeps its request in the handler long enough for all three to overlap.
    faults = FaultPlan(rate=1.0, kinds=("slow",), slow_seconds=0.5)
    async with Sandbox(two_leads(), faults=faults) as sandbox:
        answers = await asyncio.gather(
            *(patch(session, sandbox.url, {"city": f"City {n}"}) for n in range(3)),
            patch(session, sandbox.url, {"city": "Elsewhere"}, lead_id=OTHER_ID),
        )

    assert [status for status, _, _ in answers] == [200, 200, 200, 200]
    assert sandbox.state.max_in_flight_per_lead == 3
    assert sandbox.state.applied_by_lead == {LEAD_ID: 3, OTHER_ID: 1}


async def test_sequential_requests_are_one_in_flight(session: aiohttp.ClientSession) -> None:
    async with Sandbox(two_leads()) as sandbox:
        for n in range(3):
            await patch(session, sandbox.url, {"city": f"City {n}"})

    assert sandbox.state.max_in_flight_per_lead == 1
    assert sandbox.state.requests == 3


# --- latency ----------------------------------------------------------------------------------


async def test_latency_delays_every_answer(session: aiohttp.ClientSession) -> None:
    loop = asyncio.get_running_loop()
    async with Sandbox(two_leads(), latency_ms=150, seed=3) as sandbox:
        elapsed = []
        for send in (
            lambda: patch(session, sandbox.url, {"city": "Oslo"}),
            lambda: patch(session, sandbox.url, {"city": "Oslo"}, lead_id=MISSING_ID),
            lambda: patch(session, sandbox.url, {"city": "x"}, headers={"X-Api-Key": "no"}),
            lambda: get(session, f"{sandbox.url}/v1/leads", {"search": "jane"}),
            lambda: get(session, f"{sandbox.url}/nowhere"),
        ):
            start = loop.time()
            await send()
            elapsed.append(loop.time() - start)

    assert min(elapsed) >= 0.8 * 0.150, elapsed


def test_latency_comes_after_the_update_is_applied() -> None:
    async def answered_late(url: str) -> tuple[bool, int]:
        async with aiohttp.ClientSession() as session:
            request = asyncio.ensure_future(patch(session, url, {"city": "Oslo"}))
            applied = await asyncio.to_thread(
                sandbox.wait_until, lambda: sandbox.state.applied_by_lead[LEAD_ID] == 1, 10
            )
            pending = applied and not request.done()
            status, _, _ = await request
            return pending, status

    with SandboxThread(two_leads(), latency_ms=1000) as sandbox:
        pending, status = asyncio.run(answered_late(sandbox.url))

    assert pending  # applied, counted, and the answer still on its way
    assert status == 200
    assert sandbox.state.requests == 1


async def test_no_latency_for_the_inspection_pages(session: aiohttp.ClientSession) -> None:
    loop = asyncio.get_running_loop()
    async with Sandbox(two_leads(), latency_ms=60_000) as sandbox:
        start = loop.time()
        status, _, _ = await get(session, f"{sandbox.url}/_sandbox/leads/{LEAD_ID}", headers={})
        assert loop.time() - start < 30
    assert status == 200


async def test_a_request_is_in_flight_until_its_late_answer(
    session: aiohttp.ClientSession,
) -> None:
    async with Sandbox(two_leads(), latency_ms=300) as sandbox:
        await asyncio.gather(*(patch(session, sandbox.url, {"city": "x"}) for _ in range(2)))

    assert sandbox.state.max_in_flight_per_lead == 2


def test_negative_latency_fails_at_construction() -> None:
    with pytest.raises(ValueError, match="latency_ms"):
        Sandbox(latency_ms=-1)


# --- the intercept hook -----------------------------------------------------------------------


async def test_intercept_answers_as_is_after_the_bookkeeping(
    session: aiohttp.ClientSession,
) -> None:
    seen: list[tuple[int, int, str]] = []

    async def echo_the_key(request: web.Request) -> web.StreamResponse | None:
        seen.append((sandbox.state.requests, len(sandbox.state.arrivals), request.path))
        page = f"<html>your key is {request.headers.get('X-Api-Key')}</html>"
        return web.Response(text=page, content_type="text/html")

    # Latency and headers would show on a normal answer; the hook's answer goes out untouched.
    settings: dict[str, Any] = {"rate": 1, "headers": "xrl", "latency_ms": 60_000}
    async with Sandbox(two_leads(), intercept=echo_the_key, **settings) as sandbox:
        echoed = await asyncio.wait_for(
            patch(session, sandbox.url, {"city": "x"}, headers={"X-Api-Key": "k1"}), timeout=30
        )
        again = await asyncio.wait_for(get(session, f"{sandbox.url}/v1/leads"), timeout=30)

    assert echoed[:2] == (200, "<html>your key is k1</html>")  # before the key check
    assert again[0] == 200  # before the rate limit
    assert "X-RateLimit-Remaining" not in echoed[2]
    assert seen == [(1, 1, f"/v1/leads/{LEAD_ID}"), (2, 2, "/v1/leads")]
    state = sandbox.state
    assert state.patches_by_lead == {LEAD_ID: 1}
    assert state.search_requests == 1
    assert state.auth_failures == state.rate_limited == 0
    assert state.applied_by_lead == {}


async def test_intercept_returning_none_leaves_the_request_to_the_sandbox(
    session: aiohttp.ClientSession,
) -> None:
    async def always_429_for_one_lead(request: web.Request) -> web.StreamResponse | None:
        if request.match_info.get("id") == OTHER_ID:
            return web.json_response(
                {"error": "slow down"}, status=429, headers={"Retry-After": "0"}
            )
        return None

    async with Sandbox(two_leads(), intercept=always_429_for_one_lead) as sandbox:
        refused = [await patch(session, sandbox.url, {"city": "x"}, lead_id=OTHER_ID) for _ in "ab"]
        accepted = await patch(session, sandbox.url, {"city": "Oslo"})

    assert [(status, headers["Retry-After"]) for status, _, headers in refused] == [(429, "0")] * 2
    assert accepted[0] == 200
    assert sandbox.state.leads[LEAD_ID]["city"] == "Oslo"
    assert sandbox.state.patches_by_lead == {OTHER_ID: 2, LEAD_ID: 1}
    assert sandbox.state.rate_limited == 0  # the hook's 429s are not the sandbox's own
    assert sandbox.state.applied_by_lead == {LEAD_ID: 1}


async def test_intercept_may_send_a_huge_body(session: aiohttp.ClientSession) -> None:
    async def huge(request: web.Request) -> web.StreamResponse | None:
        return web.Response(body=b"x" * 5_000_000, content_type="application/octet-stream")

    async with Sandbox(two_leads(), intercept=huge) as sandbox:
        url = f"{sandbox.url}/v1/leads/{LEAD_ID}"
        async with session.patch(url, json={"city": "x"}, headers={"X-Api-Key": KEY}) as answer:
            assert len(await answer.read()) == 5_000_000

    assert sandbox.state.requests == 1


# --- the inspection pages ---------------------------------------------------------------------


async def test_inspection_pages_show_leads_without_a_key_and_are_not_counted(
    session: aiohttp.ClientSession,
) -> None:
    async with Sandbox(two_leads(), rate=1) as sandbox:
        await patch(session, sandbox.url, {"customFields": {"tier": "gold"}})
        one = await get(session, f"{sandbox.url}/_sandbox/leads/{LEAD_ID}", headers={})
        every = await get(session, f"{sandbox.url}/_sandbox/leads", headers={})
        missing = await get(session, f"{sandbox.url}/_sandbox/leads/{MISSING_ID}", headers={})
        nowhere = await get(session, f"{sandbox.url}/_sandbox/nowhere", headers={})

    assert one[0] == 200
    assert one[1] == sandbox.state.leads[LEAD_ID]
    assert one[1]["customFields"] == {"industry": "SaaS", "source": "web", "tier": "gold"}
    assert every[0] == 200
    assert every[1] == list(sandbox.state.leads.values())
    assert missing[0] == 404
    assert missing[1]["error"]["code"] == "NOT_FOUND"
    assert nowhere[0] == 404
    state = sandbox.state
    assert state.requests == len(state.arrivals) == 1  # the PATCH only
    assert state.stray == []
    assert state.auth_failures == state.rate_limited == 0


def test_inspection_pages_do_not_wake_waiters() -> None:
    with SandboxThread(two_leads()) as sb:
        with urllib.request.urlopen(f"{sb.url}/_sandbox/leads", timeout=10) as response:
            assert len(json.load(response)) == 2
        assert sb.state.requests == 0
        assert sb.wait_until(lambda: sb.state.requests > 0, timeout=0.05) is False


# --- other ways to run it ---------------------------------------------------------------------


def test_sandbox_thread_serves_a_sync_caller() -> None:
    async def client(url: str) -> tuple[int, Any]:
        async with aiohttp.ClientSession() as session:
            status, body, _ = await patch(session, url, {"customFields": {"tier": "gold"}})
            return status, body

    with SandboxThread(two_leads()) as sandbox:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", sandbox.url)
        status, body = asyncio.run(client(sandbox.url))

    assert status == 200
    assert body["data"]["customFields"] == {"industry": "SaaS", "source": "web", "tier": "gold"}
    assert sandbox.state.applied_by_lead == {LEAD_ID: 1}
    with pytest.raises(RuntimeError):
        _ = sandbox.url  # stopped


def test_sandbox_thread_reports_a_port_in_use() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(OSError, match=r"(?i)address already in use"), SandboxThread(port=port):
            pass


def test_sandbox_thread_wait_until_wakes_on_requests() -> None:
    with SandboxThread({}, api_key="k") as sb:
        assert sb.wait_until(lambda: sb.state.requests >= 1, timeout=0.05) is False
        request = urllib.request.Request(f"{sb.url}/nowhere", method="GET")
        with contextlib.suppress(urllib.error.HTTPError):
            urllib.request.urlopen(request, timeout=10)
        assert sb.wait_until(lambda: sb.state.requests >= 1, timeout=10) is True
        assert sb.state.stray == ["GET /nowhere"]


async def test_sandbox_refuses_a_second_start() -> None:
    async with Sandbox() as sandbox:
        with pytest.raises(RuntimeError, match="already running"):
            await sandbox.__aenter__()
    with pytest.raises(RuntimeError, match="not running"):
        _ = sandbox.url


def test_serve_prints_its_url_and_stops_on_sigterm() -> None:
    code = (
        "from bulk_updater.sandbox import serve, FaultPlan; "
        "serve(port=0, leads_file='samples/leads.json', api_key='k', rate=0, burst=0, "
        "retry_after='seconds', faults=FaultPlan())"
    )
    with subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            first = proc.stdout.readline()
            match = re.fullmatch(r"sandbox: serving 60 leads at (http://127\.0\.0\.1:\d+)\n", first)
            assert match, first
            lead_id = next(iter(load_leads(SAMPLES / "leads.json")))
            request = urllib.request.Request(
                f"{match[1]}/v1/leads/{lead_id}",
                data=json.dumps({"jobTitle": "CTO"}).encode(),
                headers={"X-Api-Key": "k", "Content-Type": "application/json"},
                method="PATCH",
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                assert json.load(response)["data"]["jobTitle"] == "CTO"
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0
            assert proc.stdout.read() == ""
            assert proc.stderr is not None
            assert proc.stderr.read() == ""
        finally:
            if proc.returncode is None:
                proc.kill()
                proc.wait()


# --- samples ----------------------------------------------------------------------------------


def test_sample_leads_load() -> None:
    leads = load_leads(SAMPLES / "leads.json")

    assert len(leads) == 60
    for lead_id, lead in leads.items():
        assert re.fullmatch(r"[0-9a-f]{24}", lead_id)
        assert isinstance(lead["tags"], list)
        assert isinstance(lead["customFields"], dict)
        assert lead["email"]


def test_sample_updates_fit_the_sample_leads() -> None:
    leads = load_leads(SAMPLES / "leads.json")
    with (SAMPLES / "updates.csv").open(encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))

    assert 30 <= len(rows) <= 50
    unknown = [row["id"] for row in rows if row["id"] not in leads]
    assert len(unknown) == 3
    assert all(re.fullmatch(r"[0-9a-f]{24}", row["id"]) for row in rows)
    for row in rows:
        assert any(value for name, value in row.items() if name not in {"id", "email"}), row
    tags = {row["tags"] for row in rows}
    assert "vip;enterprise" in tags
    assert '["vip","enterprise"]' in tags
    assert any("," in value for row in rows for value in row.values())
    assert all(json.loads(row["customFields"]) for row in rows if row["customFields"])


def test_load_leads_rejects_a_non_list(tmp_path: Path) -> None:
    path = tmp_path / "leads.json"
    path.write_text('{"_id": "x"}', encoding="utf-8")
    with pytest.raises(ValueError, match="JSON list"):
        load_leads(path)


@pytest.mark.parametrize(
    ("content", "problem"),
    [('[{"_id": ""}]', "item 0"), ('[{"_id": "a"}, {"_id": "a"}]', "duplicate lead id")],
)
def test_load_leads_rejects_bad_items(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "leads.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=problem):
        load_leads(path)

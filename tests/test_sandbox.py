"""The sandbox server, driven over real loopback sockets with aiohttp."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import email.utils
import json
import re
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bulk_updater.sandbox import (
    DEFAULT_SANDBOX_KEY,
    FaultPlan,
    Sandbox,
    SandboxThread,
    load_leads,
)

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"

LEAD_ID = "665d4e5f6a7b8c9d0e1f2a3b"
OTHER_ID = "665d4e5f6a7b8c9d0e1f2a3c"
MISSING_ID = "000000000000000000000000"
KEY = DEFAULT_SANDBOX_KEY
PLATFORM_KEY = "sk_user_0123456789abcdef"


def make_leads() -> dict[str, dict[str, Any]]:
    def lead(lead_id: str, first: str) -> dict[str, Any]:
        return {
            "_id": lead_id,
            "email": f"{first.lower()}@example.com",
            "firstName": first,
            "lastName": "Doe",
            "companyName": "Initech",
            "jobTitle": "Engineer",
            "tags": ["prospect"],
            "customFields": {"industry": "SaaS", "source": "web"},
            "createdAt": "2026-01-01T00:00:00.000Z",
            "updatedAt": "2026-01-01T00:00:00.000Z",
        }

    return {LEAD_ID: lead(LEAD_ID, "Jane"), OTHER_ID: lead(OTHER_ID, "John")}


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def patch(
    session: aiohttp.ClientSession,
    base_url: str,
    body: object,
    *,
    lead_id: str = LEAD_ID,
    headers: dict[str, str] | None = None,
    total_timeout: float | None = None,
) -> tuple[int, Any, aiohttp.typedefs.LooseHeaders]:
    """PATCH one lead; return status, decoded body (JSON or text) and response headers."""
    sent = {"X-Api-Key": KEY} if headers is None else headers
    async with session.patch(
        f"{base_url}/v1/leads/{lead_id}",
        json=body,
        headers=sent,
        timeout=aiohttp.ClientTimeout(total=total_timeout),
    ) as response:
        if response.content_type == "application/json":
            payload: Any = await response.json()
        else:
            payload = await response.text()
        return response.status, payload, response.headers


# --- update semantics -------------------------------------------------------------------------


async def test_update_merges_custom_fields_and_replaces_other_fields(
    session: aiohttp.ClientSession,
) -> None:
    leads = make_leads()
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
    assert sandbox.state.leads[OTHER_ID] == make_leads()[OTHER_ID]
    # The caller's leads were copied, not updated in place.
    assert leads[LEAD_ID]["jobTitle"] == "Engineer"
    assert leads[LEAD_ID]["customFields"] == {"industry": "SaaS", "source": "web"}


async def test_unknown_lead_is_404_not_found(session: aiohttp.ClientSession) -> None:
    async with Sandbox(make_leads()) as sandbox:
        status, body, _ = await patch(session, sandbox.url, {"city": "Oslo"}, lead_id=MISSING_ID)

    assert status == 404
    assert body == {"success": False, "error": {"code": "NOT_FOUND", "message": "Lead not found"}}
    assert sandbox.state.patches_by_lead == {MISSING_ID: 1}
    assert sandbox.state.applied_by_lead == {}
    assert sandbox.state.bad_requests == []


# --- authentication ---------------------------------------------------------------------------


async def test_wrong_key_is_401(session: aiohttp.ClientSession) -> None:
    async with Sandbox(make_leads()) as sandbox:
        wrong = await patch(session, sandbox.url, {"city": "Oslo"}, headers={"X-Api-Key": "nope"})
        missing = await patch(session, sandbox.url, {"city": "Oslo"}, headers={})

    for status, body, _ in (wrong, missing):
        assert status == 401
        assert body == {
            "error": "Unauthorized",
            "message": "Invalid or missing API key",
            "code": 401,
        }
    assert sandbox.state.auth_failures == 2
    assert sandbox.state.applied_by_lead == {}
    assert sandbox.state.leads[LEAD_ID].get("city") is None


async def test_bearer_key_is_accepted(session: aiohttp.ClientSession) -> None:
    async with Sandbox(make_leads(), api_key="sk_custom") as sandbox:
        status, body, _ = await patch(
            session, sandbox.url, {"city": "Oslo"}, headers={"Authorization": "Bearer sk_custom"}
        )

    assert status == 200
    assert body["data"]["city"] == "Oslo"
    assert sandbox.state.auth_failures == 0


async def test_both_auth_headers_are_a_contract_violation(session: aiohttp.ClientSession) -> None:
    async with Sandbox(make_leads()) as sandbox:
        status, _, _ = await patch(
            session,
            sandbox.url,
            {"city": "Oslo"},
            headers={"X-Api-Key": KEY, "Authorization": f"Bearer {KEY}"},
        )

    assert status == 200  # still authenticated
    assert len(sandbox.state.bad_requests) == 1
    assert "X-Api-Key and Authorization" in sandbox.state.bad_requests[0]


async def test_platform_key_needs_workspace_header(session: aiohttp.ClientSession) -> None:
    async with Sandbox(make_leads(), api_key=PLATFORM_KEY) as sandbox:
        without = await patch(
            session, sandbox.url, {"city": "Oslo"}, headers={"X-Api-Key": PLATFORM_KEY}
        )
        with_workspace = await patch(
            session,
            sandbox.url,
            {"city": "Rome"},
            headers={"X-Api-Key": PLATFORM_KEY, "X-Workspace-Id": "ws_1"},
        )

    assert without[0] == 403
    assert without[1] == {
        "error": "Forbidden",
        "message": "You don't have permission to access this resource",
        "code": 403,
    }
    assert with_workspace[0] == 200
    assert sandbox.state.auth_failures == 1
    assert sandbox.state.leads[LEAD_ID]["city"] == "Rome"
    assert sandbox.state.applied_by_lead == {LEAD_ID: 1}


# --- body validation --------------------------------------------------------------------------


async def test_email_in_body_is_400(session: aiohttp.ClientSession) -> None:
    async with Sandbox(make_leads()) as sandbox:
        status, body, _ = await patch(
            session, sandbox.url, {"email": "new@example.com", "city": "Oslo"}
        )

    assert status == 400
    assert body == {
        "success": False,
        "error": {"code": "VALIDATION_ERROR", "message": "Email cannot be changed after creation"},
    }
    assert sandbox.state.leads[LEAD_ID]["email"] == "jane@example.com"
    assert sandbox.state.leads[LEAD_ID].get("city") is None
    assert len(sandbox.state.bad_requests) == 1


async def test_unknown_key_is_400_and_recorded(session: aiohttp.ClientSession) -> None:
    async with Sandbox(make_leads()) as sandbox:
        status, body, _ = await patch(session, sandbox.url, {"city": "Oslo", "favouriteColour": 1})

    assert status == 400
    assert body["error"]["code"] == "VALIDATION_ERROR"
    assert "favouriteColour" in body["error"]["message"]
    assert len(sandbox.state.bad_requests) == 1
    assert "favouriteColour" in sandbox.state.bad_requests[0]
    assert sandbox.state.leads[LEAD_ID].get("city") is None


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"firstName": 3}, "firstName"),
        ({"tags": "vip;enterprise"}, "tags"),
        ({"tags": ["vip", 2]}, "tags"),
        ({"customFields": ["a"]}, "customFields"),
        ({"customFields": {"nested": {"a": 1}}}, "customFields.nested"),
        ({}, "at least one field"),
        (["city", "Oslo"], "JSON object"),
    ],
)
async def test_malformed_bodies_are_400(
    session: aiohttp.ClientSession, body: object, named: str
) -> None:
    async with Sandbox(make_leads()) as sandbox:
        status, answer, _ = await patch(session, sandbox.url, body)

    assert status == 400
    assert answer["error"]["code"] == "VALIDATION_ERROR"
    assert named in answer["error"]["message"]
    assert len(sandbox.state.bad_requests) == 1
    assert sandbox.state.applied_by_lead == {}


@pytest.mark.parametrize(
    ("raw", "content_type", "status"),
    [
        (b'{"city": "Oslo"', "application/json", 400),
        (b'{"city": "\xff\xfe"}', "application/json", 400),
        (b'{"customFields": {"x": NaN}}', "application/json", 400),
        (b"[" * 100_000, "application/json", 400),
        (b'{"city": "Oslo"}', "text/plain", 415),
        (b'{"city": "Oslo"}', "", 415),
    ],
)
async def test_undecodable_bodies_are_answered_not_crashed(
    session: aiohttp.ClientSession, raw: bytes, content_type: str, status: int
) -> None:
    headers = {"X-Api-Key": KEY}
    if content_type:
        headers["Content-Type"] = content_type
    async with Sandbox(make_leads()) as sandbox:
        url = f"{sandbox.url}/v1/leads/{LEAD_ID}"
        async with session.patch(url, data=raw, headers=headers) as response:
            assert response.status == status
            answer = await response.json()

    assert answer["success"] is False
    assert answer["error"]["code"] in {"VALIDATION_ERROR", "UNSUPPORTED_MEDIA_TYPE"}
    assert len(sandbox.state.bad_requests) == 1
    assert sandbox.state.leads[LEAD_ID].get("city") is None


@pytest.mark.parametrize(
    "auth_header", [b"X-Api-Key: \xff\xfe", b"Authorization: Bearer \xff", b"Authorization: \xff"]
)
async def test_undecodable_key_header_is_401(auth_header: bytes) -> None:
    async with Sandbox(make_leads()) as sandbox:
        port = int(sandbox.url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        body = b'{"city": "Oslo"}'
        writer.write(
            b"PATCH /v1/leads/"
            + LEAD_ID.encode()
            + b" HTTP/1.1\r\nHost: sandbox\r\n"
            + auth_header
            + b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
            + b"Connection: close\r\n\r\n"
            + body
        )
        answer = await reader.read()
        writer.close()
        await writer.wait_closed()

    assert answer.startswith(b"HTTP/1.1 401 ")
    assert sandbox.state.auth_failures == 1


async def test_stray_requests_are_recorded_and_404(session: aiohttp.ClientSession) -> None:
    async with Sandbox(make_leads()) as sandbox:
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


# --- rate limit -------------------------------------------------------------------------------


async def send_three(session: aiohttp.ClientSession, url: str) -> list[tuple[int, Any, Any]]:
    return [await patch(session, url, {"city": f"City {n}"}) for n in range(3)]


async def test_rate_limit_answers_429_with_retry_after_seconds(
    session: aiohttp.ClientSession,
) -> None:
    async with Sandbox(make_leads(), rate=2) as sandbox:
        answers = await send_three(session, sandbox.url)

    assert [status for status, _, _ in answers] == [200, 200, 429]
    _, body, headers = answers[2]
    assert body == {
        "success": False,
        "error": {"code": "RATE_LIMITED", "message": "Too many requests"},
    }
    assert headers["Retry-After"] == "1"
    assert sandbox.state.rate_limited == 1
    assert sandbox.state.applied_by_lead == {LEAD_ID: 2}
    assert sandbox.state.patches_by_lead == {LEAD_ID: 3}
    assert sandbox.state.leads[LEAD_ID]["city"] == "City 1"


async def test_rate_limit_retry_after_date(session: aiohttp.ClientSession) -> None:
    async with Sandbox(make_leads(), rate=2, retry_after="date") as sandbox:
        before = datetime.now(UTC).replace(microsecond=0)
        answers = await send_three(session, sandbox.url)

    assert [status for status, _, _ in answers] == [200, 200, 429]
    retry_at = email.utils.parsedate_to_datetime(answers[2][2]["Retry-After"])
    assert answers[2][2]["Retry-After"].endswith(" GMT")
    assert before < retry_at <= before + timedelta(seconds=3)


async def test_rate_limit_without_retry_after(session: aiohttp.ClientSession) -> None:
    async with Sandbox(make_leads(), rate=2, retry_after="none") as sandbox:
        answers = await send_three(session, sandbox.url)

    assert [status for status, _, _ in answers] == [200, 200, 429]
    assert "Retry-After" not in answers[2][2]
    assert sandbox.state.rate_limited == 1


async def test_burst_adds_to_the_window(session: aiohttp.ClientSession) -> None:
    async with Sandbox(make_leads(), rate=1, burst=2) as sandbox:
        statuses = [(await patch(session, sandbox.url, {"city": "x"}))[0] for _ in range(4)]

    assert statuses == [200, 200, 200, 429]


async def test_auth_is_checked_before_the_rate_limit(session: aiohttp.ClientSession) -> None:
    async with Sandbox(make_leads(), rate=1) as sandbox:
        refused = await patch(session, sandbox.url, {"city": "x"}, headers={"X-Api-Key": "bad"})
        accepted = await patch(session, sandbox.url, {"city": "y"})

    assert (refused[0], accepted[0]) == (401, 200)
    assert sandbox.state.rate_limited == 0


# --- injected faults --------------------------------------------------------------------------


async def test_fault_503_is_html_and_leaves_lead_alone(session: aiohttp.ClientSession) -> None:
    faults = FaultPlan(rate=1.0, kinds=("503",))
    async with Sandbox(make_leads(), faults=faults) as sandbox:
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
    async with Sandbox(make_leads(), faults=faults) as sandbox:
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
    async with Sandbox(make_leads(), faults=faults) as sandbox:
        with pytest.raises(aiohttp.ClientConnectionError):
            await patch(session, sandbox.url, {"city": "Oslo"})

    assert sandbox.state.faults == {"drop": 1}
    assert sandbox.state.patches_by_lead == {LEAD_ID: 1}
    assert sandbox.state.applied_by_lead == {}
    assert sandbox.state.leads[LEAD_ID].get("city") is None


async def test_fault_slow_applies_then_answers_late(session: aiohttp.ClientSession) -> None:
    faults = FaultPlan(rate=1.0, kinds=("slow",), slow_seconds=0.05)
    async with Sandbox(make_leads(), faults=faults) as sandbox:
        status, body, _ = await patch(session, sandbox.url, {"city": "Oslo"})

    assert status == 200
    assert body["data"]["city"] == "Oslo"
    assert sandbox.state.faults == {"slow": 1}


async def test_fault_slow_times_out_but_the_update_is_applied(
    session: aiohttp.ClientSession,
) -> None:
    faults = FaultPlan(rate=1.0, kinds=("slow",), slow_seconds=0.05)
    async with Sandbox(make_leads(), faults=faults) as sandbox:
        with pytest.raises(asyncio.TimeoutError):
            await patch(session, sandbox.url, {"city": "Oslo"}, total_timeout=0.01)

    # Leaving the sandbox waits for the late answer, so the update is visible now.
    assert sandbox.state.faults == {"slow": 1}
    assert sandbox.state.applied_by_lead == {LEAD_ID: 1}
    assert sandbox.state.leads[LEAD_ID]["city"] == "Oslo"


async def test_faults_are_reproducible_with_a_seed(session: aiohttp.ClientSession) -> None:
    async def run() -> list[int]:
        faults = FaultPlan(rate=0.5, kinds=("503", "500"), seed=7)
        async with Sandbox(make_leads(), faults=faults) as sandbox:
            return [(await patch(session, sandbox.url, {"city": "x"}))[0] for _ in range(30)]

    first, second = await run(), await run()
    assert first == second
    assert {200, 500, 503} == set(first)


def test_fault_plan_checks_its_values() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        FaultPlan(rate=1.5)
    with pytest.raises(ValueError, match="unknown fault kind"):
        FaultPlan(rate=0.1, kinds=("timeout",))
    with pytest.raises(ValueError, match="must not be empty"):
        FaultPlan(kinds=())


def test_bad_settings_fail_at_construction() -> None:
    with pytest.raises(ValueError, match="retry_after"):
        Sandbox(retry_after="later")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rate"):
        Sandbox(rate=-1)


# --- concurrency ------------------------------------------------------------------------------


async def test_max_in_flight_per_lead_counts_concurrent_requests(
    session: aiohttp.ClientSession,
) -> None:
    # Each slow answer keeps its request in the handler long enough for all three to overlap.
    faults = FaultPlan(rate=1.0, kinds=("slow",), slow_seconds=0.5)
    async with Sandbox(make_leads(), faults=faults) as sandbox:
        answers = await asyncio.gather(
            *(patch(session, sandbox.url, {"city": f"City {n}"}) for n in range(3)),
            patch(session, sandbox.url, {"city": "Elsewhere"}, lead_id=OTHER_ID),
        )

    assert [status for status, _, _ in answers] == [200, 200, 200, 200]
    assert sandbox.state.max_in_flight_per_lead == 3
    assert sandbox.state.applied_by_lead == {LEAD_ID: 3, OTHER_ID: 1}


async def test_sequential_requests_are_one_in_flight(session: aiohttp.ClientSession) -> None:
    async with Sandbox(make_leads()) as sandbox:
        for n in range(3):
            await patch(session, sandbox.url, {"city": f"City {n}"})

    assert sandbox.state.max_in_flight_per_lead == 1
    assert sandbox.state.requests == 3


# --- other ways to run it ---------------------------------------------------------------------


def test_sandbox_thread_serves_a_sync_caller() -> None:
    async def client(url: str) -> tuple[int, Any]:
        async with aiohttp.ClientSession() as session:
            status, body, _ = await patch(session, url, {"customFields": {"tier": "gold"}})
            return status, body

    with SandboxThread(make_leads()) as sandbox:
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


def test_sandbox_thread_wait_until_wakes_on_requests() -> None:
    with SandboxThread({}, api_key="k") as sb:
        assert sb.wait_until(lambda: sb.state.requests >= 1, timeout=0.05) is False
        request = urllib.request.Request(f"{sb.url}/nowhere", method="GET")
        with contextlib.suppress(urllib.error.HTTPError):
            urllib.request.urlopen(request, timeout=10)
        assert sb.wait_until(lambda: sb.state.requests >= 1, timeout=10) is True
        assert sb.state.stray == ["GET /nowhere"]

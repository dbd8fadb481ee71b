"""The rate limit: the sliding window, 429 with Retry-After, rate-limit headers, runtime changes."""

from __future__ import annotations

import email.utils
import json
import re
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from bulk_updater.sandbox import FaultPlan, Sandbox, SandboxThread, max_in_any_window

from .conftest import KEY, LEAD_ID, MISSING_ID, Received, get, patch, two_leads

IETF = re.compile(r'"default";r=(\d+);t=(\d+)')


async def send(session: aiohttp.ClientSession, url: str, n: int) -> list[Received]:
    return [await patch(session, url, {"city": f"City {i}"}) for i in range(n)]


# --- the window and its 429 -------------------------------------------------------------------


async def test_rate_limit_answers_429_with_retry_after_seconds(
    session: aiohttp.ClientSession,
) -> None:
    async with Sandbox(two_leads(), rate=2) as sandbox:
        answers = await send(session, sandbox.url, 3)

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
    assert "X-RateLimit-Limit" not in headers  # not asked for
    assert "RateLimit" not in headers


async def test_rate_limit_retry_after_date(session: aiohttp.ClientSession) -> None:
    async with Sandbox(two_leads(), rate=2, retry_after="date") as sandbox:
        before = datetime.now(UTC).replace(microsecond=0)
        answers = await send(session, sandbox.url, 3)

    assert [status for status, _, _ in answers] == [200, 200, 429]
    retry_at = email.utils.parsedate_to_datetime(answers[2][2]["Retry-After"])
    assert answers[2][2]["Retry-After"].endswith(" GMT")
    assert before < retry_at <= before + timedelta(seconds=3)


async def test_rate_limit_without_retry_after(session: aiohttp.ClientSession) -> None:
    async with Sandbox(two_leads(), rate=2, retry_after="none") as sandbox:
        answers = await send(session, sandbox.url, 3)

    assert [status for status, _, _ in answers] == [200, 200, 429]
    assert "Retry-After" not in answers[2][2]
    assert sandbox.state.rate_limited == 1


async def test_burst_adds_to_the_window(session: aiohttp.ClientSession) -> None:
    async with Sandbox(two_leads(), rate=1, burst=2) as sandbox:
        statuses = [(await patch(session, sandbox.url, {"city": "x"}))[0] for _ in range(4)]

    assert statuses == [200, 200, 200, 429]


async def test_auth_is_checked_before_the_rate_limit(session: aiohttp.ClientSession) -> None:
    async with Sandbox(two_leads(), rate=1) as sandbox:
        refused = await patch(session, sandbox.url, {"city": "x"}, headers={"X-Api-Key": "bad"})
        accepted = await patch(session, sandbox.url, {"city": "y"})

    assert (refused[0], accepted[0]) == (401, 200)
    assert sandbox.state.rate_limited == 0


async def test_searches_share_the_window_with_updates(session: aiohttp.ClientSession) -> None:
    async with Sandbox(two_leads(), rate=2) as sandbox:
        first = await get(session, f"{sandbox.url}/v1/leads", {"search": "jane"})
        second = await patch(session, sandbox.url, {"city": "x"})
        third = await get(session, f"{sandbox.url}/v1/leads", {"search": "jane"})

    assert (first[0], second[0], third[0]) == (200, 200, 429)
    assert third[2]["Retry-After"] == "1"
    assert sandbox.state.rate_limited == 1
    assert sandbox.state.searches == {"jane": 2}


def test_bad_settings_fail_at_construction() -> None:
    with pytest.raises(ValueError, match="retry_after"):
        Sandbox(retry_after="later")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rate"):
        Sandbox(rate=-1)
    with pytest.raises(ValueError, match="burst"):
        Sandbox(rate=1, burst=-1)
    with pytest.raises(ValueError, match="headers"):
        Sandbox(rate=1, headers="github")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="need a rate limit"):
        Sandbox(headers="xrl")


# --- rate-limit headers -----------------------------------------------------------------------


async def test_xrl_headers_count_down_to_zero_at_the_limit(
    session: aiohttp.ClientSession,
) -> None:
    before = time.time()
    async with Sandbox(two_leads(), rate=3, headers="xrl") as sandbox:
        answers = await send(session, sandbox.url, 4)
    after = time.time()

    assert [status for status, _, _ in answers] == [200, 200, 200, 429]
    assert [headers["X-RateLimit-Limit"] for _, _, headers in answers] == ["3"] * 4
    assert [headers["X-RateLimit-Remaining"] for _, _, headers in answers] == ["2", "1", "0", "0"]
    for _, _, headers in answers:
        reset = headers["X-RateLimit-Reset"]
        assert reset.isdigit()  # whole epoch seconds
        # The oldest request leaves the window within a second of being counted, so Reset is
        # in the future of the answer and at most a second (rounded up) after it.
        assert before < int(reset) <= after + 2
    assert answers[3][2]["Retry-After"] == "1"


async def test_xrl_headers_hide_the_burst(session: aiohttp.ClientSession) -> None:
    async with Sandbox(two_leads(), rate=2, burst=1, headers="xrl") as sandbox:
        answers = await send(session, sandbox.url, 4)

    assert [status for status, _, _ in answers] == [200, 200, 200, 429]
    assert [headers["X-RateLimit-Limit"] for _, _, headers in answers] == ["2"] * 4
    assert [headers["X-RateLimit-Remaining"] for _, _, headers in answers] == ["1", "0", "0", "0"]


async def test_exhausted_headers_say_nothing_is_left_for_22_hours_yet_answer(
    session: aiohttp.ClientSession,
) -> None:
    before = time.time()
    async with Sandbox(two_leads(), rate=2, headers="exhausted") as sandbox:
        answers = await send(session, sandbox.url, 3)

    assert [status for status, _, _ in answers] == [200, 200, 429]  # the window still rules
    assert [headers["X-RateLimit-Remaining"] for _, _, headers in answers] == ["0"] * 3
    for _, _, headers in answers:
        assert int(headers["X-RateLimit-Reset"]) >= before + 22 * 3600


async def test_headers_come_on_every_answer_of_the_api(session: aiohttp.ClientSession) -> None:
    async with Sandbox(two_leads(), rate=10, headers="xrl") as sandbox:
        refused = await patch(session, sandbox.url, {"city": "x"}, headers={"X-Api-Key": "bad"})
        missing = await patch(session, sandbox.url, {"city": "x"}, lead_id=MISSING_ID)
        invalid = await patch(session, sandbox.url, {"email": "x@example.com"})
        found = await get(session, f"{sandbox.url}/v1/leads")
        bad_search = await get(session, f"{sandbox.url}/v1/leads", {"limit": "0"})
        stray = await get(session, f"{sandbox.url}/v1/account")
        page = await get(session, f"{sandbox.url}/_sandbox/leads", headers={})

    answers = [refused, missing, invalid, found, bad_search, stray]
    assert [status for status, _, _ in answers] == [401, 404, 400, 200, 400, 404]
    # The 401 and the stray request are not counted: the key check and routing come first.
    remaining = [headers["X-RateLimit-Remaining"] for _, _, headers in answers]
    assert remaining == ["10", "9", "8", "7", "6", "6"]
    assert "X-RateLimit-Limit" not in page[2]


async def test_headers_come_on_injected_faults(session: aiohttp.ClientSession) -> None:
    faults = FaultPlan(rate=1.0, kinds=("503",))
    async with Sandbox(two_leads(), rate=5, headers="ietf", faults=faults) as sandbox:
        status, _, headers = await patch(session, sandbox.url, {"city": "x"})

    assert status == 503
    assert headers["RateLimit"] == '"default";r=4;t=1'


async def test_ietf_headers(session: aiohttp.ClientSession) -> None:
    async with Sandbox(two_leads(), rate=2, headers="ietf") as sandbox:
        before = await patch(session, sandbox.url, {"city": "x"}, headers={"X-Api-Key": "bad"})
        answers = await send(session, sandbox.url, 3)

    assert [status for status, _, _ in answers] == [200, 200, 429]
    assert before[2]["RateLimit"] == '"default";r=2;t=0'  # nothing counted yet
    values = [IETF.fullmatch(headers["RateLimit"]) for _, _, headers in answers]
    assert all(values), [headers["RateLimit"] for _, _, headers in answers]
    remaining_and_reset = [(match[1], match[2]) for match in values if match]
    assert remaining_and_reset == [("1", "1"), ("0", "1"), ("0", "1")]
    for _, _, headers in [before, *answers]:
        assert headers["RateLimit-Policy"] == '"default";q=2;w=1'
        assert "X-RateLimit-Limit" not in headers


async def test_a_fractional_rate_advertises_its_whole_part(
    session: aiohttp.ClientSession,
) -> None:
    async with Sandbox(two_leads(), rate=2.5, headers="xrl") as sandbox:
        _, _, headers = await patch(session, sandbox.url, {"city": "x"})

    assert headers["X-RateLimit-Limit"] == "2"
    assert headers["X-RateLimit-Remaining"] == "1"


# --- changing the limit while serving ---------------------------------------------------------


async def test_set_rate_lowers_and_raises_the_limit(session: aiohttp.ClientSession) -> None:
    async with Sandbox(two_leads(), rate=3, burst=1, headers="xrl") as sandbox:
        first = await send(session, sandbox.url, 2)
        sandbox.set_rate(1)  # the two counted requests already fill a window of 1 + 1
        lowered = await send(session, sandbox.url, 1)
        sandbox.set_rate(10, burst=0)
        raised = await send(session, sandbox.url, 2)
        with pytest.raises(ValueError, match="need a rate limit"):
            sandbox.set_rate(0)

    assert [status for status, _, _ in first + lowered + raised] == [200, 200, 429, 200, 200]
    assert lowered[0][2]["X-RateLimit-Limit"] == "1"
    assert [headers["X-RateLimit-Remaining"] for _, _, headers in raised] == ["7", "6"]


async def test_set_rate_zero_lifts_the_limit(session: aiohttp.ClientSession) -> None:
    async with Sandbox(two_leads(), rate=1) as sandbox:
        sandbox.set_rate(0)
        answers = await send(session, sandbox.url, 5)
        with pytest.raises(ValueError, match="rate"):
            sandbox.set_rate(-1)

    assert {status for status, _, _ in answers} == {200}


def _patch_sync(url: str) -> int:
    request = urllib.request.Request(
        f"{url}/v1/leads/{LEAD_ID}",
        data=json.dumps({"city": "Oslo"}).encode(),
        headers={"X-Api-Key": KEY, "Content-Type": "application/json"},
        method="PATCH",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status: int = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    return status


def test_sandbox_thread_set_rate_from_another_thread() -> None:
    sb = SandboxThread(two_leads(), rate=5)
    sb.set_rate(1)  # before it serves: applied at once
    with sb:
        statuses = [_patch_sync(sb.url), _patch_sync(sb.url)]
        sb.set_rate(10)
        statuses.append(_patch_sync(sb.url))
        sb.set_rate(1, burst=0)
        statuses.append(_patch_sync(sb.url))
        with pytest.raises(ValueError, match="burst"):
            sb.set_rate(1, burst=-1)

    assert statuses == [200, 429, 200, 429]
    assert sb.state.rate_limited == 2


# --- counting arrivals ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arrivals", "width", "most"),
    [
        ([], 1.0, 0),
        ([5.0], 1.0, 1),
        ([0.0, 1.0, 2.0], 1.0, 1),  # exactly a second apart: never in one window
        ([0.0, 0.5, 0.99, 1.0, 1.5], 1.0, 3),
        ([1.5, 0.0, 1.0, 0.99, 0.5], 1.0, 3),  # any order
        ([0.0, 0.5, 0.99, 1.0, 1.5], 2.0, 5),
        ([0.0, 0.1, 0.2, 5.0, 5.05, 5.1, 5.15], 0.5, 4),
    ],
)
def test_max_in_any_window(arrivals: list[float], width: float, most: int) -> None:
    assert max_in_any_window(arrivals, width=width) == most


async def test_arrivals_count_refused_requests_too(session: aiohttp.ClientSession) -> None:
    async with Sandbox(two_leads(), rate=2) as sandbox:
        answers: list[Any] = await send(session, sandbox.url, 5)

    assert [status for status, _, _ in answers] == [200, 200, 429, 429, 429]
    assert max_in_any_window(sandbox.state.arrivals) == 5

"""The adaptive limiter in whole jobs: the real engine against `SimulatedApi` (the sandbox's own
window, `Retry-After` and headers), in virtual time, so that durations are exact, not timed.

A hidden limit found from 429s, a limit that drops halfway and one that comes back up, limits
stated by headers (no 429 needed), the `Remaining`/`Reset` budget, `Retry-After` winning,
concurrency that follows latency, and what the summary says.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
from typing import Any

import pytest

from bulk_updater import BulkUpdater, LeadUpdate, Reply, Summary
from bulk_updater.limits import AdaptiveLimiter, Pacer, Stopped, limiter_for
from bulk_updater.sandbox import max_in_any_window
from bulk_updater.settings import Settings
from tests.conftest import FakeSender, SimulatedApi, VirtualTimeLoop, advance, make_rows


async def job(api: Any, rows: int, **settings: Any) -> tuple[Summary, float]:
    """Run `rows` rows through `api`; the summary and the (virtual) seconds it took."""
    async with BulkUpdater(sender=api, **settings) as updater:
        summary = await updater.run(make_rows(rows))
    return summary, summary.duration_s


def rate_between(arrivals: list[float], start: float, end: float) -> float:
    return (bisect.bisect(arrivals, end) - bisect.bisect(arrivals, start)) / (end - start)


def test_the_settings_choose_the_limiter() -> None:
    assert isinstance(limiter_for(Settings(rate=0)), Pacer)
    assert isinstance(limiter_for(Settings(rate=40)), AdaptiveLimiter)
    assert isinstance(limiter_for(Settings()), AdaptiveLimiter)  # auto
    fixed = limiter_for(Settings(rate=40, concurrency=32))
    assert isinstance(fixed, AdaptiveLimiter)
    assert fixed.in_flight_limit is None  # --concurrency: the workers are the cap


# --- a hidden limit, found from 429s


async def test_an_exact_rate_changes_nothing(virtual_time: VirtualTimeLoop) -> None:
    api = SimulatedApi(40, 5)
    summary, _ = await job(api, 800, rate=40, concurrency=32)
    assert summary.rate_limited == 0
    arrivals = api.arrivals
    assert (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) >= 0.98 * 40
    assert max_in_any_window(arrivals) <= 40
    assert summary.settled_why == "the --rate 40 ceiling, no 429"


@pytest.mark.parametrize("rate", [400, "auto"])
async def test_a_hidden_limit_is_found_with_few_429s(
    virtual_time: VirtualTimeLoop, rate: float | str
) -> None:
    api = SimulatedApi(40, 5)
    summary, seconds = await job(api, 2000, rate=rate, concurrency=32)
    assert summary.rate_limited <= 0.03 * 2000
    assert seconds <= 1.25 * 2000 / 40
    assert summary.settled_rate is not None
    assert 36 <= summary.settled_rate <= 46
    assert (summary.settled_why or "").startswith("429s at ")


async def test_a_limit_that_drops_halfway_is_followed_down(virtual_time: VirtualTimeLoop) -> None:
    api = SimulatedApi(40, 5)
    loop = virtual_time

    async def drop() -> None:
        await advance(20)
        api.set_rate(20, 2)

    dropping = loop.create_task(drop())
    summary, _ = await job(api, 1600, rate="auto", concurrency=32)
    await dropping
    assert summary.rate_limited <= 40
    assert 15 <= rate_between(api.arrivals, 30, 50) <= 22
    assert summary.settled_rate is not None
    assert summary.settled_rate <= 22


async def test_a_limit_that_comes_back_up_is_found_again(virtual_time: VirtualTimeLoop) -> None:
    api = SimulatedApi(20, 2)
    loop = virtual_time

    async def rise() -> None:
        await advance(20)
        api.set_rate(40, 5)

    rising = loop.create_task(rise())
    summary, _ = await job(api, 2400, rate="auto", concurrency=32)
    await rising
    assert rate_between(api.arrivals, 10, 20) <= 22
    assert rate_between(api.arrivals, 45, api.arrivals[-1]) >= 34
    assert summary.rate_limited <= 60


# --- limits the headers state


@pytest.mark.parametrize("style", ["xrl", "ietf"])
@pytest.mark.parametrize("rate", [400, "auto"])
async def test_stated_limits_need_no_429(
    virtual_time: VirtualTimeLoop, style: Any, rate: float | str
) -> None:
    api = SimulatedApi(40, 5, headers=style)
    summary, seconds = await job(api, 2000, rate=rate, concurrency=32)
    assert summary.rate_limited <= 1
    assert seconds <= 1.25 * 2000 / 40
    source = "X-RateLimit-Limit" if style == "xrl" else "RateLimit-Policy"
    assert summary.settled_why == f"from {source}: 40"


async def test_a_stated_limit_that_drops_is_followed_at_once(
    virtual_time: VirtualTimeLoop,
) -> None:
    api = SimulatedApi(40, 5, headers="xrl")

    async def drop() -> None:
        await advance(10)
        api.set_rate(20, 2)

    dropping = virtual_time.create_task(drop())
    summary, _ = await job(api, 800, rate="auto", concurrency=32)
    await dropping
    assert summary.rate_limited <= 5  # those already counted in the window when it dropped
    assert rate_between(api.arrivals, 12, 30) <= 20


async def test_nothing_starts_beyond_remaining_before_the_reset(
    virtual_time: VirtualTimeLoop,
) -> None:
    """A server with 5 left for the next 10 s, whatever the rate: the sixth waits 10 s."""

    def answer(update: LeadUpdate, attempt: int) -> Reply:
        left = max(0, 4 - len(sender.calls) + 1)
        headers = {"RateLimit": f'"default";r={left};t=10'}
        return Reply(200, headers=headers)

    sender = FakeSender(answer, latency=0.01)
    summary, _ = await job(sender, 8, rate=100, concurrency=8)
    starts = [t for t, _ in sender.calls]
    assert summary.rate_limited == 0
    assert sum(1 for t in starts if t < 10) <= 5 + 1  # the first answer came after one start
    assert max(starts) >= 10


async def test_retry_after_wins_over_the_headers_reset(virtual_time: VirtualTimeLoop) -> None:
    def answer(update: LeadUpdate, attempt: int) -> Reply:
        if len(sender.calls) == 1:
            headers = {"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "0"}
            headers["X-RateLimit-Reset"] = "20"
            return Reply(429, "RATE_LIMITED", "slow", retry_after=2.0, headers=headers)
        return Reply(200)

    sender = FakeSender(answer, latency=0.01)
    await job(sender, 3, rate=10, concurrency=1)
    assert sender.calls[1][0] < 5  # after the 2 s of Retry-After, not the 20 s reset


async def test_without_retry_after_a_429_waits_for_the_headers_reset(
    virtual_time: VirtualTimeLoop,
) -> None:
    def answer(update: LeadUpdate, attempt: int) -> Reply:
        if len(sender.calls) == 1:
            return Reply(429, "RATE_LIMITED", "slow", headers={"RateLimit": "x;r=0;t=7"})
        return Reply(200)

    sender = FakeSender(answer, latency=0.01)
    await job(sender, 3, rate=10, concurrency=1)
    assert 7 <= sender.calls[1][0] < 8


async def test_nonsense_headers_are_ignored_and_said_once(
    virtual_time: VirtualTimeLoop, caplog: pytest.LogCaptureFixture
) -> None:
    def answer(update: LeadUpdate, attempt: int) -> Reply:
        return Reply(200, headers={"X-RateLimit-Limit": "lots", "X-RateLimit-Remaining": "-1"})

    with caplog.at_level(logging.DEBUG, logger="bulk_updater"):
        summary, _ = await job(FakeSender(answer), 50, rate=20, concurrency=4)
    said = [r.getMessage() for r in caplog.records if "rate-limit header" in r.getMessage()]
    assert len(said) == 2  # one per problem, not one per answer
    assert summary.settled_why == "the --rate 20 ceiling, no 429"


# --- concurrency that follows latency


async def test_a_slow_api_no_longer_caps_the_rate(virtual_time: VirtualTimeLoop) -> None:
    api = SimulatedApi(0, latency=0.4)
    await job(api, 1000, rate=50)
    arrivals = api.arrivals
    assert (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) >= 47.5
    assert 8 < api.max_in_flight <= 64


async def test_a_given_concurrency_stays_a_hard_cap(virtual_time: VirtualTimeLoop) -> None:
    api = SimulatedApi(0, latency=0.4)
    await job(api, 200, rate=50, concurrency=8)
    assert api.max_in_flight <= 8


async def test_requests_in_flight_shrink_back_when_the_api_is_fast(
    virtual_time: VirtualTimeLoop,
) -> None:
    limiter = AdaptiveLimiter(50)
    async with BulkUpdater(sender=SimulatedApi(0, latency=0.02), limiter=limiter) as updater:
        await updater.run(make_rows(200))
    assert limiter.in_flight_limit == 8


# --- what it says


async def test_repeated_429s_at_a_ceiling_suggest_auto(virtual_time: VirtualTimeLoop) -> None:
    summary, _ = await job(SimulatedApi(40, 5), 800, rate=400, concurrency=32)
    assert summary.rate_hint is not None
    assert "--rate auto" in summary.rate_hint


async def test_the_progress_line_shows_the_rate_allowed_now(
    virtual_time: VirtualTimeLoop,
) -> None:
    seen: list[str | None] = []
    async with BulkUpdater(sender=SimulatedApi(0), rate=25, concurrency=4) as updater:
        assert updater.rate_now() is None  # no job yet
        await updater.run(make_rows(10), on_outcome=lambda outcome: seen.append(updater.rate_now()))
    assert seen[-1] == "limit 25.0/s"


async def test_a_fixed_pacer_says_so_and_suggests_auto_after_pauses(
    virtual_time: VirtualTimeLoop,
) -> None:
    pacer = Pacer(50)
    summary, _ = await job(SimulatedApi(20, 0), 300, limiter=pacer, concurrency=8)
    assert summary.settled_rate == 50
    assert summary.settled_why == "fixed at 50/s"
    assert summary.rate_hint is not None
    assert "--rate auto" in summary.rate_hint
    assert Pacer(0).describe().why == "no limit (--rate 0)"


# --- stopping


async def test_a_stop_wakes_callers_waiting_for_room_in_flight(
    virtual_time: VirtualTimeLoop,
) -> None:
    limiter = AdaptiveLimiter(100)
    limiter.begin()
    for _ in range(8):  # the room in flight before any latency is known
        await limiter.acquire()
    waiting = asyncio.ensure_future(limiter.acquire())
    await advance(5)
    assert not waiting.done()
    limiter.stop()
    with pytest.raises(Stopped):
        await waiting
    with pytest.raises(Stopped):
        await limiter.sleep(60)


async def test_a_stop_wakes_callers_waiting_for_the_budget(virtual_time: VirtualTimeLoop) -> None:
    limiter = AdaptiveLimiter(100, concurrency=4)
    limiter.begin()
    await limiter.acquire()
    limiter.observe(Reply(200, headers={"RateLimit": '"default";r=0;t=60'}), 0.01)
    waiting = asyncio.ensure_future(limiter.acquire())
    await advance(5)
    assert not waiting.done()  # nothing left for 60 s
    limiter.stop()
    with pytest.raises(Stopped):
        await waiting
    limiter.begin()  # a new job forgets the stop
    await advance(60)
    await limiter.acquire()


async def test_a_limit_without_its_window_is_no_statement(virtual_time: VirtualTimeLoop) -> None:
    limiter = AdaptiveLimiter(None, concurrency=4)
    limiter.begin()
    await limiter.acquire()
    limiter.observe(Reply(200, headers={"X-RateLimit-Limit": "40"}), 0.01)
    assert limiter.controller.stated is None
    assert limiter.controller.slow_start

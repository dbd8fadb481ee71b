"""The adaptive limiter on the schedule shared through Redis (a real redis-server): the rate
measured on the account, one job's cut slowing every job, the level 429s came above handed to
a job that starts later."""

from __future__ import annotations

import asyncio

import pytest

from bulk_updater import Reply
from bulk_updater.limits import AdaptiveLimiter, GivenUp, Holds
from bulk_updater.limits.adaptive import Cubic
from bulk_updater.limits.pacer import PausePolicy
from bulk_updater.limits.shared import RedisLimiter

QUICK = PausePolicy(backoff_base=0.01, backoff_max=0.02, max_pause=5.0)


def adaptive(url: str, ceiling: float | None = None) -> AdaptiveLimiter:
    schedule = RedisLimiter(url, rate=10, account="acct", policy=QUICK, connections=4)
    return AdaptiveLimiter(ceiling, policy=QUICK, concurrency=4, schedule=schedule)


async def send(limiter: AdaptiveLimiter, count: int, status: int = 200) -> None:
    for _ in range(count):
        await limiter.acquire()
        limiter.observe(Reply(status), 0.001)


async def test_a_job_started_later_begins_below_the_level_another_job_found(
    redis_url: str,
) -> None:
    first = adaptive(redis_url, ceiling=100)
    await first.open()
    first.begin()
    await send(first, 30)  # answers at 100/s, measured on the account
    refused = Reply(429, retry_after=0.05)
    first.observe(refused, 0.001)
    first.pause(refused)
    plateau = first.controller.plateau
    assert plateau is not None
    assert 5 <= plateau <= 100  # the account's starts of the last second, not the rate asked
    await first.close()  # lets the shared level reach Redis

    later = adaptive(redis_url)  # --rate auto: would start at 10/s
    await later.open()
    assert later.controller.plateau == pytest.approx(plateau)
    assert later.controller.rate == pytest.approx(plateau * Cubic().beta)
    assert later.pacer.rate == pytest.approx(plateau * Cubic().beta)
    later.begin()
    status = later.describe()
    assert status.why == f"429s above {round(plateau)}/s (found by another job of the account)"
    await later.close()


async def test_one_jobs_cut_slows_every_job_on_the_account(redis_url: str) -> None:
    one, two = adaptive(redis_url, ceiling=200), adaptive(redis_url, ceiling=200)
    for limiter in (one, two):
        await limiter.open()
        limiter.begin()
    await asyncio.gather(send(one, 20), send(two, 20))
    refused = Reply(429, retry_after=0.05)
    one.observe(refused, 0.001)
    one.pause(refused)
    await send(two, 3)  # the other job's next slots: the account's rate is the cut one
    assert isinstance(two.pacer, RedisLimiter)
    assert two.pacer.account_rate == pytest.approx(one.controller.rate)
    assert two.pacer.account_rate < 200
    for limiter in (one, two):
        await limiter.close()


class Heard(Holds):
    """The job's holds, with an event set as each hold begins."""

    def __init__(self, max_pause: float) -> None:
        super().__init__(max_pause)
        self.begun = asyncio.Event()

    def hold(self, now: float, seconds: float, why: str) -> float:
        added = super().hold(now, seconds, why)
        self.begun.set()
        return added


async def test_another_jobs_pause_shows_as_a_pause_on_the_progress_line(redis_url: str) -> None:
    """Job A took a Retry-After of 300 s; job B's line counts its own capped pause down instead
    of showing a rate it is not sending at."""
    patient = PausePolicy(0.01, 0.02, max_pause=300.0)
    a = RedisLimiter(redis_url, rate=10, account="acct", policy=patient)
    b = adaptive(redis_url, ceiling=10)
    b.holds = b.pacer.holds = heard = Heard(QUICK.max_pause)
    for one in (a, b):
        await one.open()
        one.begin()
    a.pause(Reply(429, retry_after=300.0))
    await a.calls.arrived()
    waiting = asyncio.ensure_future(b.acquire())
    await heard.begun.wait()  # B has heard of the pause from Redis
    line = b.describe().progress()
    assert line in ("paused 5s (a 429 of another job)", "paused 4s (a 429 of another job)")
    waiting.cancel()
    await a.close()
    await b.close()


async def test_a_tiny_rate_in_force_shows_on_the_progress_line_and_holds_the_job(
    redis_url: str,
) -> None:
    """Another job's rate of 0.05/s holds this one at --rate 20 for 20 s a slot: its line
    counts that wait down as a hold that names the rate in force (it said `limit 20.0/s`), and
    the wait counts toward --give-up-after."""
    patient = PausePolicy(0.01, 0.02, max_pause=60.0)
    slow = RedisLimiter(redis_url, rate=0.05, account="acct", policy=patient)
    schedule = RedisLimiter(redis_url, rate=10, account="acct", policy=patient)
    b = AdaptiveLimiter(20, policy=patient, concurrency=4, schedule=schedule)
    b.holds = b.pacer.holds = heard = Heard(patient.max_pause)
    for one in (slow, b):
        await one.open()
        one.begin()
    await slow.acquire()  # its rate is in force for the account now, its next slot 20 s on
    waiting = asyncio.ensure_future(b.acquire())
    async with asyncio.timeout(10):
        await heard.begun.wait()
    assert heard.why == "the account's rate in force, 0.05/s"
    assert 19 < heard.held <= 21
    assert b.describe().current == 0.05
    line = b.describe().progress() or ""
    assert line.startswith("paused 2")
    assert line.endswith("(the account's rate in force, 0.05/s)")
    waiting.cancel()
    await slow.close()
    await b.close()


async def test_a_hold_behind_the_accounts_rate_in_force_gives_up_after_give_up_after(
    redis_url: str,
) -> None:
    """No answer ever ends that hold (nothing is sent): the job must still stop once it is held
    longer than --give-up-after, as after a 429 or a failure, not wait on for ever."""
    patient = PausePolicy(0.01, 0.02, max_pause=60.0, give_up_after=10.0)
    slow = RedisLimiter(redis_url, rate=0.05, account="acct", policy=patient)
    schedule = RedisLimiter(redis_url, rate=10, account="acct", policy=patient)
    b = AdaptiveLimiter(20, policy=patient, concurrency=4, schedule=schedule)
    for one in (slow, b):
        await one.open()
        one.begin()
    await slow.acquire()  # its rate is in force for the account now, its next slot 20 s on
    with pytest.raises(GivenUp) as given_up:
        async with asyncio.timeout(10):
            await b.acquire()
    assert given_up.value.message.startswith("the API looks down: it took no request for 2")
    assert "(the account's rate in force, 0.05/s 2" in given_up.value.message
    assert given_up.value.message.endswith(
        "more than --give-up-after 10; rerun later with --resume"
    )
    await slow.close()
    await b.close()

"""The pacer: at most R starts in any sliding second, no burst, close to R, shared pauses.

Every timing test runs in virtual time (the `virtual_time` fixture).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import math
import random
import signal
from collections.abc import Iterator

import pytest

from bulk_updater.limits.guard import GUARD_SPAN, SLACK, StartGuard
from bulk_updater.limits.pacer import Pacer, Stopped
from tests.conftest import VirtualTimeLoop, advance


def max_in_window(times: list[float], window: float = 1.0) -> int:
    """Most start times inside any half-open window [t, t + window)."""
    times = sorted(times)
    return max(bisect.bisect_left(times, t + window) - i for i, t in enumerate(times))


async def hammer(pacer: Pacer, tasks: int, per_task: int) -> list[float]:
    loop = asyncio.get_running_loop()
    starts: list[float] = []

    async def one() -> None:
        for _ in range(per_task):
            await pacer.acquire()
            starts.append(loop.time())

    await asyncio.gather(*(one() for _ in range(tasks)))
    return starts


@contextlib.contextmanager
def real_time_limit(seconds: float) -> Iterator[None]:
    """Fail a test still running after `seconds` of real time: a livelock in virtual time spins
    without moving the clock, so no virtual timeout would ever fire."""

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"still running after {seconds} s of real time")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# --- the limit


@pytest.mark.parametrize("rate", [1, 2.5, 7, 50, 333])
async def test_no_window_holds_more_than_rate(virtual_time: VirtualTimeLoop, rate: int) -> None:
    starts = await hammer(Pacer(rate), tasks=64, per_task=max(3, rate // 8))
    assert max_in_window(starts) <= rate


async def test_no_burst_at_start_up(virtual_time: VirtualTimeLoop) -> None:
    starts = await hammer(Pacer(50), tasks=64, per_task=4)
    first = sorted(starts)[:5]
    gaps = [b - a for a, b in itertools.pairwise(first)]
    assert all(gap == pytest.approx(SLACK / 50) for gap in gaps)


async def test_steady_run_achieves_close_to_rate(virtual_time: VirtualTimeLoop) -> None:
    starts = sorted(await hammer(Pacer(50), tasks=64, per_task=16))
    achieved = (len(starts) - 1) / (starts[-1] - starts[0])
    assert 0.98 * 50 <= achieved <= 50


async def test_idle_gap_builds_no_credit(virtual_time: VirtualTimeLoop) -> None:
    pacer = Pacer(10)
    await pacer.acquire()
    await advance(5)  # idle for five seconds
    starts = sorted(await hammer(pacer, tasks=8, per_task=2))
    assert starts[1] - starts[0] == pytest.approx(SLACK / 10)


async def test_rate_zero_means_no_limit(virtual_time: VirtualTimeLoop) -> None:
    starts = await hammer(Pacer(0), tasks=10, per_task=10)
    assert len(starts) == 100
    assert max(starts) == min(starts)


def test_negative_rate_is_refused() -> None:
    with pytest.raises(ValueError, match="rate"):
        Pacer(-1)


async def test_fractional_rate_runs_at_the_whole_number_it_allows(
    virtual_time: VirtualTimeLoop,
) -> None:
    starts = sorted(await hammer(Pacer(2.5), tasks=8, per_task=3))
    achieved = (len(starts) - 1) / (starts[-1] - starts[0])
    assert max_in_window(starts) <= 2
    assert 0.98 * 2 <= achieved <= 2


# --- pauses and stops


async def test_pause_holds_every_caller_and_restarts_without_burst(
    virtual_time: VirtualTimeLoop,
) -> None:
    pacer = Pacer(20)
    await pacer.acquire()
    paused_at = virtual_time.time()
    assert pacer.hold(3.0) is True
    assert pacer.hold(1.0) is False  # inside a pause: not a new one, and not shortened
    assert pacer.is_paused()
    starts = sorted(await hammer(pacer, tasks=16, per_task=2))
    assert starts[0] >= paused_at + 3.0
    assert starts[1] - starts[0] == pytest.approx(SLACK / 20)


async def test_pause_reaches_callers_already_holding_a_slot(virtual_time: VirtualTimeLoop) -> None:
    pacer = Pacer(2)
    waiting = asyncio.gather(*(pacer.acquire() for _ in range(3)))
    await advance(0.1)  # the waiters now hold slots at 0, 0.5, 1.0
    pacer.hold(10.0)
    paused_at = virtual_time.time()
    await waiting
    assert virtual_time.time() >= paused_at + 10.0


async def test_stop_wakes_waiters_and_refuses_more(virtual_time: VirtualTimeLoop) -> None:
    pacer = Pacer(1)
    await pacer.acquire()
    pacer.hold(3600)
    waiter = asyncio.ensure_future(pacer.acquire())
    await advance(1)
    pacer.stop()
    with pytest.raises(Stopped):
        await waiter
    with pytest.raises(Stopped):
        await pacer.sleep(100)
    assert virtual_time.time() < 2  # the stop woke the waiter long before the pause would end


@pytest.mark.parametrize("rate", [1, 10])
async def test_short_pause_never_moves_the_schedule_backwards(
    virtual_time: VirtualTimeLoop, rate: int
) -> None:
    """A pause ending before the next free slot (Retry-After: 0, a date in the past, a small
    backoff) must not hand out slots earlier than the ones already used."""
    pacer = Pacer(rate)
    run = asyncio.ensure_future(hammer(pacer, tasks=32, per_task=max(4, rate)))
    retries: list[float] = []
    for seconds in (0.0, 0.3):
        await advance(2.0 + 0.5 / rate)  # between two slots
        pacer.hold(seconds)  # as after a 429; the caller then retries at once
        for _ in range(3):
            await pacer.acquire()
            retries.append(virtual_time.time())
    starts = [*(await run), *retries]
    assert max_in_window(starts) <= rate


@pytest.mark.parametrize("stall", [0.03, 0.2])
async def test_a_stalled_loop_releases_no_burst(
    virtual_time: VirtualTimeLoop, stall: float
) -> None:
    """Slot holders made late by a busy loop all wake at once; the window guard spreads them."""
    run = asyncio.ensure_future(hammer(Pacer(50), tasks=64, per_task=4))
    for _ in range(3):
        await advance(1.0)
        virtual_time.now += stall  # blocks the loop: every timer due meanwhile fires late, together
    starts = await run
    assert max_in_window(starts, GUARD_SPAN) <= 50


async def test_late_slot_holders_go_out_spread_not_in_a_clump(
    virtual_time: VirtualTimeLoop,
) -> None:
    """A stall of 0.2 s at 40/s makes 8 slot holders late: they catch up at twice the rate,
    never two closer than half an interval (an API with a bucket of 5 refuses a clump)."""
    run = asyncio.ensure_future(hammer(Pacer(40), tasks=32, per_task=4))
    await advance(1.0)
    virtual_time.now += 0.2  # blocks the loop: every timer due meanwhile fires late, together
    starts = await run
    gaps = [b - a for a, b in itertools.pairwise(sorted(starts))]
    assert min(gaps) >= 0.5 * SLACK / 40 - 1e-9
    assert max_in_window(starts) <= 40


@pytest.mark.parametrize("seed", range(12))
async def test_pauses_and_stalls_at_random_never_break_the_limit_or_hang(
    virtual_time: VirtualTimeLoop, seed: int
) -> None:
    rnd = random.Random(seed)
    rate = rnd.choice([0.5, 1, 2, 2.5, 5, 10, 50, 100])
    allowed = math.floor(rate) if rate >= 1 else 1
    starts: list[float] = []
    pacer = Pacer(rate)
    loop = virtual_time

    async def user() -> None:
        while loop.time() < 15:
            await pacer.acquire()
            starts.append(loop.time())
            await advance(rnd.choice([0, 0, 0.001, rnd.uniform(0, 2)]))

    async def chaos() -> None:
        while True:
            await advance(rnd.uniform(0, 1))
            if rnd.random() < 0.3:  # a 429, sometimes with Retry-After: 0
                pacer.hold(rnd.choice([0, 0.001, rnd.uniform(0, 3)]))
            elif rnd.random() < 0.5:
                loop.now += rnd.uniform(0, 2.5)  # the loop was blocked

    with real_time_limit(10):
        disorder = asyncio.ensure_future(chaos())
        await asyncio.gather(*(user() for _ in range(rnd.choice([1, 3, 20, 64]))))
        disorder.cancel()
    assert starts
    assert max_in_window(starts, GUARD_SPAN) <= allowed


async def test_a_pause_ending_a_hair_after_now_does_not_spin(
    virtual_time: VirtualTimeLoop,
) -> None:
    virtual_time.now = 3.589188570121313
    with real_time_limit(5):
        pacer = Pacer(10)
        pacer.hold(math.ulp(virtual_time.now))  # the pause ends one float step after now
        await pacer.acquire()
    assert virtual_time.now == pytest.approx(3.589188570121313)


# --- a rate that changes (the adaptive limiter steers it)


def most_before(starts: list[float], at: float) -> int:
    """Starts in the second that ends with the start at `at`, that one included."""
    return sum(1 for s in starts if at - 1.0 < s <= at)


async def test_a_faster_rate_applies_at_once_to_callers_holding_slots(
    virtual_time: VirtualTimeLoop,
) -> None:
    pacer = Pacer(1)
    run = asyncio.ensure_future(hammer(pacer, tasks=16, per_task=1))
    await advance(2.5)  # three went; thirteen hold slots a second apart
    pacer.set_rate(20)
    starts = sorted(await run)
    assert starts[-1] < 2.5 + 14 * SLACK / 20  # not 13 more seconds
    later = [s for s in starts if s > 2.5]
    gaps = [b - a for a, b in itertools.pairwise(later)]
    assert min(gaps) >= SLACK / 20 - 1e-9  # and no burst


async def test_a_slower_rate_counts_the_last_second_against_it(
    virtual_time: VirtualTimeLoop,
) -> None:
    pacer = Pacer(50)
    run = asyncio.ensure_future(hammer(pacer, tasks=32, per_task=6))
    await advance(1.5)
    pacer.set_rate(10)
    starts = sorted(await run)
    after = [s for s in starts if s > 1.5]
    assert after
    assert all(most_before(starts, s) <= 10 for s in after)


@pytest.mark.parametrize("seed", range(8))
async def test_rates_changing_at_random_never_break_the_rate_in_force(
    virtual_time: VirtualTimeLoop, seed: int
) -> None:
    rnd = random.Random(seed)
    pacer = Pacer(rnd.choice([1, 5, 40]))
    starts: list[tuple[float, int]] = []  # (time, the most allowed in the second ending there)
    loop = virtual_time

    async def user() -> None:
        while loop.time() < 12:
            await pacer.acquire()
            starts.append((loop.time(), max(1, math.floor(pacer.rate))))
            await advance(rnd.choice([0, 0, 0.001, rnd.uniform(0, 1)]))

    async def steer() -> None:
        while True:
            await advance(rnd.uniform(0, 0.7))
            if rnd.random() < 0.2:
                pacer.hold(rnd.uniform(0, 1.5))
            else:
                pacer.set_rate(rnd.choice([0.5, 1, 2.5, 7, 31, 45, 120]))

    with real_time_limit(10):
        steering = asyncio.ensure_future(steer())
        await asyncio.gather(*(user() for _ in range(rnd.choice([1, 8, 64]))))
        steering.cancel()
    times = [t for t, _ in starts]
    assert times
    assert all(most_before(times, t) <= allowed for t, allowed in starts)


def test_set_rate_needs_a_rate() -> None:
    with pytest.raises(ValueError, match="above 0"):
        Pacer(10).set_rate(0)


def test_the_guard_allows_one_start_per_interval_below_one_a_second() -> None:
    """At 0.5/s one start a second (the whole part, at least one) would be twice the rate."""
    guard = StartGuard(0.5)
    guard.start(0.0)
    assert guard.free_at(1.1) == pytest.approx(SLACK / 0.5)
    assert guard.free_at(SLACK / 0.5) is None
    faster = StartGuard(10)
    faster.start(0.0)
    faster.set_rate(0.5)  # a rate cut below 1/s counts the latest start against it too
    assert faster.free_at(1.5) == pytest.approx(SLACK / 0.5)

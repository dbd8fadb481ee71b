"""Requests in flight that follow latency: the percentile, Little's law, a resizable semaphore
(its async tests in virtual time, `advance(0)` letting the waiters run)."""

from __future__ import annotations

import asyncio

import pytest

from bulk_updater.limits.flight import FLOOR, HEADROOM, FlightCap, Latencies, needed
from tests.conftest import VirtualTimeLoop, advance


def test_the_90th_percentile_of_the_latest_latencies() -> None:
    latencies = Latencies(size=10)
    assert latencies.p90 is None
    for n in range(1, 11):
        latencies.add(n / 10)
    assert latencies.p90 == 1.0
    for _ in range(200):  # the old ones leave the window
        latencies.add(0.05)
    assert latencies.p90 == 0.05


def test_the_percentile_is_not_sorted_again_for_every_answer() -> None:
    latencies = Latencies()
    recomputed = sum(latencies.add(0.1) for _ in range(320))
    assert recomputed < 32 + 320 // 8


def test_what_a_rate_needs_in_flight() -> None:
    assert needed(50, None, 64) == FLOOR  # no latency seen yet
    assert needed(50, 0.04, 64) == FLOOR  # 3 would do: never fewer than the floor
    assert needed(50, 0.48, 64) == 36  # 50/s at 0.48 s, with headroom
    assert needed(500, 2.0, 64) == 64  # the cap
    assert needed(10, 0.5, 4) == 4  # a cap below the floor wins
    assert HEADROOM > 1


async def test_the_cap_follows_its_limit_and_serves_waiters_in_order(
    virtual_time: VirtualTimeLoop,
) -> None:
    cap = FlightCap(1)
    await cap.enter()
    order: list[int] = []

    async def one(n: int) -> None:
        await cap.enter()
        order.append(n)

    waiters = [asyncio.ensure_future(one(n)) for n in range(3)]
    await advance(0)
    assert order == []
    cap.resize(3)  # two more places: the first two waiters go
    await advance(0)
    assert order == [0, 1]
    cap.leave()
    await asyncio.gather(*waiters)
    assert order == [0, 1, 2]
    assert cap.busy == 3


async def test_a_waiter_cancelled_as_its_place_comes_passes_it_on(
    virtual_time: VirtualTimeLoop,
) -> None:
    cap = FlightCap(1)
    await cap.enter()
    first = asyncio.ensure_future(cap.enter())
    second = asyncio.ensure_future(cap.enter())
    await advance(0)
    cap.leave()  # hands the place to `first` ...
    first.cancel()  # ... which is cancelled before it runs: `second` gets it
    with pytest.raises(asyncio.CancelledError):
        await first
    await second
    assert cap.busy == 1


async def test_a_cancelled_waiter_leaves_the_queue(virtual_time: VirtualTimeLoop) -> None:
    cap = FlightCap(1)
    await cap.enter()
    waiter = asyncio.ensure_future(cap.enter())
    await advance(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    cap.leave()
    assert cap.busy == 0


async def test_a_waiter_cancelled_then_dropped_by_a_hand_over_ends_cancelled(
    virtual_time: VirtualTimeLoop,
) -> None:
    """A place freed between a waiter's cancellation and its turn to run drops the cancelled
    waiter from the queue: the waiter still ends cancelled (not with a `ValueError`), and the
    place goes to the next one."""
    cap = FlightCap(1)
    await cap.enter()
    first = asyncio.ensure_future(cap.enter())
    second = asyncio.ensure_future(cap.enter())
    await advance(0)
    first.cancel()  # its future is cancelled now; its task runs later
    cap.leave()  # ... and the hand-over drops it, and lets `second` in
    with pytest.raises(asyncio.CancelledError):
        await first
    await second
    assert cap.busy == 1


async def test_take_holds_a_free_place_only_when_no_one_waits_for_one(
    virtual_time: VirtualTimeLoop,
) -> None:
    cap = FlightCap(1)
    assert cap.take()
    assert not cap.take()  # full
    waiter = asyncio.ensure_future(cap.enter())
    await advance(0)
    cap.resize(2)  # the place freed goes to the waiter, not to a `take()` after it
    assert not cap.take()
    await waiter
    cap.leave()
    assert cap.take()
    assert cap.busy == 2


async def test_wake_all_lets_every_waiter_in_and_reset_forgets_them(
    virtual_time: VirtualTimeLoop,
) -> None:
    cap = FlightCap(0)
    waiters = [asyncio.ensure_future(cap.enter()) for _ in range(3)]
    await advance(0)
    cap.wake_all()
    await asyncio.gather(*waiters)
    assert cap.busy == 3
    cap.reset()
    assert cap.busy == 0

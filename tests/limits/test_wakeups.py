"""`Wakeups`: sleeps that end at their time or at `wake()`, and a paced wait that cancels nothing.

Every test runs in virtual time (the `virtual_time` fixture).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from typing import Any

import pytest

from bulk_updater.limits.pacer import Pacer, Stopped
from bulk_updater.limits.wakeups import Wakeups
from tests.conftest import VirtualTimeLoop, advance


async def test_a_sleep_ends_at_its_time(virtual_time: VirtualTimeLoop) -> None:
    wakeups = Wakeups()
    await wakeups.sleep(2.5)
    assert virtual_time.time() == pytest.approx(2.5)


async def test_wake_ends_every_sleep_running_now_and_none_started_later(
    virtual_time: VirtualTimeLoop,
) -> None:
    wakeups = Wakeups()
    ended: list[float] = []

    async def sleep(seconds: float) -> None:
        await wakeups.sleep(seconds)
        ended.append(virtual_time.time())

    first = [asyncio.create_task(sleep(10)) for _ in range(3)]
    await advance(1)
    wakeups.wake()
    await asyncio.gather(*first)
    later = asyncio.create_task(sleep(5))
    await asyncio.sleep(0)
    wakeups.wake()  # nothing to wake but `later`, which started after the first wake
    await later
    assert ended == [pytest.approx(1.0)] * 3 + [pytest.approx(1.0)]
    await wakeups.sleep(2)  # a sleep after every wake runs its time
    assert virtual_time.time() == pytest.approx(3.0)


async def test_a_cancelled_sleep_is_cancelled_and_forgotten(virtual_time: VirtualTimeLoop) -> None:
    wakeups = Wakeups()
    task = asyncio.create_task(wakeups.sleep(10))
    await advance(1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not wakeups._sleepers
    wakeups.wake()  # no sleeper left to wake: nothing fails


class _CountingTask(asyncio.tasks._PyTask):  # type: ignore[name-defined,misc]
    """A task that counts the cancellations it is sent."""

    cancels = 0

    def cancel(self, msg: Any = None) -> bool:
        _CountingTask.cancels += 1
        return bool(super().cancel(msg))


async def test_a_paced_start_waits_without_cancelling_its_task(
    virtual_time: VirtualTimeLoop,
) -> None:
    """A slot wait ends by its timer, not by a cancellation raised through the worker's frames
    (what `asyncio.timeout` does): the costliest part of a paced request's wait."""
    pacer = Pacer(10)
    pacer.begin()
    starts: list[float] = []

    async def worker() -> None:
        for _ in range(5):
            await pacer.acquire()
            starts.append(virtual_time.time())

    def factory(
        loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any] | Generator[Any, None, Any]
    ) -> asyncio.Future[Any]:
        return _CountingTask(coro, loop=loop)

    _CountingTask.cancels = 0
    virtual_time.set_task_factory(factory)
    try:
        await asyncio.gather(*(asyncio.create_task(worker()) for _ in range(3)))
    finally:
        virtual_time.set_task_factory(None)
    assert len(starts) == 15
    assert starts[-1] == pytest.approx(14 * 0.101)
    assert _CountingTask.cancels == 0


async def test_a_stop_wakes_slot_waits_and_backoffs(virtual_time: VirtualTimeLoop) -> None:
    pacer = Pacer(1)
    pacer.begin()
    await pacer.acquire()
    waiting = asyncio.create_task(pacer.acquire())
    backoff = asyncio.create_task(pacer.sleep(30))
    await advance(0.5)
    pacer.stop()
    for task in (waiting, backoff):
        with pytest.raises(Stopped):
            await task
    assert virtual_time.time() == pytest.approx(0.5)

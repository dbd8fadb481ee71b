"""`Window`: at most `size` rows read ahead, and a full window wakes the feeder once a batch."""

from __future__ import annotations

import asyncio

import pytest

from bulk_updater.engine.window import REFILL, Window


async def test_a_full_window_wakes_its_taker_once_a_batch_is_free() -> None:
    window = Window(16)
    assert all(window.take() for _ in range(16))
    assert not window.take()
    waiting = asyncio.ensure_future(window.wait())
    batch = int(16 * REFILL)  # 2
    for _ in range(batch - 1):
        window.give_back()
        await asyncio.sleep(0)
        assert not waiting.done()  # one place free: not yet
    window.give_back()
    await waiting
    assert [window.take() for _ in range(batch + 1)] == [True] * batch + [False]
    assert window.taken == 16


async def test_a_cancelled_wait_leaves_nothing_behind() -> None:
    window = Window(8)
    while window.take():
        pass
    waiting = asyncio.ensure_future(window.wait())
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    window.give_back()  # no waiter to wake: nothing fails
    assert window.take()


async def test_the_taker_is_woken_even_by_a_window_smaller_than_a_batch() -> None:
    window = Window(1)
    assert window.take()
    waiting = asyncio.ensure_future(window.wait())
    await asyncio.sleep(0)
    window.give_back()
    await waiting
    assert window.take()

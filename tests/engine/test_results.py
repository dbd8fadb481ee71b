"""`Results`: outcomes reach the one consumer in the order they were put, none lost."""

from __future__ import annotations

import asyncio

import pytest

from bulk_updater.engine.results import Results


async def test_items_come_out_in_the_order_they_were_put() -> None:
    results: Results[int] = Results()
    assert results.empty()
    for n in range(3):
        results.put(n)
    assert not results.empty()
    assert [results.take(), await results.get(), results.take()] == [0, 1, 2]
    assert results.empty()


async def test_a_waiting_consumer_is_woken_by_the_next_put() -> None:
    results: Results[str] = Results()
    got = asyncio.ensure_future(results.get())
    await asyncio.sleep(0)
    assert not got.done()
    asyncio.get_running_loop().call_soon(results.put, "a")
    assert await got == "a"
    results.put("b")  # nobody waits: kept for the next get
    assert await results.get() == "b"


async def test_a_cancelled_get_loses_nothing_put_later() -> None:
    results: Results[int] = Results()
    got = asyncio.ensure_future(results.get())
    await asyncio.sleep(0)
    got.cancel()
    with pytest.raises(asyncio.CancelledError):
        await got
    results.put(7)
    assert await results.get() == 7

"""Library input as numbered rows (`inputs/rows.py`): what a row may be, what is not rows at all,
and the caller's generator closed when the job ends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bulk_updater import BulkUpdater, Status
from tests.conftest import FakeSender, VirtualTimeLoop


async def test_a_row_that_is_not_a_dict_is_invalid_and_the_job_goes_on() -> None:
    sender = FakeSender(latency=0)
    rows: list[Any] = ["id,city", 42, None, ["a", "b"], {"id": "ok", "city": "x"}]
    async with BulkUpdater(sender=sender, rate=0) as updater:
        outcomes = sorted([o async for o in updater.stream(rows)], key=lambda o: o.row)
    assert [o.status for o in outcomes] == [Status.INVALID] * 4 + [Status.UPDATED]
    assert all("dict" in o.message for o in outcomes[:4])
    assert [call[1] for call in sender.calls] == ["ok"]


async def test_a_dict_with_a_non_string_key_is_an_invalid_row_not_an_exception() -> None:
    """Row-level problems are outcomes: a dict keyed by something else than column names is one
    bad row, not a reason to abort the job with an AttributeError."""
    sender = FakeSender(latency=0)
    rows: list[Any] = [{"id": "a", 1: "x"}, {"id": "b", "city": "y"}]
    async with BulkUpdater(sender=sender, rate=0) as updater:
        outcomes = sorted([o async for o in updater.stream(rows)], key=lambda o: o.row)
    assert [o.status for o in outcomes] == [Status.INVALID, Status.UPDATED]
    assert [call[1] for call in sender.calls] == ["b"]


async def test_a_path_string_is_not_read_as_rows(virtual_time: VirtualTimeLoop) -> None:
    async with BulkUpdater(sender=FakeSender(), rate=0) as updater:
        with pytest.raises(TypeError, match=r"pass Source\('updates.csv'\) to read a file"):
            await updater.run("updates.csv")  # type: ignore[arg-type]


async def test_the_caller_async_generator_is_closed_when_the_job_ends(
    virtual_time: VirtualTimeLoop,
) -> None:
    closed: list[bool] = []

    async def rows() -> AsyncIterator[dict[str, str]]:
        try:
            for i in range(1000):
                yield {"id": f"lead{i}", "city": "Oslo"}
        finally:
            closed.append(True)

    async with BulkUpdater(sender=FakeSender(), rate=0, concurrency=2) as updater:
        virtual_time.call_later(0.05, updater.stop)
        await updater.run(rows())
        assert closed == [True]  # before the updater closes, not at garbage collection

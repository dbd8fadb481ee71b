"""The summary's hint after repeated 429s: a lower `--rate` for a fixed limit, `--redis` for a
limit that another job on the key shares (or that moves)."""

from __future__ import annotations

import asyncio

import pytest

from bulk_updater import BulkUpdater, Reply, Summary
from bulk_updater.sandbox.ratelimit import HeaderStyle
from tests.conftest import FakeSender, SimulatedApi, VirtualTimeLoop, make_rows


async def two_jobs(api: SimulatedApi, rows: int, **settings: object) -> list[Summary]:
    async def one() -> Summary:
        async with BulkUpdater(sender=api, **settings) as updater:
            return await updater.run(make_rows(rows))

    return list(await asyncio.gather(one(), one()))


@pytest.mark.parametrize("headers", [None, "xrl"])
@pytest.mark.parametrize("rate", [20, "auto"])
async def test_two_jobs_on_one_key_are_told_of_redis_not_of_a_lower_limit(
    virtual_time: VirtualTimeLoop, headers: HeaderStyle | None, rate: float | str
) -> None:
    """Two jobs at --rate 20 on a key the API allows 20/s were each told "the API accepts less
    (about 6/s)": the 429s came from the other job."""
    for summary in await two_jobs(SimulatedApi(20, 0, headers=headers), 1200, rate=rate):
        assert summary.rate_limited > 0
        assert summary.rate_hint is not None
        assert "accepts less" not in summary.rate_hint
        assert "the same --redis URL" in summary.rate_hint
        if headers is not None:
            assert (
                "below the limit the API states (from X-RateLimit-Limit: 20)" in summary.rate_hint
            )


async def test_a_job_alone_under_a_fixed_limit_is_told_the_api_accepts_less(
    virtual_time: VirtualTimeLoop,
) -> None:
    async with BulkUpdater(sender=SimulatedApi(40, 5), rate=400, concurrency=32) as updater:
        summary = await updater.run(make_rows(800))
    assert summary.rate_hint is not None
    assert "the API accepts less" in summary.rate_hint
    assert "--redis" not in summary.rate_hint


async def test_a_job_the_api_accepted_nothing_from_is_told_no_rate_it_accepts(
    virtual_time: VirtualTimeLoop,
) -> None:
    """Every answer a 429: the API accepted no rate at all, not "about 0/s"."""
    sender = FakeSender(lambda update, attempt: Reply(429, retry_after=0.1), latency=0.01)
    settings = {"max_pause": 5.0, "give_up_after": 10.0, "grace": 1.0}
    async with BulkUpdater(sender=sender, rate=20, **settings) as updater:  # type: ignore[arg-type]
        summary = await updater.run(make_rows(20))
    assert summary.rate_hint is not None
    assert "/s)" not in summary.rate_hint.split("accepts less")[-1]

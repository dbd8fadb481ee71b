"""The adaptive limiter against every shape of limit the sandbox has (issue 25), in virtual time:
whole jobs of 2,000 rows, 40 ms answers, `--concurrency 32`, the real engine and the sandbox's
own `RateLimit` (`SimulatedApi`), so each figure is exact. The bench runs the same matrix over
sockets (`bench/measures/adaptive.py`)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bulk_updater import BulkUpdater, Summary
from bulk_updater.sandbox import max_in_any_window
from tests.conftest import SimulatedApi, VirtualTimeLoop, make_rows

ROWS = 2000
LIMIT = 40

#: name -> `SimulatedApi` settings: a limit of 40 a second, shaped as real APIs shape it.
SHAPES: dict[str, dict[str, Any]] = {
    "sliding window": {"burst": 0},
    "sliding window + 5": {"burst": 5},
    "fixed window": {"burst": 0, "shape": "fixed"},
    "token bucket of 5": {"burst": 5, "shape": "bucket"},
    "window + bucket of 5": {"burst": 5, "shape": "window+bucket"},
    "window + bucket, Retry-After as a date": {
        "burst": 5,
        "shape": "window+bucket",
        "retry_after": "date",
    },
    "sliding window, no Retry-After": {"burst": 0, "retry_after": "none"},
}


async def job(api: SimulatedApi, rate: object) -> tuple[Summary, float]:
    async with BulkUpdater(sender=api, rate=rate, concurrency=32) as updater:  # type: ignore[arg-type]
        summary = await updater.run(make_rows(ROWS))
    return summary, asyncio.get_running_loop().time()


@pytest.mark.parametrize("rate", [400, "auto"])
@pytest.mark.parametrize("shape", list(SHAPES))
async def test_the_limit_is_found_whatever_its_shape(
    virtual_time: VirtualTimeLoop, shape: str, rate: object
) -> None:
    api = SimulatedApi(LIMIT, **SHAPES[shape])
    summary, seconds = await job(api, rate)
    assert seconds <= 1.2 * ROWS / LIMIT
    assert summary.rate_limited <= 0.03 * ROWS
    assert summary.settled_rate is not None
    assert 0.95 * LIMIT <= summary.settled_rate <= LIMIT + SHAPES[shape]["burst"] + 2
    assert (summary.settled_why or "").startswith("429s at ")


@pytest.mark.parametrize("rate", [400, "auto"])
@pytest.mark.parametrize("shape", ["sliding window", "token bucket of 5", "window + bucket of 5"])
async def test_stated_limits_need_at_most_one_429_even_with_no_burst(
    virtual_time: VirtualTimeLoop, shape: str, rate: object
) -> None:
    """The first answer's headers say the limit before a clump can empty a small bucket, and
    requests go evenly spread, whatever `Remaining` says."""
    api = SimulatedApi(LIMIT, headers="xrl", **SHAPES[shape])
    summary, seconds = await job(api, rate)
    assert summary.rate_limited <= 1
    assert seconds <= 1.2 * ROWS / LIMIT
    assert max_in_any_window(api.arrivals, 1 / 8) <= 6  # spread, never a clump


async def test_whole_second_retry_after_costs_no_whole_second_per_429(
    virtual_time: VirtualTimeLoop,
) -> None:
    """Issue 25's API: 40 in any sliding second with a bucket of 5 on top, every 429 saying
    `Retry-After: 1` or `2` (whole seconds, rounded up). It cost 1.37x the ideal time: a whole
    second of pause for each early 429, a cut far below the evidence, a slow climb back."""
    api = SimulatedApi(LIMIT, 5, shape="window+bucket")
    summary, seconds = await job(api, 400)
    assert seconds <= 1.2 * ROWS / LIMIT
    assert summary.rate_limited <= 0.03 * ROWS
    assert summary.settled_rate is not None
    assert summary.settled_rate >= 0.95 * LIMIT


@pytest.mark.parametrize("rate", [400, "auto"])
async def test_a_limit_that_halves_and_comes_back_is_followed(
    virtual_time: VirtualTimeLoop, rate: object
) -> None:
    """40/s, 20/s from 15 s to 35 s, then 40/s again: ideal 60 s."""
    api = SimulatedApi(LIMIT, halve_after=15.0, restore_after=35.0)
    summary, seconds = await job(api, rate)
    assert seconds <= 1.2 * 60
    assert summary.rate_limited <= 0.03 * ROWS
    late = [at for at in api.arrivals if at >= 50.0]
    assert len(late) / (max(late) - 50.0) >= 0.9 * LIMIT  # found again after it came back

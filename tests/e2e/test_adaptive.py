"""Finding the limit over real sockets: the engine against the sandbox with a hidden limit, with
and without rate-limit headers. Counts are asserted, not times (timing is `make bench`'s). The
limit is low enough (50/s) that even a loaded machine running coverage sends faster."""

from __future__ import annotations

from typing import Any

import pytest

from bulk_updater import BulkUpdater, Status
from bulk_updater.sandbox import Sandbox, max_in_any_window
from tests.conftest import make_leads

KEY = "sk_test_adaptive"


@pytest.mark.parametrize(
    ("rate", "most"),
    [
        ("auto", 10),  # slow start: a few 429s when it first overshoots
        (400, 32 + 10),  # starts above the limit: at most what is in flight, then a few probes
    ],
)
async def test_a_hidden_limit_is_found_with_few_429s(rate: Any, most: int) -> None:
    leads = make_leads(200)
    async with Sandbox(leads, api_key=KEY, rate=50, burst=5) as sandbox:
        async with BulkUpdater(
            api_key=KEY, base_url=sandbox.url, rate=rate, concurrency=32
        ) as updater:
            summary = await updater.run([{"id": i, "city": "Oslo"} for i in leads])
        state = sandbox.state
    assert summary.counts[Status.UPDATED] == 200
    assert summary.rate_limited == state.rate_limited
    assert 0 < state.rate_limited <= most
    assert (summary.settled_why or "").startswith("429s at ")


@pytest.mark.parametrize("headers", ["xrl", "ietf"])
async def test_rate_limit_headers_say_the_limit_and_nothing_is_provoked(headers: Any) -> None:
    leads = make_leads(200)
    async with Sandbox(leads, api_key=KEY, rate=50, burst=5, headers=headers) as sandbox:
        async with BulkUpdater(
            api_key=KEY, base_url=sandbox.url, rate=1000, concurrency=32
        ) as updater:
            summary = await updater.run([{"id": i, "city": "Oslo"} for i in leads])
        state = sandbox.state
    assert summary.counts[Status.UPDATED] == 200
    assert state.rate_limited <= 1
    assert max_in_any_window(state.arrivals) <= 55
    source = "X-RateLimit-Limit" if headers == "xrl" else "RateLimit-Policy"
    assert summary.settled_why == f"from {source}: 50"

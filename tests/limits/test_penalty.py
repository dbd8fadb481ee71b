"""A server whose `Retry-After: 1` means a whole second: a penalty box (review 5, item 8).

It refuses everything for one second after a 429. Read as "within a second" (a sliding window
has room a few ms on), the first wait is shortened and the request after it is refused too: two
429s per event, a rate cut twice, and a hint that the limit is shared or moves.
"""

from __future__ import annotations

import asyncio
import collections
import random

import pytest

from bulk_updater import BulkUpdater, LeadUpdate, Reply
from tests.conftest import VirtualTimeLoop, make_rows


class PenaltyBox:
    """At most `rate` arrivals in any sliding second; past that, every request for the next
    second is refused with `Retry-After: 1`. Answers take `latency` seconds."""

    def __init__(self, rate: int, latency: float = 0.04) -> None:
        self.rate = rate
        self.latency = latency
        self.arrivals: collections.deque[float] = collections.deque()
        self.box_until = -1.0
        self.refused = 0
        self.events = 0

    async def send(self, update: LeadUpdate) -> Reply:
        now = asyncio.get_running_loop().time()
        while self.arrivals and self.arrivals[0] <= now - 1.0:
            self.arrivals.popleft()
        refused = now < self.box_until or len(self.arrivals) >= self.rate
        if refused:
            self.events += now >= self.box_until
            self.box_until = max(self.box_until, now + 1.0)
            self.refused += 1
        else:
            self.arrivals.append(now)
        await asyncio.sleep(self.latency)
        if refused:
            return Reply(429, "RATE_LIMITED", "Too many requests", 1.0)
        return Reply(200)


@pytest.mark.parametrize("seed", [0, 4, 11])  # the backoffs' jitter
async def test_a_retry_after_of_one_second_that_means_it_costs_one_429_per_event(
    virtual_time: VirtualTimeLoop, seed: int
) -> None:
    random.seed(seed)
    api = PenaltyBox(10)
    async with BulkUpdater(sender=api, rate=400, concurrency=2) as updater:  # type: ignore[arg-type]
        summary = await updater.run(make_rows(300))
    # Two 429s for the first event (both requests in flight were refused), two for the one
    # that shows the box for what it is (the wait was shortened), then one each.
    assert api.refused <= api.events + 2
    assert "shared" not in (summary.rate_hint or "")
    assert "moves" not in (summary.rate_hint or "")

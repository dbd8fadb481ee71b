"""The pipeline of one job: per-lead order, reading as the job runs, stops and the wind-down.

Tests that wait (latencies, grace periods, backoffs) run in virtual time (`virtual_time`).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Iterator

import pytest

from bulk_updater import BulkUpdater, LeadUpdate, Outcome, Reply, Status, StopReason, Summary
from tests.conftest import (
    FakeSender,
    VirtualTimeLoop,
    advance,
    collect,
    interleaved,
    make_rows,
)

# --- per-lead order


class JitterSender:
    """Answers after a random delay; records, per lead, the order of sends and the overlap."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.sent: dict[str, list[int]] = {}
        self.in_flight: dict[str, int] = {}
        self.max_in_flight_per_lead = 0
        self.max_in_flight = 0

    async def send(self, update: LeadUpdate) -> Reply:
        assert update.customFields is not None
        self.sent.setdefault(update.id, []).append(int(str(update.customFields["k"])))
        self.in_flight[update.id] = self.in_flight.get(update.id, 0) + 1
        self.max_in_flight_per_lead = max(self.max_in_flight_per_lead, self.in_flight[update.id])
        self.max_in_flight = max(self.max_in_flight, sum(self.in_flight.values()))
        try:
            await asyncio.sleep(self.rng.uniform(0.001, 0.5))  # virtual time: costs nothing
        finally:
            self.in_flight[update.id] -= 1
        return Reply(200)


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_rows_for_one_lead_go_out_in_input_order_one_at_a_time(
    virtual_time: VirtualTimeLoop, seed: int
) -> None:
    lead_ids = [f"lead{i}" for i in range(40)]
    order = interleaved(lead_ids, 10, seed)
    rows = [{"id": lead, "customFields.k": str(k)} for lead, k in order]
    sender = JitterSender(seed)

    async with BulkUpdater(sender=sender, rate=0, concurrency=32) as updater:
        outcomes = [o async for o in updater.stream(rows)]

    assert len(outcomes) == 400
    assert all(o.status is Status.UPDATED for o in outcomes)
    assert sender.max_in_flight_per_lead == 1
    assert sender.max_in_flight > 16  # the pool was busy, so the check above means something
    assert sender.sent == {lead: list(range(10)) for lead in lead_ids}


async def test_ids_that_differ_only_in_letter_case_are_one_lead_for_the_order(
    virtual_time: VirtualTimeLoop,
) -> None:
    """A Mongo backend reads a 24-hex id in either case: such rows are never sent at once, the
    last one goes last, and each goes with its id as written (S4)."""
    upper, lower = "66A0000000000000000000AA", "66a0000000000000000000aa"
    rows = [
        {"id": upper, "customFields.k": "0"},
        {"id": lower, "customFields.k": "1"},
        {"id": upper, "customFields.k": "2"},
    ]
    sender = JitterSender(seed=4)

    async with BulkUpdater(sender=sender, rate=0, concurrency=8) as updater:
        outcomes = [o async for o in updater.stream(rows)]

    assert sorted(o.status for o in outcomes) == [Status.UPDATED] * 3
    assert sender.max_in_flight == 1  # the three rows, one at a time
    assert sender.sent == {upper: [0, 2], lower: [1]}
    assert [o.id for o in sorted(outcomes, key=lambda o: o.row)] == [upper, lower, upper]


# --- reading as the job runs


async def test_rows_from_a_plain_iterator_are_read_lazily() -> None:
    """A generator is consumed as the job runs, not turned into a list first."""
    pulled: list[int] = []

    def rows() -> Iterator[dict[str, str]]:
        for i in range(1000):
            pulled.append(i)
            yield {"id": f"l{i}", "city": "x"}

    async with BulkUpdater(sender=FakeSender(latency=0), rate=0, concurrency=2) as updater:
        stream = updater.stream(rows())
        await anext(stream)
        early = len(pulled)
        rest = [o async for o in stream]
    assert early < 1000
    assert len(rest) == 999


async def test_failing_input_still_gives_every_row_read_an_outcome(
    virtual_time: VirtualTimeLoop,
) -> None:
    async def rows() -> AsyncIterator[dict[str, str]]:
        for i in range(50):
            yield {"id": f"lead{i}", "city": "Oslo"}
        raise OSError("disk gone")

    outcomes: list[Outcome] = []
    async with BulkUpdater(sender=FakeSender(latency=1.0), rate=0, concurrency=8) as updater:
        stream = updater.stream(rows())
        with pytest.raises(OSError, match="disk gone"):
            await collect(stream, outcomes)
    assert sorted(o.row for o in outcomes) == list(range(1, 51))


# --- a bug in the sender


class BuggySender:
    """A sender with a bug: an unexpected exception for one lead."""

    def __init__(self, bad: str) -> None:
        self.bad = bad
        self.sent: list[str] = []

    async def send(self, update: LeadUpdate) -> Reply:
        self.sent.append(update.id)
        if update.id == self.bad:
            raise ZeroDivisionError("bug in the sender")
        return Reply(200)


@pytest.mark.parametrize("concurrency", [1, 4])
async def test_an_unexpected_error_surfaces_instead_of_rows_vanishing(concurrency: int) -> None:
    """Every row gets an outcome, or the job raises: a worker that dies on a bug must not take
    its row (and the rows queued behind it for that lead) silently with it, nor hang the job."""
    rows = [{"id": i, "city": "x"} for i in ("a", "bad", "bad", "c", "d")]

    async def consume(updater: BulkUpdater) -> list[Outcome]:
        async with asyncio.timeout(3):
            return [o async for o in updater.stream(rows)]

    async with BulkUpdater(sender=BuggySender("bad"), rate=0, concurrency=concurrency) as updater:
        with pytest.raises(ZeroDivisionError, match="bug in the sender"):
            await consume(updater)


async def test_a_sender_bug_after_a_stop_surfaces_and_no_row_vanishes(
    virtual_time: VirtualTimeLoop,
) -> None:
    def script(update: LeadUpdate, attempt: int) -> Reply | Exception:
        if update.id == "bad":
            raise ZeroDivisionError("bug in the sender")
        return Reply(200)

    outcomes: list[Outcome] = []
    sender = FakeSender(script, latency=2.0)
    async with BulkUpdater(sender=sender, rate=0, concurrency=2, grace=5) as updater:
        virtual_time.call_later(1, updater.stop)
        rows = [{"id": i, "city": "Oslo"} for i in ("a", "bad", "bad", "c")]
        with pytest.raises(ZeroDivisionError):
            await collect(updater.stream(rows), outcomes)
    assert sorted(o.row for o in outcomes) == [1, 2, 3, 4]


# --- stops and the wind-down


async def test_interrupt_lets_requests_in_flight_finish_and_aborts_the_rest(
    virtual_time: VirtualTimeLoop,
) -> None:
    sender = FakeSender(latency=1.0)
    outcomes: list[Outcome] = []

    async with BulkUpdater(sender=sender, rate=0, concurrency=4, grace=5) as updater:

        def on_outcome(outcome: Outcome) -> None:
            outcomes.append(outcome)
            if len(outcomes) == 8:
                updater.stop("interrupted by test")

        summary = await updater.run(make_rows(1000), on_outcome=on_outcome)

    assert summary.stopped is StopReason.INTERRUPTED
    updated = [o for o in outcomes if o.status is Status.UPDATED]
    assert len(updated) == 12  # 8, then the 4 in flight when the stop came
    assert len(sender.calls) == 12
    aborted = [o for o in outcomes if o.status is Status.ABORTED]
    assert all("interrupted by test" in o.message for o in aborted)
    assert len({o.row for o in outcomes}) == len(outcomes)


async def test_interrupt_cancels_requests_that_outlast_the_grace_period(
    virtual_time: VirtualTimeLoop,
) -> None:
    sender = FakeSender(latency=100.0)
    async with BulkUpdater(sender=sender, rate=0, concurrency=3, grace=2) as updater:
        virtual_time.call_later(1.0, updater.stop)
        summary: Summary = await updater.run(make_rows(50))
        ended = virtual_time.time()
    assert ended == pytest.approx(3.0, abs=0.1)
    assert summary.counts[Status.ABORTED] >= 3
    assert summary.counts[Status.UPDATED] == 0


async def test_a_stop_never_strands_a_row_that_was_read(virtual_time: VirtualTimeLoop) -> None:
    produced: list[int] = []

    def rows() -> Iterator[dict[str, str]]:
        for i in range(10_000):
            produced.append(i)
            yield {"id": f"lead{i}", "city": "Oslo"}

    sender = FakeSender(latency=1000.0)  # every request hangs
    outcomes: list[Outcome] = []
    async with BulkUpdater(sender=sender, rate=0, concurrency=4, grace=1) as updater:
        virtual_time.call_later(5, updater.stop)
        await updater.run(rows(), on_outcome=outcomes.append)

    assert len(outcomes) == len(produced)
    assert sorted(o.row for o in outcomes) == list(range(1, len(produced) + 1))
    assert {o.status for o in outcomes} == {Status.ABORTED}


async def test_a_row_cut_off_after_the_grace_period_reports_its_real_attempts(
    virtual_time: VirtualTimeLoop,
) -> None:
    class Slow(FakeSender):
        async def send(self, update: LeadUpdate) -> Reply:
            if self.attempts[update.id] >= 2:
                self.latency = 1000.0  # the third attempt hangs
            return await super().send(update)

    sender = Slow(lambda update, attempt: Reply(503), latency=0.01)
    outcomes: list[Outcome] = []
    async with BulkUpdater(
        sender=sender, rate=0, concurrency=1, grace=1, backoff_base=0.1, max_attempts=5
    ) as updater:
        virtual_time.call_later(10, updater.stop)
        await updater.run([{"id": "x", "city": "Oslo"}], on_outcome=outcomes.append)

    (outcome,) = outcomes
    assert outcome.status is Status.ABORTED
    assert outcome.attempts == 3
    assert "grace period" in outcome.message


async def test_an_interrupt_ends_the_draining_after_a_refused_key(
    virtual_time: VirtualTimeLoop,
) -> None:
    async def endless() -> AsyncIterator[dict[str, str]]:
        n = 0
        while True:
            n += 1
            yield {"id": f"lead{n}", "city": "Oslo"}
            await advance(0.001)

    refused = FakeSender(lambda update, attempt: Reply(401), latency=0.01)
    async with BulkUpdater(sender=refused, rate=0, concurrency=4) as updater:
        virtual_time.call_later(5, updater.stop)
        summary = await updater.run(endless())
        ended = virtual_time.time()
    assert str(summary.stopped) == "key_refused"
    assert ended < 6

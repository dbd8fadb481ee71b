"""`--resume` at any size: the leads sent again are kept exactly, so no finished row goes again."""

from __future__ import annotations

import random

import pytest

from bulk_updater import BulkUpdater, LeadUpdate, Outcome, Status
from bulk_updater.engine import resume as resume_module
from bulk_updater.engine.diskmap import DiskMap, LeadSet
from bulk_updater.engine.resume import Resume
from bulk_updater.inputs import Row
from bulk_updater.report import FinishedRows
from tests.conftest import FakeSender, VirtualTimeLoop


@pytest.mark.parametrize("bits", [8, 64, 1 << 12])
def test_the_set_is_exact_whatever_the_bit_table_size(bits: int) -> None:
    """A tiny bit table makes every lookup collide: the answers must stay exact."""
    members = {f"lead{n:06d}" for n in range(0, 20_000, 2)}
    leads = LeadSet(bits=bits)
    for lead in members:
        leads.add(lead)
    leads.add("lead000000")  # twice: no harm
    for n in range(20_000):
        lead = f"lead{n:06d}"
        assert (lead in leads) is (lead in members), lead
    assert 42 not in leads
    leads.close()


async def test_resume_sends_no_finished_row_again_even_when_every_bit_collides(
    monkeypatch: pytest.MonkeyPatch, virtual_time: VirtualTimeLoop
) -> None:
    """1M unique ids, half failed, used to re-send thousands of finished rows through collisions
    in the 4 MB bit table; with a 64-bit table every id collides, and still none is re-sent."""
    monkeypatch.setattr(resume_module, "DiskMap", lambda: DiskMap(bits=64))
    rnd = random.Random(5)
    n = 20_000
    finished = FinishedRows()
    statuses = [rnd.choice([Status.UPDATED, Status.FAILED]) for _ in range(n)]
    for row, status in enumerate(statuses, start=1):
        finished.mark(row, status)
    rows = [{"id": f"{row:024x}", "city": "x"} for row in range(1, n + 1)]
    sender = FakeSender(latency=0)
    outcomes: list[Outcome] = []

    async with BulkUpdater(sender=sender, rate=0, concurrency=16) as updater:
        async for outcome in updater.stream(rows, skip=finished):
            outcomes.append(outcome)
    sent = {lead for _, lead in sender.calls}
    expected = {f"{row:024x}" for row, s in enumerate(statuses, 1) if s is Status.FAILED}
    assert sent == expected
    skipped = sum(1 for o in outcomes if o.status is Status.SKIPPED)
    assert skipped == statuses.count(Status.UPDATED)


def test_a_lead_sent_again_takes_its_later_finished_rows_with_it() -> None:
    finished = FinishedRows()
    for row, status in ((1, Status.FAILED), (2, Status.UPDATED), (3, Status.UPDATED)):
        finished.mark(row, status)
    resume = Resume(finished)
    a1, b2, a3 = (
        Row(n, LeadUpdate(id=lead, city=city))
        for n, lead, city in ((1, "a", "old"), (2, "b", "x"), (3, "a", "new"))
    )
    assert resume.admit(a1) is a1  # failed: sent again
    skipped = resume.admit(b2)
    assert isinstance(skipped, Outcome)
    assert skipped.status is Status.SKIPPED
    assert resume.admit(a3) is a3  # finished, but lead a went again before it: it follows
    resume.close()

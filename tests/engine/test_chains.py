"""`Chains`: a lead's rows wait behind the one in the pipeline, and go out in input order."""

from __future__ import annotations

from bulk_updater.engine.chains import Chains
from bulk_updater.inputs import Row
from bulk_updater.models import LeadUpdate


def _row(number: int, lead: str) -> Row:
    return Row(number, LeadUpdate(id=lead, city=f"City {number}"))


async def test_a_leads_later_rows_wait_behind_its_first_and_come_in_order() -> None:
    chains = Chains()
    rows = [_row(1, "a"), _row(2, "b"), _row(3, "a"), _row(4, "a")]
    for row in rows:
        chains.add(row, row.item.id)
    assert [chains.queue.get_nowait() for _ in range(chains.queue.qsize())] == rows[:2]
    assert chains.next("a") == rows[2]
    assert chains.next("a") == rows[3]
    assert chains.next("a") is None  # the lead is free: its next row goes to the queue
    assert chains.next("b") is None
    chains.add(rows[0], "a")
    assert chains.queue.get_nowait() == rows[0]


async def test_clear_takes_out_every_row_still_waiting() -> None:
    chains = Chains()
    rows = [_row(1, "a"), _row(2, "a"), _row(3, "b")]
    for row in rows:
        chains.add(row, row.item.id)
    assert chains.clear() == [rows[1], rows[0], rows[2]]  # the chains', then the queue's
    assert chains.queue.empty()
    chains.add(rows[1], "a")  # nothing of the lead is left in the pipeline
    assert chains.queue.get_nowait() == rows[1]

"""The values that flow through a job: immutable, and a `Status` shows as its value."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bulk_updater import BulkUpdater, LeadUpdate, Status
from tests.conftest import FakeSender


async def test_outcomes_and_summary_are_immutable() -> None:
    async with BulkUpdater(sender=FakeSender(latency=0), rate=0) as updater:
        outcomes = [o async for o in updater.stream([{"id": "a", "city": "x"}])]
        summary = await updater.run([{"id": "a", "city": "x"}])
    outcome = outcomes[0]
    with pytest.raises(ValidationError):
        outcome.status = Status.FAILED  # type: ignore[misc]
    with pytest.raises(ValidationError):
        summary.rows = 0  # type: ignore[misc]
    assert outcome.status is Status.UPDATED
    assert summary.rows == 1
    update = LeadUpdate(id="a", city="x")
    with pytest.raises(ValidationError):
        update.city = "y"  # type: ignore[misc]


def test_a_status_shows_as_its_value() -> None:
    """So that `print(summary.counts)` reads {'updated': 5000, ...}."""
    assert repr(Status.UPDATED) == "'updated'"
    assert repr({Status.NOT_FOUND: 2}) == "{'not_found': 2}"


def test_a_c1_control_in_a_value_is_refused_and_points_at_the_encoding() -> None:
    """`\\x92` is the right quote of a Windows-1252 file read as Latin-1: never real text."""
    with pytest.raises(ValidationError, match=r"wrong encoding.*cp1252"):
        LeadUpdate(id="lead1", lastName="O\x92Brien")
    assert LeadUpdate(id="lead1", lastName="O\u2019Brien").lastName == "O\u2019Brien"

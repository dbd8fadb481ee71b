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


@pytest.mark.parametrize("shown", ["4.15556E+11", "4,15556E+11", "1.41556E+10", " 4E+11"])
def test_a_phone_excel_turned_into_e_notation_is_refused_naming_the_cause(shown: str) -> None:
    with pytest.raises(ValidationError, match=r"Excel turned this phone number into .*E\+1"):
        LeadUpdate(id="lead1", phone=shown)


@pytest.mark.parametrize("phone", ["+1 415 555 0100", "+44 20 7946 0958", "4155550100", "E+1"])
def test_a_phone_with_a_plus_or_digits_is_kept(phone: str) -> None:
    assert LeadUpdate(id="lead1", phone=phone).phone == phone


def test_an_id_excel_turned_into_e_notation_says_why_it_looks_so() -> None:
    with pytest.raises(ValidationError, match=r"Excel turned this id into 1\.23E\+17 .*as Text"):
        LeadUpdate(id="1.23E+17", city="Oslo")

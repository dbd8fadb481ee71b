"""The values that flow through a job: immutable, and a `Status` shows as its value."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from bulk_updater import BulkUpdater, LeadUpdate, Status
from bulk_updater.models import _plain, _unsendable
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


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"city": "Oslo", "country": "N\x01O"}, "column country: holds the control character"),
        (
            {"city": "Oslo", "tags": ["a", "b\x85"]},
            "column tags: holds the control character \\x85",
        ),
        ({"customFields": {"a": 1, "b\ud800": 2}}, "column customFields: holds a lone surrogate"),
        ({"customFields": {"n": 2**64}}, f"column customFields: the number {2**64} is too large"),
        ({"customFields": {"n": -(2**63) - 1}}, "column customFields: the number"),
        ({"customFields": {"x": float("inf")}}, "column customFields: inf is not a JSON number"),
        ({"customFields": {"x": float("nan")}}, "column customFields: nan is not a JSON number"),
    ],
)
def test_a_value_that_cannot_be_sent_is_named_beside_values_that_can(
    fields: dict[str, object], message: str
) -> None:
    """Every value of a row is looked at, the last of several as much as the first."""
    with pytest.raises(ValidationError, match=re.escape(message)):
        LeadUpdate.model_validate({"id": "lead1", "firstName": "Ann", **fields})


#: Text with what may not be sent (controls, C1, lone surrogates) beside what may.
_TEXT = st.text(st.sampled_from("a\t\x00\x1f\x7f\x85\x9f\xa0\ud800\udfff\u00e9") | st.characters(),
                max_size=4)  # fmt: skip
_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**65), max_value=2**65),
    st.floats(),
    _TEXT,
)


@given(
    texts=st.lists(_TEXT, max_size=3),
    tags=st.none() | st.lists(_TEXT, max_size=3).map(tuple),
    custom=st.none() | st.dictionaries(_TEXT, _VALUES, max_size=3),
)
def test_the_quick_look_passes_only_values_every_check_passes(
    texts: list[str], tags: tuple[str, ...] | None, custom: dict[str, Any] | None
) -> None:
    """`_plain` (one search over a row's text) never lets through what `_unsendable`, value by
    value, refuses."""
    refused = any(_unsendable(text) for text in [*texts, *(tags or ())]) or any(
        _unsendable(key) or _unsendable(value) for key, value in (custom or {}).items()
    )
    if _plain(list(texts), tags, custom):
        assert not refused

"""`ColumnMap` (`inputs/schema.py`): of two entries for one header, whatever their case, the later
wins, as a `--map` flag over a job file's entry (which comes first)."""

from __future__ import annotations

from bulk_updater.inputs import ColumnMap
from bulk_updater.inputs.schema import DROP


def test_the_later_entry_for_a_header_wins_whatever_its_case() -> None:
    mapping = ColumnMap.parse(["Lead ID=-", "lead id=id", "Email=email", "EMAIL=-"])
    assert str(mapping.get("Lead ID")) == "id"
    assert mapping.get("Email") is DROP
    assert list(mapping.entries) == ["lead id", "EMAIL"]


def test_a_header_given_three_times_takes_the_last() -> None:
    mapping = ColumnMap.parse(["a=id", "A=email", "a=phone"])
    assert str(mapping.get("A")) == "phone"
    assert mapping.describe() == "a=phone"


def test_the_later_entry_takes_its_type_or_none() -> None:
    mapping = ColumnMap.parse(["Size=customFields.size:number", "SIZE=customFields.size"])
    assert mapping.type_of("Size") is None
    mapping = ColumnMap({"Size": "customFields.size", "size ": "customFields.size:integer"})
    assert mapping.type_of("SIZE") == "integer"

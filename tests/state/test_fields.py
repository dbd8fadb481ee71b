"""What a row sets and what a lead holds, compared key by key (`bulk_updater.state.fields`)."""

from __future__ import annotations

from bulk_updater import LeadUpdate
from bulk_updater.state import UNKNOWN, apply, flatten, holds, unknown
from bulk_updater.state.fields import decode, encode


def test_a_row_is_flat_text_fields_the_tag_list_and_each_custom_field() -> None:
    update = LeadUpdate(
        id="a", jobTitle="CTO", tags=("vip",), customFields={"tier": "gold", "n": 3}
    )
    assert flatten(update) == {
        "jobTitle": "CTO",
        "tags": ["vip"],
        "customFields.tier": "gold",
        "customFields.n": 3,
    }


def test_holds_needs_every_value_and_nothing_else() -> None:
    known = {"jobTitle": "CTO", "tags": ["vip", "smb"], "customFields.tier": "gold", "city": "Oslo"}
    assert holds(known, {"jobTitle": "CTO", "customFields.tier": "gold"})
    assert not holds(known, {"jobTitle": "CTO", "customFields.tier": "silver"})
    assert not holds(known, {"customFields.other": "gold"})
    assert not holds(known, {"tags": ["smb", "vip"]})  # a list is replaced whole, order included
    assert not holds(None, {"jobTitle": "CTO"})
    assert not holds({}, {"jobTitle": "CTO"})


def test_json_values_of_different_types_are_different() -> None:
    assert not holds({"customFields.x": 1}, {"customFields.x": True})
    assert not holds({"customFields.x": 1}, {"customFields.x": 1.0})
    assert not holds({"customFields.x": "1"}, {"customFields.x": 1})
    assert holds({"customFields.x": None}, {"customFields.x": None})
    assert not holds({}, {"customFields.x": None})  # null is a value, not "not known"


def test_apply_sets_values_and_forgets_unknown_ones() -> None:
    known = {"jobTitle": "CTO", "customFields.a": "1"}
    assert apply(known, {"customFields.b": "2"}) == {**known, "customFields.b": "2"}
    assert apply(known, unknown(["jobTitle", "city"])) == {"customFields.a": "1"}
    assert apply(None, None) == {}
    assert known == {"jobTitle": "CTO", "customFields.a": "1"}  # a new dict, the old one kept
    assert repr(UNKNOWN) == "UNKNOWN"


def test_the_stored_form_round_trips_and_is_canonical() -> None:
    fields = {"tags": ["b", "a"], "customFields.n": 1.5, "jobTitle": "é"}
    assert decode(encode(fields)) == fields
    assert encode(fields) == encode(dict(reversed(fields.items())))


def test_a_damaged_entry_reads_as_none() -> None:
    """What `UPDATE leads SET fields='oops'` (or any other edit) may leave: never an error."""
    for damaged in (b"[1, 2]", b"oops", "oops", b"", b"\xff", 5, 1.5, None, b'"x"', b"{"):
        assert decode(damaged) is None, damaged
    assert decode('{"city": "Oslo"}') == {"city": "Oslo"}

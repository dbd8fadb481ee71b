"""What each header means on the page, how that was found, and the command line shown."""

from __future__ import annotations

import json
from pathlib import Path

from bulk_updater.ui.mapping import Remembered, choose, command_line, needs_decision


def test_each_header_says_how_its_field_was_found() -> None:
    header = ["id", "First Name", "Lead Email", "Owner", "Region"]
    choices = choose(header, chosen={"Region": "customFields.Region"}, remembered={})
    found = [(c.header, c.field, c.how) for c in choices]
    assert found == [
        ("id", "id", "exact"),
        ("First Name", "firstName", "normalised"),
        ("Lead Email", "email", "suggested"),  # a field the header names, to confirm
        ("Owner", "-", "unknown"),  # near `phone` by its letters: not put forward
        ("Region", "customFields.Region", "chosen"),
    ]
    assert needs_decision(choices)
    assert not needs_decision(choose(["id", "city"], {}, {}))


def test_a_mapping_is_remembered_per_set_of_headers_whatever_their_order(tmp_path: Path) -> None:
    remembered = Remembered(tmp_path / "state" / "ui-columns.json")
    remembered.save(choose(["Lead ID", "Owner"], {"Lead ID": "id", "Owner": "-"}, {}))
    assert remembered.get(["owner", "Lead ID"]) == {"Lead ID": "id", "Owner": "-"}
    assert remembered.get(["Lead ID", "Owner", "City"]) == {}  # another shape
    again = choose(["Lead ID", "Owner"], {}, remembered.get(["Lead ID", "Owner"]))
    assert [c.how for c in again] == ["remembered", "remembered"]


def test_a_damaged_memory_is_no_memory(tmp_path: Path) -> None:
    path = tmp_path / "ui-columns.json"
    path.write_text("{not json")
    remembered = Remembered(path)
    assert remembered.get(["id"]) == {}
    remembered.save(choose(["id"], {}, {}))  # and it is written anew
    assert remembered.get(["id"]) == {"id": "id"}


def test_the_command_line_has_only_the_maps_run_needs_and_quotes_them() -> None:
    choices = choose(
        ["Lead ID", "First Name", "Owner", "it's"],
        {"Lead ID": "id", "it's": "customFields.note"},
        {},
    )
    line = command_line("my export.csv", choices, "cp1252", "Leads 2026")
    assert line == (
        "bulk-updater run 'my export.csv' --map 'Lead ID=id' "
        "--map 'it'\"'\"'s=customFields.note' --ignore-unknown-columns --encoding cp1252 "
        "--sheet 'Leads 2026'"
    )
    assert "--encoding" not in command_line("a.csv", choices, "utf-8", None)


def test_a_mapping_remembered_before_the_separator_was_is_still_read(tmp_path: Path) -> None:
    remembered = Remembered(tmp_path / "ui-columns.json")
    remembered.save(choose(["id", "tags"], {}, {}), "|")
    entry = next(iter(json.loads(remembered.path.read_text()).values()))
    assert entry == {"columns": {"id": "id", "tags": "tags"}, "tags_separator": "|"}
    shape = next(iter(json.loads(remembered.path.read_text())))
    remembered.path.write_text(json.dumps({shape: {"id": "id", "tags": "tags"}}))  # the old form
    assert remembered.get(["tags", "id"]) == {"id": "id", "tags": "tags"}
    assert remembered.tags_separator(["tags", "id"]) is None

"""Rows matched by email: which rows are, the email trimmed wherever it comes from, and an email
that cannot be searched for (bad UTF-8, a control character, not an address) an `invalid` row.

`keyed` (the engine's `--match` rule) is tried here on the items the reader makes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bulk_updater import LeadUpdate
from bulk_updater.engine.emails import keyed
from bulk_updater.inputs.columns import ByEmail, Invalid, Item
from bulk_updater.inputs.values import email_problem
from tests.inputs.conftest import jsonl, read_all, write

ADDRESS = "ava@northwind.io"


def items(path: str) -> list[Item]:
    return [item for _, item in read_all(path)]


def by_email(item: Item) -> ByEmail:
    assert isinstance(item, ByEmail), item
    return item


def invalid(item: Item) -> Invalid:
    assert isinstance(item, Invalid), item
    return item


# --- C. an id column and an email column: a row with an empty id goes by its email


def test_a_row_with_an_email_and_an_empty_id_is_matched_by_email(tmp_path: Path) -> None:
    path = write(tmp_path / "in.csv", f"id,email,jobTitle\n,{ADDRESS},CEO\n  ,{ADDRESS},CTO\n")
    first, second = items(path)
    assert by_email(first).email == ADDRESS
    assert by_email(first).update.body() == {"jobTitle": "CEO"}
    assert by_email(second).update.body() == {"jobTitle": "CTO"}
    for item in (first, second):
        assert by_email(keyed(item, "email")).email == ADDRESS  # --match email
        assert keyed(item, None) is item


def test_a_row_with_neither_id_nor_email_still_says_the_id_is_empty(tmp_path: Path) -> None:
    (item,) = items(write(tmp_path / "in.csv", "id,email,jobTitle\n,,CEO\n"))
    assert "column id: is empty" in invalid(item).message


def test_a_json_row_with_an_empty_id_and_an_email_is_matched_by_email(tmp_path: Path) -> None:
    (item,) = items(jsonl(tmp_path / "in.jsonl", {"id": "", "email": ADDRESS, "city": "Oslo"}))
    assert by_email(item).email == ADDRESS


def test_match_email_names_an_empty_email_cell(tmp_path: Path) -> None:
    (item,) = items(write(tmp_path / "in.csv", "id,email,jobTitle\nlead1,,CTO\n"))
    message = invalid(keyed(item, "email")).message
    assert "email is empty" in message
    assert "fill it in" in message


def test_match_id_names_an_empty_id_cell(tmp_path: Path) -> None:
    (item,) = items(write(tmp_path / "in.csv", f"id,email,jobTitle\n,{ADDRESS},CTO\n"))
    message = invalid(keyed(item, "id")).message
    assert "id is empty" in message
    assert "fill it in" in message


# --- D. the email searched for is trimmed, whatever else the row carries


@pytest.mark.parametrize(
    "record",
    [
        {"id": "lead1", "email": f" {ADDRESS} ", "jobTitle": "Z"},
        {"email": f" {ADDRESS}\t", "jobTitle": "Z"},
    ],
)
def test_the_email_of_a_json_row_is_trimmed(tmp_path: Path, record: dict[str, str]) -> None:
    (item,) = items(jsonl(tmp_path / "in.jsonl", record))
    assert by_email(keyed(item, "email")).email == ADDRESS
    if isinstance(item, LeadUpdate):
        assert item.email == ADDRESS  # the report's label too


def test_the_email_of_a_csv_row_with_an_id_is_trimmed(tmp_path: Path) -> None:
    (item,) = items(write(tmp_path / "in.csv", f'id,email,city\nlead1," {ADDRESS} ",Oslo\n'))
    assert by_email(keyed(item, "email")).email == ADDRESS


def test_the_email_of_a_library_lead_update_is_trimmed() -> None:
    from bulk_updater.inputs.record_keys import KeyPlan
    from bulk_updater.inputs.rows import _item

    item = _item(LeadUpdate(id="lead1", email=f" {ADDRESS} ", city="Oslo"), KeyPlan())
    assert by_email(keyed(item, "email")).email == ADDRESS


# --- E. an email that will be searched for is checked first


def test_bad_utf8_in_an_email_makes_the_row_invalid(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(b"email,jobTitle\nj\xf6rg@x.com,CTO\n" + ADDRESS.encode() + b",CEO\n")
    bad, good = items(str(path))  # read without the whole-file check, as standard input is
    assert "column email: not valid UTF-8" in invalid(bad).message
    assert by_email(good).email == ADDRESS


def test_bad_utf8_in_an_email_label_makes_the_row_invalid(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(b"id,email,jobTitle\nlead1,j\xf6rg@x.com,CTO\n")
    (bad,) = items(str(path))
    assert "column email: not valid UTF-8" in invalid(bad).message


@pytest.mark.parametrize("email", [f"{ADDRESS}\x01", "a\x00b@x.com", "ava\x9b@northwind.io"])
def test_a_control_character_in_an_email_to_search_makes_the_row_invalid(
    tmp_path: Path, email: str
) -> None:
    record = {"email": email, "city": "Oslo"}
    (alone,) = items(jsonl(tmp_path / "a.jsonl", record))
    assert "control character" in invalid(alone).message
    (beside,) = items(jsonl(tmp_path / "b.jsonl", {"id": "lead1", **record}))
    assert "control character" in invalid(keyed(beside, "email")).message


def test_a_control_character_in_an_email_label_makes_the_row_invalid(tmp_path: Path) -> None:
    (item,) = items(write(tmp_path / "in.csv", "id,email,city\nlead1,a\x01b@x.com,Oslo\n"))
    assert "column email: holds the control character \\x01" in invalid(item).message


def test_match_email_refuses_a_label_that_is_no_address(tmp_path: Path) -> None:
    (item,) = items(write(tmp_path / "in.csv", "id,email,city\nlead1,Ann Smith,Oslo\n"))
    assert isinstance(item, LeadUpdate)  # a label: fine while matching by id
    assert "is not an email address" in invalid(keyed(item, "email")).message


def test_a_json_email_that_is_no_text_is_a_label_not_an_address(tmp_path: Path) -> None:
    (item,) = items(jsonl(tmp_path / "in.jsonl", {"id": "lead1", "email": 5, "city": "Oslo"}))
    assert isinstance(item, LeadUpdate)
    assert "is not an email address" in invalid(keyed(item, "email")).message
    assert json.dumps(item.email) == '"5"'


# --- F. only ASCII spaces are trimmed: any other character that shows as nothing is named


@pytest.mark.parametrize(
    ("email", "named"),
    [
        (f"{ADDRESS}\x1f", "the control character \\x1f"),  # `str.strip()` would drop it
        (f"\x1c{ADDRESS}", "the control character \\x1c"),
        (
            f"{ADDRESS}\u00a0",
            "the invisible character U+00A0 (no-break space), which is not trimmed",
        ),
        (f"\u3000{ADDRESS}", "the invisible character U+3000 (ideographic space)"),
        (f"{ADDRESS}\u2028", "the invisible character U+2028 (line separator)"),
        ("ava\u200b@northwind.io", "the invisible character U+200B (zero width space)"),
        (f"\ufeff{ADDRESS}", "the invisible character U+FEFF (zero width no-break space)"),
        (f"{ADDRESS}\u202e", "the invisible character U+202E (right-to-left override)"),
    ],
)
def test_an_invisible_character_in_or_around_an_email_makes_the_row_invalid(
    tmp_path: Path, email: str, named: str
) -> None:
    """Trimmed, `sam@x.com\u00a0` would go to the lead `sam@x.com`, another lead to the API."""
    (from_json,) = items(jsonl(tmp_path / "in.jsonl", {"email": email, "city": "Oslo"}))
    (from_csv,) = items(write(tmp_path / "in.csv", f"email,city\n{email},Oslo\n"))
    (beside,) = items(jsonl(tmp_path / "b.jsonl", {"id": "lead1", "email": email, "city": "x"}))
    for item in (from_json, from_csv, keyed(beside, "email")):
        message = invalid(item).message
        assert message.startswith(f"column email: holds {named}"), message
        assert message.endswith("; remove it")


def test_ascii_spaces_around_an_email_are_trimmed(tmp_path: Path) -> None:
    (item,) = items(
        jsonl(tmp_path / "in.jsonl", {"email": f" \t\r\n\f\v{ADDRESS} \t", "city": "Oslo"})
    )
    assert by_email(item).email == ADDRESS


@given(
    st.text(
        st.sampled_from("a@.\t\n\r\x00\x1f\x7f\x85\xa0\u200b\ud800\udcff\u00e9 ") | st.characters()
    )
)
def test_an_email_beside_an_id_is_refused_for_controls_and_bad_utf8_only(email: str) -> None:
    """As a label (the row has an id), an email may be anything but a control character other
    than tab and line breaks, or a surrogate (bad UTF-8)."""
    refused = any(
        "\ud800" <= c <= "\udfff" or (c <= "\x1f" and c not in "\t\n\r") or "\x7f" <= c <= "\x9f"
        for c in email
    )
    assert (email_problem(email, address=False) is not None) == refused

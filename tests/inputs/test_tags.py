"""A `tags` cell is a list: split by `;` (or `--tags-separator`), a JSON array, or Mailchimp's
quoted list; a cell holding another likely separator is never sent as one tag."""

from __future__ import annotations

from pathlib import Path

import pytest

from bulk_updater import ConfigError, Source
from bulk_updater.inputs.tags import parse_tags
from tests.inputs.conftest import only_invalid, only_update, write

LEAD = "665d4e5f6a7b8c9d0e1f2a3b"


@pytest.mark.parametrize(
    ("cell", "separator", "tags"),
    [
        ("vip;enterprise", ";", ["vip", "enterprise"]),
        (" vip ; ; enterprise ", ";", ["vip", "enterprise"]),
        ("vip, enterprise", ",", ["vip", "enterprise"]),
        ("vip|enterprise", "|", ["vip", "enterprise"]),
        ("vip\tenterprise", "\t", ["vip", "enterprise"]),
        ('"Customer","VIP"', ";", ["Customer", "VIP"]),  # Mailchimp's TAGS
        ('"Customer", "VIP, Gold"', ";", ["Customer", "VIP, Gold"]),
        ('"Customer"', "|", ["Customer"]),
        ('"Customer";"VIP"', ";", ["Customer", "VIP"]),  # a quoted list separated by `;`
        ('"Customer";"VIP"', ",", ["Customer", "VIP"]),
        ('"Customer" | "VIP"', ";", ["Customer", "VIP"]),
        ('"Customer" "VIP"', ";", ["Customer", "VIP"]),
        ('"Customer"\n"VIP"', ";", ["Customer", "VIP"]),
        ("vip\nenterprise", ";", ["vip", "enterprise"]),  # Alt+Enter in an Excel cell
        ("vip\r\nenterprise\r", ";", ["vip", "enterprise"]),
        ("vip;gold\nenterprise", ";", ["vip", "gold", "enterprise"]),
        ("vip\nenterprise", ",", ["vip", "enterprise"]),
        ('["a, b", "c"]', ";", ["a, b", "c"]),  # JSON says where each tag ends
        ("[]", ";", []),
        ('["vip", ""]', ";", ["vip"]),  # an empty tag is none, as in `vip;;`
        ('["vip", " ", "\u200b"]', ";", ["vip"]),
        ("vip;\u200b;\u00a0;gold", ";", ["vip", "gold"]),
        ('"vip","\ufeff"', ";", ["vip"]),
    ],
)
def test_a_tags_cell_is_a_list(cell: str, separator: str, tags: list[str]) -> None:
    assert parse_tags(cell, separator) == tags


@pytest.mark.parametrize("cell", ['[""]', '["\u200b", " "]', "\u200b;\u2060"])
def test_a_list_of_no_tag_is_invalid_never_a_cleared_list(cell: str) -> None:
    assert parse_tags(cell, ";") == f"column tags: no tag in {cell!r}"


@pytest.mark.parametrize(
    ("cell", "separator", "other"),
    [
        ("vip, enterprise", ";", ","),
        ("vip|enterprise", ";", "|"),
        ("a;b", ",", ";"),
        ("a; b, c", ";", ","),
        ("vip, gold\nenterprise", ";", ","),
        ('"vip\ngold", "enterprise"', ";", ","),  # a quoted tag never holds a line break
    ],
)
def test_another_separator_is_never_silently_one_tag(cell: str, separator: str, other: str) -> None:
    problem = parse_tags(cell, separator)
    assert isinstance(problem, str)
    assert f"holds `{other}`" in problem
    assert f"--tags-separator '{other}'" in problem


def test_google_sheets_tags_are_invalid_rows_counted_once_with_the_flag(tmp_path: Path) -> None:
    path = write(tmp_path / "sheet.csv", (
        f"id,jobTitle,tags\n{LEAD},CTO,\"vip, enterprise\"\n{LEAD},CFO,vip\n"
        f"{LEAD},CEO,\"a, b\"\n"
    ))  # fmt: skip
    source = Source(path)
    first, second, third = list(source)
    assert "--tags-separator ','" in only_invalid(first.item).message
    assert only_update(second.item).tags == ("vip",)
    assert "--tags-separator" in only_invalid(third.item).message
    (note,) = source.notes()
    assert note.startswith("2 tags cells hold another separator than `;`")
    assert "line 2: 'vip, enterprise'" in note
    assert "--tags-separator ','" in note


def test_the_chosen_separator_reads_them_as_lists(tmp_path: Path) -> None:
    path = write(tmp_path / "sheet.csv", f'id,tags\n{LEAD},"vip, enterprise"\n')
    source = Source(path, tags_separator="comma")
    (row,) = list(source)
    assert only_update(row.item).tags == ("vip", "enterprise")
    assert source.notes() == []
    assert source.options()["tags_separator"] == ","


def test_mailchimp_tags_are_read_as_the_list_they_are(tmp_path: Path) -> None:
    path = write(tmp_path / "members.csv", (
        '"Email Address","First Name",TAGS\n'
        '"ann@x.com","Ann","""Customer"",""VIP"""\n'
    ))  # fmt: skip
    (row,) = list(Source(path, columns={"Email Address": "email", "TAGS": "tags"}))
    assert row.item.update.tags == ("Customer", "VIP")  # type: ignore[union-attr]


@pytest.mark.parametrize("separator", ["ab", "", "x", '"'])
def test_a_separator_must_be_one_character(tmp_path: Path, separator: str) -> None:
    path = write(tmp_path / "s.csv", f"id,tags\n{LEAD},a\n")
    with pytest.raises(ConfigError, match="--tags-separator"):
        Source(path, tags_separator=separator)


def test_pipedrive_labels_with_a_comma_separator(tmp_path: Path) -> None:
    path = write(tmp_path / "people.csv", (
        "Person - ID,Person - Name,Person - Labels\n"
        f'{LEAD},Ann,"VIP, Hot lead"\n'
    ))  # fmt: skip
    columns = {"Person - ID": "id", "Person - Name": "firstName", "Person - Labels": "tags"}
    (row,) = list(Source(path, columns=columns, tags_separator=","))
    assert only_update(row.item).tags == ("VIP", "Hot lead")


def test_tags_on_lines_of_one_cell_are_a_list(tmp_path: Path) -> None:
    path = write(tmp_path / "sheet.csv", f'id,firstName,tags\n{LEAD},Ann,"vip\nenterprise"\n')
    (row,) = list(Source(path))
    assert only_update(row.item).tags == ("vip", "enterprise")

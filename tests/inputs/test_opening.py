"""Which input a path names (`inputs/opening.py`): the file opened, its format, the delimiter."""

from __future__ import annotations

from pathlib import Path

import pytest

from bulk_updater import ConfigError, InputError
from bulk_updater.inputs.opening import delimiter_of, format_of, open_input

ZIP_HEAD = b"PK\x03\x04" + b"\x00" * 26


@pytest.mark.parametrize(
    ("name", "expected"),
    [("a.csv", "csv"), ("a.TSV", "csv"), ("a.txt", "csv"), ("a.jsonl", "jsonl"),
     ("a.ndjson", "jsonl"), ("a.xlsx", "xlsx"), ("a.xlsm", "xlsx")],
)  # fmt: skip
def test_the_format_comes_from_the_suffix(name: str, expected: str) -> None:
    assert format_of(name, b"id,city\n") == expected


def test_a_zip_is_a_workbook_whatever_its_name() -> None:
    assert format_of("export.csv", ZIP_HEAD) == "xlsx"


def test_no_format_to_tell_says_what_to_pass() -> None:
    with pytest.raises(ConfigError, match="cannot tell the format; name it"):
        format_of("leads.dat", b"id\n")
    with pytest.raises(ConfigError, match="standard input needs --format"):
        format_of("-", b"id\n")


@pytest.mark.parametrize(
    ("given", "expected"),
    [(None, None), (";", ";"), ("tab", "\t"), ("\\t", "\t"), ("PIPE", "|"), ("comma", ",")],
)
def test_delimiter_names(given: str | None, expected: str | None) -> None:
    assert delimiter_of(given) == expected


@pytest.mark.parametrize("given", ["", ";;", '"', "\n"])
def test_a_delimiter_that_is_no_one_character_is_refused(given: str) -> None:
    with pytest.raises(ConfigError, match="give one character"):
        delimiter_of(given)


def test_a_file_opens_for_bytes(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    path.write_bytes(b"id,city\n")
    with open_input(str(path)) as raw:
        assert raw.read() == b"id,city\n"


def test_what_cannot_be_opened_is_told_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file; check the path"):
        open_input(str(tmp_path / "missing.csv"))
    with pytest.raises(InputError, match="is a folder; give the path of a CSV"):
        open_input(str(tmp_path))

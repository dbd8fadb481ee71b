"""CSV records as rows: quoting, line endings, blank lines, cell counts, broken quotes and bytes."""

from __future__ import annotations

from pathlib import Path

import pytest

from bulk_updater import Invalid, Source
from tests.inputs.conftest import only_invalid, only_update, read_all, write


@pytest.mark.parametrize("bom", [False, True])
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_csv_with_or_without_bom_and_any_line_ending(
    tmp_path: Path, bom: bool, newline: str
) -> None:
    text = newline.join(["id,firstName,city", "lead1,Ann,Paris", "lead2,Bob,"]) + newline
    rows = read_all(write(tmp_path / "in.csv", text, bom=bom))
    assert [row for row, _ in rows] == [1, 2]
    assert only_update(rows[0][1]).body() == {"firstName": "Ann", "city": "Paris"}
    assert only_update(rows[1][1]).body() == {"firstName": "Bob"}


def test_rfc4180_quoting_keeps_commas_quotes_and_newlines_inside_cells(tmp_path: Path) -> None:
    text = (
        "id,companyName,jobTitle,city\r\n"
        'lead1,"Acme, Inc.","Head of ""Growth""","line one\r\nline two"\r\n'
        'lead2,"multi\nline\nname","a\rb",""\r\n'
    )
    rows = read_all(write(tmp_path / "in.csv", text))
    assert len(rows) == 2
    assert only_update(rows[0][1]).body() == {
        "companyName": "Acme, Inc.",
        "jobTitle": 'Head of "Growth"',
        "city": "line one\r\nline two",
    }
    assert only_update(rows[1][1]).body() == {
        "companyName": "multi\nline\nname",
        "jobTitle": "a\rb",
    }


def test_non_ascii_text_is_kept(tmp_path: Path) -> None:
    text = "id,firstName,city\nlead1,Zoë,Zürich 🏔\n"
    rows = read_all(write(tmp_path / "in.csv", text))
    assert only_update(rows[0][1]).body() == {"firstName": "Zoë", "city": "Zürich 🏔"}


def test_blank_lines_are_not_records_and_rows_are_numbered_without_the_header(
    tmp_path: Path,
) -> None:
    text = "id,firstName\n\nlead1,A\n\r\n\nlead2,B\n\n"
    path = write(tmp_path / "in.csv", text)
    rows = read_all(path)
    assert [(row, item.id) for row, item in rows] == [(1, "lead1"), (2, "lead2")]
    source = Source(path)
    try:
        assert source.count() == 2
    finally:
        source.close()


def test_header_only_file_has_no_rows(tmp_path: Path) -> None:
    assert read_all(write(tmp_path / "in.csv", "id,city\n")) == []


def test_row_with_wrong_number_of_cells_is_invalid_and_reading_goes_on(tmp_path: Path) -> None:
    text = "id,firstName,city\nlead1,A\nlead2,B,C,D\nlead3,C,X\n"
    rows = read_all(write(tmp_path / "in.csv", text))
    assert [row for row, _ in rows] == [1, 2, 3]
    assert "cells" in only_invalid(rows[0][1]).message
    assert "cells" in only_invalid(rows[1][1]).message
    assert only_update(rows[2][1]).body() == {"firstName": "C", "city": "X"}


def test_bad_utf8_in_one_row_blames_that_row_only(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(b"id,firstName\nlead1,Ann\nlead2,Ren\xe9e\nlead3,Bob\n")
    rows = read_all(str(path))
    assert [row for row, _ in rows] == [1, 2, 3]
    assert "UTF-8" in only_invalid(rows[1][1]).message
    assert only_update(rows[2][1]).body() == {"firstName": "Bob"}


def test_unterminated_quote_at_end_of_file_is_an_invalid_row(tmp_path: Path) -> None:
    """A quote opened and never closed swallows the rest of the file into one cell; the row must
    be reported `invalid` (check its quotes), not sent with the rest of the file as its value."""
    text = 'id,firstName\nlead1,Ann\nlead2,"Bob\nlead3,Carl\nlead4,Dan\n'
    rows = read_all(write(tmp_path / "in.csv", text))
    assert only_update(rows[0][1]).body() == {"firstName": "Ann"}
    assert all(isinstance(item, Invalid) for _, item in rows[1:])
    assert any("quote" in item.message for _, item in rows[1:] if isinstance(item, Invalid))


def test_stray_quote_after_a_quoted_cell_does_not_swallow_the_next_row(tmp_path: Path) -> None:
    text = 'id,firstName\nlead1,"Ann"x\nlead2,Bob\n'
    rows = read_all(write(tmp_path / "in.csv", text))
    assert len(rows) == 2
    assert only_update(rows[1][1]).body() == {"firstName": "Bob"}

"""CSV records as rows: quoting, line endings, blank lines, cell counts, broken quotes and bytes."""

from __future__ import annotations

from pathlib import Path

import pytest

from bulk_updater import InputError, Invalid, LeadUpdate, Source
from tests.inputs.conftest import only_invalid, only_update, read_all, write

LEAD = "665d4e5f6a7b8c9d0e1f2a3b"


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


def test_bad_utf8_is_blamed_on_its_column_beside_good_non_ascii_text(tmp_path: Path) -> None:
    """A row is searched cell by cell only when its text holds bad UTF-8: the message names the
    column that holds it, whatever good accented text is around it, and bad bytes in a column
    left out make no row invalid."""
    path = tmp_path / "in.csv"
    path.write_bytes(
        "id,firstName,city,Notes\nlead1,Ren\u00e9e,Z\u00fcrich,ok\n".encode()
        + b"lead2,Ren\xc3\xa9e,Z\xfcrich,ok\nlead3,Bob,Oslo,caf\xe9\n"
    )
    rows = read_all(str(path), columns={"Notes": "-"})
    assert only_update(rows[0][1]).body() == {"firstName": "Ren\u00e9e", "city": "Z\u00fcrich"}
    assert only_invalid(rows[1][1]).message == "column city: not valid UTF-8 text"
    assert only_update(rows[2][1]).body() == {"firstName": "Bob", "city": "Oslo"}


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


# --- classic-Mac line ends: a bare CR ends a line as LF and CRLF do


def test_a_file_with_cr_only_line_ends_is_read_line_by_line(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes('id;firstName\rlead1;Zoë\rlead2;"two\rlines"\rlead3;Cy\r'.encode("cp1252"))
    rows = list(Source(str(path), encoding="cp1252"))
    assert [(row.number, row.line) for row in rows] == [(1, 2), (2, 3), (3, 5)]
    assert [only_update(row.item).firstName for row in rows] == ["Zoë", "two\rlines", "Cy"]
    source = Source(str(path), encoding="cp1252")
    assert source.count() == 3
    source.close()


def test_mixed_line_ends_never_merge_two_records(tmp_path: Path) -> None:
    text = "id,firstName\r\nlead1,Ann\nlead2,Bob\rlead3,Cy\r\n\rlead4,Di"
    rows = list(Source(write(tmp_path / "in.csv", text)))
    assert [(row.number, row.line) for row in rows] == [(1, 2), (2, 3), (3, 4), (4, 6)]
    assert [only_update(row.item).firstName for row in rows] == ["Ann", "Bob", "Cy", "Di"]


def test_a_crlf_split_by_the_size_of_a_read_is_one_line_end(tmp_path: Path) -> None:
    from bulk_updater.inputs.records import CHUNK

    first = "lead1," + "x" * (CHUNK - len("lead1,") - 1)  # its CR is the last of one read
    text = f"id,city\r\n{first}\r\nlead2,y\r\n"
    rows = list(Source(write(tmp_path / "in.csv", text)))
    assert [(row.number, row.line) for row in rows] == [(1, 2), (2, 3)]
    assert only_update(rows[0].item).city == first[6:]


def test_a_bare_cr_inside_quotes_stays_in_the_cell(tmp_path: Path) -> None:
    rows = list(Source(write(tmp_path / "in.csv", 'id,city\nlead1,"Old\rTown"\nlead2,x\n')))
    assert only_update(rows[0].item).city == "Old\rTown"
    assert [row.line for row in rows] == [2, 4]  # the CR counts as a line end, as in an editor


def test_a_bad_byte_in_a_cr_only_file_is_blamed_on_its_line(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(b"id,city\rlead1,a\r\nlead2,b\rlead3,Z\xf6e\r")
    source = Source(str(path))
    with pytest.raises(InputError, match="line 4 is not UTF-8"):
        source.check()
    source.close()


def test_the_delimiter_splits_the_header_and_its_rows_alike(tmp_path: Path) -> None:
    # The header alone holds as many commas as semicolons (more, with a third): its rows tell.
    for header in ("id;Umsatz (EUR, netto);Stadt", "id;Umsatz (EUR, netto, 2025);Stadt"):
        text = f"{header}\n{LEAD};1500;Berlin\n{LEAD};2500;Köln\n"
        columns = {header.split(";")[1]: "-", "Stadt": "city"}
        source = Source(write(tmp_path / "de.csv", text), columns=columns)
        (first, _) = [row.item for row in source]
        assert source.delimiter == ";"
        assert only_update(first).city == "Berlin"
    with Source(write(tmp_path / "comma.csv", f"id,city\n{LEAD},Oslo\n")) as comma:
        assert comma.delimiter == ","  # one delimiter in the header: as before
    # Rows that split like the header by no delimiter: the header's most frequent, as before.
    text = f"id,city;note\n{LEAD},Oslo\n{LEAD},Rome,x;y\n"
    with Source(write(tmp_path / "ragged.csv", text), ignore_unknown_columns=True) as ragged:
        assert ragged.delimiter == ","


@pytest.mark.parametrize(
    ("text", "columns"),
    [
        (f"id;Notes (a, b, c);City\n{LEAD};x, y, z;Berlin\n", {"Notes (a, b, c)": "-"}),
        (f"id;Umsatz (EUR, netto)\n{LEAD};1500,50\n", {"Umsatz (EUR, netto)": "-"}),
        (f"Lead;Notes (a, b)\n{LEAD};x, y\n", {"Lead": "id", "Notes (a, b)": "-"}),  # mapped
    ],
    ids=["notes", "decimal-comma", "mapped"],
)
def test_of_delimiters_that_split_the_rows_alike_the_one_naming_known_columns_is_taken(
    tmp_path: Path, text: str, columns: dict[str, str]
) -> None:
    """A `;` export whose notes hold commas splits by `,` as evenly: only `;` gives the header
    names that mean something."""
    path = write(tmp_path / "de.csv", text)
    with Source(path, columns=columns) as source:
        assert source.delimiter == ";"
        [row] = list(source)
        assert isinstance(row.item, LeadUpdate | Invalid)
        assert row.item.id == LEAD  # the id column, split from the note by `;`
    with pytest.raises(InputError) as unknown:  # the note, refused: nothing about delimiters
        Source(path, columns={"Lead": "id"})
    assert "unknown column `" in str(unknown.value)
    assert "--delimiter" not in str(unknown.value)


def test_a_header_cell_holding_another_delimiter_names_the_delimiter_flag(tmp_path: Path) -> None:
    # Both split in 3, and neither gives a known name: a tie
    text = f"Key;Notes (a, b, c);Town\n{LEAD};x, y, z;Berlin\n"
    with pytest.raises(InputError) as split:
        Source(write(tmp_path / "notes.csv", text))
    assert str(split.value).startswith(
        f"{tmp_path / 'notes.csv'}: 3 problems, to fix before any row is sent: 1) the file was "
        "read with the delimiter `,`, found from its first lines; if it is `;`-separated, pass "
        "--delimiter ';'; 2) unknown columns `Key;Notes (a`"
    )
    quoted = f'id,city,"Notes; a"\n{LEAD},Oslo,x\n'  # in quotes, `;` is the name's own
    sure = f"id;Notes (a, b);City\n{LEAD};x;Oslo\n"  # only `;` splits the row as the header
    with pytest.raises(InputError) as confirmed:
        Source(write(tmp_path / "sure.csv", sure))
    assert "--delimiter" not in str(confirmed.value)
    with pytest.raises(InputError) as unknown:
        Source(write(tmp_path / "quoted.csv", quoted))
    assert "--delimiter" not in str(unknown.value)
    with pytest.raises(InputError) as given:  # a delimiter given is not second-guessed
        Source(write(tmp_path / "given.csv", text), delimiter=",")
    assert "--delimiter" not in str(given.value)

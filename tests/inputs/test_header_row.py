"""`--header-row N`: title rows above the header, in CSV and in a workbook."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest

from bulk_updater import ConfigError, InputError, Source
from tests.inputs.conftest import only_update, write

LEAD = "665d4e5f6a7b8c9d0e1f2a3b"


def test_a_csv_with_title_lines_above_its_header(tmp_path: Path) -> None:
    text = f"Leads export 2026-12-01\nOwner: Ann; Region: EMEA\n\nid;city\n{LEAD};Oslo\n"
    source = Source(write(tmp_path / "titled.csv", text), header_row=4)
    assert source.delimiter == ";"  # found from the header line, not the title
    (row,) = list(source)
    assert only_update(row.item).city == "Oslo"
    assert row.line == 5
    assert source.count() == 1
    assert source.options()["header_row"] == 4


def test_a_workbook_with_a_title_row(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in (["Q4 leads"], [], ["id", "city"], [LEAD, "Rome"]):
        sheet.append(row)
    book.save(tmp_path / "titled.xlsx")
    (row,) = list(Source(tmp_path / "titled.xlsx", header_row=3))
    assert only_update(row.item).city == "Rome"
    assert row.line == 4
    with pytest.raises(InputError, match="row 2 of the sheet `Sheet` is empty; --header-row 2"):
        Source(tmp_path / "titled.xlsx", header_row=2)


@pytest.mark.parametrize(
    ("header_row", "message"),
    [(3, "line 3 is empty; --header-row 3"), (9, "has no line 9")],
)
def test_a_header_row_that_is_not_one(tmp_path: Path, header_row: int, message: str) -> None:
    path = write(tmp_path / "t.csv", f"Title\nid,city\n\n{LEAD},Oslo\n")
    with pytest.raises(InputError, match=message):
        Source(path, header_row=header_row)


def test_a_header_row_is_a_line_number(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--header-row 0"):
        Source(write(tmp_path / "t.csv", "id,city\n"), header_row=0)


@pytest.mark.parametrize("line", [0, 1_000_001, 99_999_999_999])
def test_a_header_row_out_of_range_says_the_range(tmp_path: Path, line: int) -> None:
    with pytest.raises(ConfigError, match=f"--header-row {line}: give a line number from 1 to"):
        Source(write(tmp_path / "t.csv", "id,city\n"), header_row=line)


def test_messages_about_the_header_name_its_line(tmp_path: Path) -> None:
    text = "Leads export\n\nfirstName,city\nAnn,Oslo\n"
    with pytest.raises(InputError, match="the header, line 3, must name the columns"):
        Source(write(tmp_path / "t.csv", text), header_row=3)
    path = tmp_path / "latin.csv"
    path.write_bytes(b"sep=,\nid,R\xe9gion\n")
    with pytest.raises(InputError, match=r"latin\.csv: line 2 is not UTF-8 text"):
        Source(str(path))


def test_a_header_row_that_is_now_a_row_of_data_names_the_header_near_it(tmp_path: Path) -> None:
    # Last night's export had a filter line more: its job's header row is tonight's first row.
    text = f"Leads export 2026-12-02\n\nid,First Name,City\n{LEAD},Ava,Austin\n{LEAD},Bo,Oslo\n"
    path = write(tmp_path / "night.csv", text)
    with pytest.raises(InputError) as fewer:
        Source(path, header_row=4, ignore_unknown_columns=True)
    assert str(fewer.value) == (
        f"{path}: line 4 looks like a row of data (it holds the lead id `{LEAD}`), not the "
        "header: the header looks to be line 3 (`id`, `First Name`, `City`); pass --header-row 3 "
        "(in a job: header-row = 3)"
    )
    more = f"Title\n\n{LEAD},Ava,Austin\nid,First Name,City\n{LEAD},Bo,Oslo\n"  # and below
    with pytest.raises(InputError, match="the header looks to be line 4 "):
        Source(write(tmp_path / "more.csv", more), header_row=3)
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in (["Leads"], ["id", "city"], [LEAD, "Oslo"]):
        sheet.append(row)
    book.save(tmp_path / "night.xlsx")
    with pytest.raises(InputError, match=r"the header looks to be line 2 .*--header-row 2"):
        Source(tmp_path / "night.xlsx", header_row=3)

"""`.xlsx` input: the first sheet or a named one, read streaming, cells as the text a person sees.
Workbooks are made here with openpyxl, the library that reads them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from bulk_updater import InputError, Source
from tests.inputs.conftest import only_invalid, only_update

LEAD = "665d4e5f6a7b8c9d0e1f2a3b"


def workbook(path: Path, rows: list[list[Any]], *, sheets: dict[str, list[list[Any]]] | None = None,
             formats: dict[str, str] | None = None) -> Path:  # fmt: skip
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Leads"
    for row in rows:
        sheet.append(row)
    for cell, number_format in (formats or {}).items():
        sheet[cell].number_format = number_format
    for title, more in (sheets or {}).items():
        other = book.create_sheet(title)
        for row in more:
            other.append(row)
    book.save(path)
    return path


def test_typed_cells_become_the_text_a_person_sees(tmp_path: Path) -> None:
    path = workbook(tmp_path / "export.xlsx", [
        ["Lead ID", "Phone Number", "Score", "Signed Up", "Last Call", "VIP", "ZIP", "Notes"],
        [LEAD, 4155550100, 12.5, dt.date(2025, 6, 15), dt.datetime(2025, 6, 15, 10, 30),
         True, 2134, None],
    ], formats={"G2": "00000"})  # fmt: skip
    columns = {"Lead ID": "id", "Phone Number": "phone", "Score": "customFields.score",
               "Signed Up": "customFields.signed", "Last Call": "customFields.call",
               "VIP": "customFields.vip", "ZIP": "customFields.zip",
               "Notes": "customFields.notes"}  # fmt: skip
    (row,) = list(Source(path, columns=columns))
    update = only_update(row.item)
    assert update.phone == "4155550100"  # not 4155550100.0
    assert update.customFields == {
        "score": "12.5",
        "signed": "2025-06-15",
        "call": "2025-06-15T10:30:00",
        "vip": "TRUE",
        "zip": "02134",
    }
    assert row.line == 2  # the sheet's row number
    assert row.raw == (LEAD, "4155550100", "12.5", "2025-06-15", "2025-06-15T10:30:00", "TRUE",
                       "02134", "")  # fmt: skip


def test_the_first_sheet_or_a_named_one(tmp_path: Path) -> None:
    path = workbook(
        tmp_path / "two.xlsx",
        [["id", "city"], [LEAD, "Oslo"]],
        sheets={"Fixes": [["id", "city"], [LEAD, "Rome"]]},
    )
    (first,) = list(Source(path))
    assert only_update(first.item).city == "Oslo"
    (named,) = list(Source(path, sheet="fixes"))  # as Excel, without case
    assert only_update(named.item).city == "Rome"
    with pytest.raises(InputError, match="no sheet named `Nope`; --sheet one of `Leads`, `Fixes`"):
        Source(path, sheet="Nope")


def test_debris_and_bad_rows_in_a_sheet(tmp_path: Path) -> None:
    path = workbook(tmp_path / "d.xlsx", [
        ["id", "jobTitle", None, None],
        [f" {LEAD} ", "CFO", None, None],
        [None, None, None, None],
        ["../x", "CTO"],
    ])  # fmt: skip
    rows = list(Source(path))
    assert [(row.number, row.line) for row in rows] == [(1, 2), (2, 4)]
    assert only_update(rows[0].item).id == LEAD
    assert "column id" in only_invalid(rows[1].item).message


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"id,city\nlead1,Oslo\n", "not an Excel workbook; if it is CSV, name it .csv"),
        (b"PK\x03\x04\x14\x00\x06\x00", "damaged or incomplete"),
        (bytes.fromhex("D0CF11E0A1B11AE1") + b"\x00" * 100, "Excel 97-2003 (.xls)"),
    ],
)
def test_a_file_that_is_not_a_workbook(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "in.xlsx"
    path.write_bytes(data)
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Source(path)


def test_a_workbook_named_csv_is_still_read_as_one(tmp_path: Path) -> None:
    path = workbook(tmp_path / "renamed.xlsx", [["id", "city"], [LEAD, "Oslo"]])
    renamed = path.rename(tmp_path / "renamed.csv")
    source = Source(renamed)
    assert source.format == "xlsx"
    (row,) = list(source)
    assert only_update(row.item).city == "Oslo"


def test_an_empty_sheet_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is empty"):
        Source(workbook(tmp_path / "empty.xlsx", []))


def test_counting_uses_the_sheet_size(tmp_path: Path) -> None:
    source = Source(
        workbook(tmp_path / "n.xlsx", [["id", "city"]] + [[LEAD, str(i)] for i in range(9)])
    )
    assert source.count() == 9
    assert source.options()["sheet"] == "Leads"
    source.close()

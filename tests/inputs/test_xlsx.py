"""`.xlsx` input: the first sheet or a named one, read streaming, cells as the text a person sees.
Workbooks are made here with openpyxl, the library that reads them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from bulk_updater import ConfigError, InputError, Source
from bulk_updater.inputs import Hidden
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


def test_cells_become_the_text_a_person_sees_and_custom_fields_keep_their_type(
    tmp_path: Path,
) -> None:
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
        "score": 12.5,  # a number cell stays a number
        "signed": "2025-06-15",
        "call": "2025-06-15T10:30:00",
        "vip": True,
        "zip": "02134",  # a ZIP code is the text shown, not the number 2134
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


def test_a_first_sheet_with_no_header_names_the_sheet_read_and_the_others(tmp_path: Path) -> None:
    summary = [["Q3 lead cleanup"], [], ["Total", 2]]
    path = workbook(tmp_path / "multi.xlsx", summary, sheets={"Q3 Leads": [["id"], [LEAD]]})
    with pytest.raises(InputError) as one:
        Source(path)
    assert str(one.value) == (
        f"{path}: the first line of the sheet `Leads`, `Q3 lead cleanup`, names no column the "
        "tool knows, nor does a row below it: the workbook also has `Q3 Leads`; pass --sheet "
        '"Q3 Leads"'
    )
    path = workbook(tmp_path / "three.xlsx", [["Notes", "Owner"]],
                    sheets={"A": [["id"]], "B": [["id"]]})  # fmt: skip
    with pytest.raises(InputError, match=r"also has `A`, `B`; pass --sheet NAME \(one of them\)"):
        Source(path)
    with pytest.raises(InputError, match="the header looks to be line 3"):  # the title is named
        Source(workbook(tmp_path / "title.xlsx", [["Leads"], [], ["id", "city"]],
                        sheets={"Other": [["x"]]}))  # fmt: skip


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


def test_a_hand_made_workbook_keeps_numbers_and_shows_formatted_cells(tmp_path: Path) -> None:
    path = workbook(tmp_path / "hand-made.xlsx", [
        ["id", "phone", "Employees", "Revenue", "Churn", "Active", "Company Name", "SSN"],
        [LEAD, 4155553898, 1201, 1234567.5, 0.15, False, 1201, 123456789],
    ], formats={"B2": "[<=9999999]###-####;(###) ###-####", "C2": "#,##0",
                "D2": '"$"#,##0.00', "E2": "0%", "G2": "#,##0", "H2": "000-00-0000"})  # fmt: skip
    columns = {"Employees": "customFields.employees", "Revenue": "customFields.revenue",
               "Churn": "customFields.churn", "Active": "customFields.active",
               "SSN": "customFields.ssn"}  # fmt: skip
    (row,) = list(Source(path, columns=columns))
    update = only_update(row.item)
    assert update.phone == "(415) 555-3898"  # Excel's phone format, as shown
    assert update.companyName == "1,201"  # a text field: the text shown
    assert update.customFields == {
        "employees": 1201,
        "revenue": 1234567.5,
        "churn": 0.15,
        "active": False,
        "ssn": "123-45-6789",  # digits with dashes between: a shape, the text shown
    }
    assert row.raw is not None
    assert list(row.raw)[1:5] == ["(415) 555-3898", "1,201", "$1,234,567.50", "15%"]


def test_a_formula_with_no_saved_value_makes_its_row_invalid(tmp_path: Path) -> None:
    path = workbook(tmp_path / "script.xlsx", [
        ["id", "city", "Score", "Note"],
        [LEAD, "Oslo", "=1+1", "=2+2"],
        [LEAD, "Rome", 3, "=2+2"],
    ])  # fmt: skip
    first, second = list(Source(path, columns={"Score": "customFields.score", "Note": "-"}))
    message = only_invalid(first.item).message
    assert only_invalid(first.item).id == LEAD  # the report names the row
    assert first.raw == (LEAD, "Oslo", "", "")  # the rejects keep its cells, to fix
    assert message.startswith("column Score: a formula with no saved value")
    assert "open and save the file in Excel first" in message
    assert only_update(second.item).customFields == {"score": 3}  # a dropped formula: no matter


def _builtin_format(path: Path, number: int) -> None:
    """Give the workbook's custom number formats the built-in id `number` instead, as East-Asian
    Excel writes its locale's date formats: by id alone, with no `<numFmt>` entry."""
    import re
    import zipfile

    with zipfile.ZipFile(path) as package:
        parts = {name: package.read(name) for name in package.namelist()}
    styles = parts["xl/styles.xml"].decode()
    styles = re.sub(r"<numFmts[^>]*>.*?</numFmts>", "", styles, flags=re.S)
    parts["xl/styles.xml"] = re.sub(r'numFmtId="1[6-9]\d"', f'numFmtId="{number}"', styles).encode()
    with zipfile.ZipFile(path, "w") as package:
        for name, data in parts.items():
            package.writestr(name, data)


@pytest.mark.parametrize("number", [27, 31, 36, 50, 57, 58])
def test_east_asian_built_in_date_formats_are_dates(tmp_path: Path, number: int) -> None:
    path = workbook(tmp_path / "jp.xlsx", [["id", "Signed"], [LEAD, dt.date(2026, 5, 1)]],
                    formats={"B2": 'yyyy"年"m"月"d"日"'})  # fmt: skip
    _builtin_format(path, number)
    (row,) = list(Source(path, columns={"Signed": "customFields.signed"}))
    assert only_update(row.item).customFields == {"signed": "2026-05-01"}  # not 46143


def filtered(path: Path, rows: list[list[Any]], hidden: list[int]) -> Path:
    """A sheet whose rows `hidden` are hidden, as Excel's AutoFilter stores the rows it filters
    out (`<row hidden="1">`)."""
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Leads"
    for row in rows:
        sheet.append(row)
    sheet.auto_filter.ref = f"A1:C{len(rows)}"
    for number in hidden:
        sheet.row_dimensions[number].hidden = True
    book.save(path)
    return path


FILTERED = [
    ["id", "Job Title", "Status"],
    [LEAD, "CRO", "update"],
    ["15e851c739c4a57aea5c329f", "INTERN - DO NOT SEND", "skip"],
    ["1df779718796889585136f03", "CFO", "update"],
]


def test_rows_a_filter_hides_are_left_out_keeping_their_numbers(tmp_path: Path) -> None:
    path = filtered(tmp_path / "filtered.xlsx", FILTERED, hidden=[3])
    source = Source(path, columns={"Status": "-"})
    first, hidden, third = list(source)
    assert (first.number, hidden.number, third.number) == (1, 2, 3)
    assert only_update(first.item).jobTitle == "CRO"
    assert type(hidden.item) is Hidden
    assert (hidden.item.id, hidden.line) == ("15e851c739c4a57aea5c329f", 3)
    assert hidden.item.message == (
        "hidden in the sheet `Leads` (by a filter or by hand), so left out; to send it, unhide it "
        "or pass --hidden-rows send"
    )
    assert source.notes() == [
        "1 row hidden in the sheet `Leads` (by a filter or by hand) left out as `skipped` (sheet "
        "row 3); to send it, unhide it or pass --hidden-rows send"
    ]


def test_hidden_rows_are_sent_when_asked(tmp_path: Path) -> None:
    path = filtered(tmp_path / "filtered.xlsx", FILTERED, hidden=[3, 4])
    source = Source(path, columns={"Status": "-"}, hidden_rows="send")
    titles = [only_update(row.item).jobTitle for row in source]
    assert titles == ["CRO", "INTERN - DO NOT SEND", "CFO"]
    assert source.notes() == [
        "2 rows hidden in the sheet `Leads` (by a filter or by hand) are sent too, as "
        "--hidden-rows send asks (sheet rows 3, 4)"
    ]
    assert source.options()["hidden_rows"] == "send"  # --resume reads it alike
    with pytest.raises(ConfigError, match=r"--hidden-rows all: give skip or send"):
        Source(path, hidden_rows="all")


def test_hidden_columns_are_read_and_sent(tmp_path: Path) -> None:
    path = workbook(tmp_path / "cols.xlsx", [["id", "City"], [LEAD, "Oslo"]])
    book = openpyxl.load_workbook(path)
    book["Leads"].column_dimensions["B"].hidden = True
    book.save(path)
    (row,) = list(Source(path))
    assert only_update(row.item).city == "Oslo"

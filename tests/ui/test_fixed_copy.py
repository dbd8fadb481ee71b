"""The copy of a checked file that a job with fixed rows reads (`write_fixed`): every row of the
file is in it, at its own number, and a row that could not be read stays invalid."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from bulk_updater import LeadUpdate, Source
from bulk_updater.inputs import Invalid
from bulk_updater.inputs.records import MAX_RECORD
from bulk_updater.ui.check import write_fixed
from tests.ui.conftest import checked, finished, new_server, page_client, upload

UNREADABLE = '54fcaaefb10934a80be9bc7c,"Bo"b,x'  # a quote inside a cell: not CSV
FILE = (
    "id,jobTitle,tags\n"
    "3c1f33c9df3f71ffa532a3df,CEO,vip\n"
    '1df779718796889585136f03,CTO,"a,b"\n'  # a tags cell with another separator: fixable
    f"{UNREADABLE}\n"
    "3439282443faf37d544b8b80,CMO,y\n"
)


async def test_a_row_that_cannot_be_read_keeps_its_outcome_when_fixed_rows_are_sent(
    tmp_path: Path,
) -> None:
    path = tmp_path / "leads.csv"
    path.write_text(FILE, encoding="utf-8")
    async with new_server(tmp_path) as server, page_client(server) as page:
        await page.act("/api/sandbox")
        await upload(page, path, "leads.csv")
        await page.act("/api/check")
        check = (await page.until(checked))["check"]
        assert [bad["row"] for bad in check["invalid_rows"]] == [2, 3]
        await page.act("/api/fix", json={"row": 2, "cells": {"tags": "a;b"}})
        await page.act("/api/start")
        state = await page.until(finished)
        assert state["job"]["summary"]["counts"] == {"updated": 3, "invalid": 1}
        async with page.http.get(page.origin + "/api/download/report") as answer:
            report = list(csv.DictReader(io.StringIO((await answer.read()).decode("utf-8-sig"))))
        async with page.http.get(page.origin + "/api/download/rejects") as answer:
            rejects = (await answer.read()).decode("utf-8-sig").splitlines()
    assert [(r["row"], r["status"]) for r in report] == [
        ("1", "updated"),
        ("2", "updated"),
        ("3", "invalid"),
        ("4", "updated"),
    ]
    assert report[3]["id"] == "3439282443faf37d544b8b80"
    assert rejects[1].startswith(UNREADABLE + ",invalid,")


def _rows(path: Path) -> list[tuple[int, str]]:
    """Each row of `path` read back: its number and its id, or what is wrong with it."""
    with Source(path, ignore_unknown_columns=True) as source:
        return [
            (row.number, item.message if isinstance(item, Invalid) else item.id)
            for row in source
            if isinstance(item := row.item, Invalid | LeadUpdate)
        ]


@pytest.mark.parametrize(
    ("delimiter", "header"),
    [
        (",", ["id", "jobTitle"]),
        (";", ["id", "jobTitle"]),
        ("\t", ["id", "jobTitle"]),
        (";", ["id", "jobTitle", "Note, long, with, commas"]),  # more commas than `;`
    ],
    ids=["comma", "semicolon", "tab", "names-with-commas"],
)
def test_the_copy_keeps_each_row_at_its_number_in_the_files_delimiter(
    tmp_path: Path, delimiter: str, header: list[str]
) -> None:
    def line(*cells: str) -> str:
        return delimiter.join([*cells, *[""] * (len(header) - len(cells))]) + "\n"

    ids = ["3c1f33c9df3f71ffa532a3df", "1df779718796889585136f03", "3439282443faf37d544b8b80"]
    unreadable = line(ids[1], '"Bo"b')
    path = tmp_path / "in.csv"
    path.write_text(
        line(*(f'"{name}"' if "," in name else name for name in header))
        + line(ids[0], "CEO")
        + line("not an id", "CTO")
        + unreadable
        + line(ids[1], "x" * (MAX_RECORD + 1))
        + line(ids[2], "CMO"),
        encoding="utf-8",
    )
    before = _rows(path)
    assert [number for number, _ in before] == [1, 2, 3, 4, 5]
    with Source(path, ignore_unknown_columns=True) as source:
        write_fixed(source, {2: [ids[0], "CTO", *[""] * (len(header) - 2)]}, tmp_path / "copy.csv")
    with Source(tmp_path / "copy.csv", ignore_unknown_columns=True) as copy:
        assert copy.delimiter == delimiter
        assert list(copy.header or ()) == header
    after = _rows(tmp_path / "copy.csv")
    assert after == [before[0], (2, ids[0]), *before[2:]]
    assert "cannot be read as CSV" in after[2][1]
    assert "larger than 1 MiB" in after[3][1]
    text = (tmp_path / "copy.csv").read_bytes().decode("utf-8")
    assert unreadable.rstrip("\n") + "\r\n" in text  # its own text, for the rejects


def test_a_hidden_row_stays_hidden_at_its_number_in_a_workbooks_copy(tmp_path: Path) -> None:
    """The fix is below the hidden row: were the hidden row left out of the copy, the rows
    below it would be read with other numbers, and the hidden row would have no outcome."""
    import openpyxl

    ids = ["3c1f33c9df3f71ffa532a3df", "15e851c739c4a57aea5c329f", "eafe77a99c190794de2f35d5",
           "bb37b2145a52f1c55e78901f"]  # fmt: skip
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Leads"
    sheet.append(["id", "jobTitle", "tags"])
    cells = zip(ids, ["A", "HIDDEN", "C", "D"], ["vip", "vip", "a,b", "vip"], strict=True)
    for lead, title, tags in cells:
        sheet.append([lead, title, tags])
    sheet.row_dimensions[3].hidden = True  # data row 2
    book.save(tmp_path / "in.xlsx")

    def read(path: Path) -> list[tuple[int, int | None, str, str]]:
        with Source(path) as source:
            return [(row.number, row.line, type(row.item).__name__, row.item.id) for row in source]

    before = read(tmp_path / "in.xlsx")
    assert [kind for *_, kind, _ in before] == ["LeadUpdate", "Hidden", "Invalid", "LeadUpdate"]
    with Source(tmp_path / "in.xlsx") as source:
        write_fixed(source, {3: [ids[2], "C", "a;b"]}, tmp_path / "copy.xlsx")
    assert read(tmp_path / "copy.xlsx") == [
        before[0],
        before[1],
        (3, 4, "LeadUpdate", ids[2]),
        before[3],
    ]

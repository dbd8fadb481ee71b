"""The done step through the page's API: the rejects read back, fixed and sent again (only
those), a workbook's as a workbook whose numbers and booleans go out as the input's would."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import openpyxl
from pydantic import SecretStr

from bulk_updater.sandbox import DEFAULT_SANDBOX_KEY, SandboxThread
from bulk_updater.ui import Connection
from tests.ui.conftest import LEADS, checked, finished, new_server, page_client, upload

MISSING = "000000000000000000000000"  # no lead has it: its row is a reject


def _book(path: Path, rows: list[list[Any]], formats: dict[str, str]) -> Path:
    """A workbook of `rows` (the header first), each column named in `formats` in its format."""
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Leads to update"])  # a title row: the header is on row 3
    sheet.append([])
    for cells in rows:
        sheet.append(cells)
    for cell in sheet[3]:
        if cell.value in formats:
            for (below,) in sheet.iter_rows(min_row=4, min_col=cell.column, max_col=cell.column):
                below.number_format = formats[str(cell.value)]
    book.save(path)
    return path


async def _rejects(page: Any) -> dict[str, Any]:
    async with page.http.get(page.origin + "/api/rejects") as answer:
        table: dict[str, Any] = await answer.json()
    return table


async def test_the_rejects_fixed_on_the_page_are_sent_again_alone(tmp_path: Path) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text("id,city\n066091adcd648f9dab09032e,Lyon\nnot-a-lead,Paris\n")
    async with new_server(tmp_path) as server, page_client(server) as page:
        await page.act("/api/sandbox")
        await upload(page, rows, "rows.csv")
        await page.until(checked)  # nothing to decide: the check ran by itself
        await page.act("/api/start")
        await page.until(finished)
        async with page.http.get(page.origin + "/api/rejects") as answer:
            table = await answer.json()
        assert table["header"] == ["id", "city", "_status", "_message"]
        assert [row["cells"][:3] for row in table["rows"]] == [["not-a-lead", "Paris", "not_found"]]
        assert server.sandbox is not None
        before = server.sandbox.state.requests
        target = "906a04f0281c1bc2aafa0bc0"
        fixed = {"rows": {"1": {"id": target, "city": "Paris"}}}
        await page.act("/api/send-fixed", json=fixed)
        state = await page.until(lambda s: finished(s) and s["job"]["summary"] is not None)
        assert state["job"]["summary"]["counts"] == {"updated": 1}
        assert server.sandbox.state.requests == before + 1  # only the fixed row
        assert server.sandbox.state.leads[target]["city"] == "Paris"


async def test_the_rejects_of_a_workbook_are_shown_and_sent_again(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["id", "city"])
    sheet.append(["066091adcd648f9dab09032e", "Lyon"])
    sheet.append(["000000000000000000000000", "Oslo"])
    path = tmp_path / "book.xlsx"
    book.save(path)
    async with new_server(tmp_path) as server, page_client(server) as page:
        await page.act("/api/sandbox")
        await upload(page, path, "book.xlsx")
        await page.until(checked)
        await page.act("/api/start")
        state = await page.until(finished)
        assert state["job"]["has_rejects"]
        async with page.http.get(page.origin + "/api/rejects") as answer:
            table = await answer.json()
        assert [row["cells"][:3] for row in table["rows"]] == [
            ["000000000000000000000000", "Oslo", "not_found"]
        ]
        fixed = {"rows": {"1": {"id": "906a04f0281c1bc2aafa0bc0"}}}
        await page.act("/api/send-fixed", json=fixed)
        state = await page.until(lambda s: finished(s) and s["job"]["summary"] is not None)
        assert state["job"]["summary"]["counts"] == {"updated": 1}
        assert server.sandbox is not None
        assert server.sandbox.state.leads["906a04f0281c1bc2aafa0bc0"]["city"] == "Oslo"


async def test_a_workbooks_rejects_send_its_numbers_and_booleans_as_the_input_would(
    tmp_path: Path,
) -> None:
    header = ["id", "city", "customFields.seats", "customFields.active"]
    path = _book(
        tmp_path / "book.xlsx",
        [
            header,
            ["066091adcd648f9dab09032e", "Lyon", 1201, True],
            [MISSING, "Oslo", 1201, True],
            [MISSING, "Nice", 15, False],
        ],
        {"customFields.seats": "#,##0"},
    )
    async with new_server(tmp_path) as server, page_client(server) as page:
        await page.act("/api/sandbox")
        await upload(page, path, "book.xlsx")
        await page.act("/api/read", json={"header_row": 3})
        await page.until(checked)
        await page.act("/api/start")
        state = await page.until(finished)
        assert state["job"]["summary"]["counts"] == {"updated": 1, "not_found": 2}
        assert server.sandbox is not None
        leads = server.sandbox.state.leads
        assert leads["066091adcd648f9dab09032e"]["customFields"]["seats"] == 1201

        async with page.http.get(page.origin + "/api/download/rejects") as answer:
            assert answer.content_disposition is not None
            assert answer.content_disposition.filename == "rejects.xlsx"
            sheet = openpyxl.load_workbook(io.BytesIO(await answer.read())).active
        assert sheet is not None
        assert [cell.value for cell in sheet[4]][:4] == [MISSING, "Oslo", 1201, True]
        table = await _rejects(page)
        assert table["header"] == [*header, "_status", "_message"]
        assert [row["cells"][:5] for row in table["rows"]] == [
            [MISSING, "Oslo", "1,201", "TRUE", "not_found"],
            [MISSING, "Nice", "15", "FALSE", "not_found"],
        ]

        # Row 1: only its id fixed; row 2: its number and boolean typed over, as in Excel.
        first, second = "906a04f0281c1bc2aafa0bc0", "7bc3be32b23532505b2f632b"
        fixed = {
            "1": {"id": first},
            "2": {"id": second, "customFields.seats": "16", "customFields.active": "true"},
        }
        await page.act("/api/send-fixed", json={"rows": fixed})
        state = await page.until(lambda s: finished(s) and s["job"]["summary"] is not None)
        assert state["job"]["summary"]["counts"] == {"updated": 2}
        assert leads[first]["city"] == "Oslo"
        for lead, seats, active in [(first, 1201, True), (second, 16, True)]:
            assert leads[lead]["customFields"]["seats"] == seats  # a number, not "1,201"
            assert leads[lead]["customFields"]["active"] is active


async def test_a_workbook_with_a_fixed_row_sends_every_row_as_the_input_would(
    tmp_path: Path,
) -> None:
    path = _book(
        tmp_path / "book.xlsx",
        [
            ["id", "tags", "customFields.seats", "customFields.active"],
            ["066091adcd648f9dab09032e", "vip", 1201, True],
            ["906a04f0281c1bc2aafa0bc0", '["vip"', 2500, False],  # tags: not a JSON list
        ],
        {"customFields.seats": "#,##0"},
    )
    async with new_server(tmp_path) as server, page_client(server) as page:
        await page.act("/api/sandbox")
        await upload(page, path, "book.xlsx")
        await page.act("/api/read", json={"header_row": 3})
        state = await page.until(checked)
        assert (state["check"]["valid"], state["check"]["invalid"]) == (1, 1)
        state = await page.act("/api/fix", json={"row": 2, "cells": {"tags": '["vip"]'}})
        assert state["check"]["invalid"] == 0
        await page.act("/api/start")  # a copy of the workbook, with the fixed row
        state = await page.until(finished)
        assert state["job"]["summary"]["counts"] == {"updated": 2}
        assert server.sandbox is not None
        leads = server.sandbox.state.leads
        for lead, seats, active in [
            ("066091adcd648f9dab09032e", 1201, True),
            ("906a04f0281c1bc2aafa0bc0", 2500, False),
        ]:
            assert leads[lead]["customFields"]["seats"] == seats
            assert leads[lead]["customFields"]["active"] is active
        assert leads["906a04f0281c1bc2aafa0bc0"]["tags"] == ["vip"]


async def _download(page: Any, path: str) -> tuple[int, str]:
    async with page.http.get(page.origin + "/api/download/" + path) as answer:
        return answer.status, await answer.text()


async def test_a_new_job_leaves_the_reports_and_rejects_of_the_jobs_before(
    tmp_path: Path,
) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text("id,city\n066091adcd648f9dab09032e,Lyon\nnot-a-lead,Paris\n")
    target = "906a04f0281c1bc2aafa0bc0"
    async with new_server(tmp_path) as server, page_client(server) as page:
        await page.act("/api/sandbox")
        await upload(page, rows, "rows.csv")
        await page.until(checked)
        await page.act("/api/start")
        await page.until(finished)
        first_report = await _download(page, "report")
        first_rejects = await _download(page, "rejects")
        fixed = {"rows": {"1": {"id": target, "city": "Paris"}}}
        state = await page.act("/api/send-fixed", json=fixed)
        assert state["earlier"] == [
            {
                "number": 1,
                "name": "rows.csv",
                "state": "finished",
                "counts": {"updated": 1, "not_found": 1},
                "has_report": True,
                "has_rejects": True,
            }
        ]
        state = await page.until(lambda s: finished(s) and s["job"]["summary"] is not None)
        assert await _download(page, "earlier/1/report") == first_report
        assert await _download(page, "earlier/1/rejects") == first_rejects
        status, report = await _download(page, "report")  # the fixed rows' own report
        assert status == 200
        assert target in report
        assert "not-a-lead" not in report
        assert "not-a-lead" in first_report[1]
        # A new Start after a finished job: the fixed rows' report stays too.
        await upload(page, rows, "rows.csv")
        await page.until(checked)
        await page.act("/api/start")
        state = await page.until(lambda s: finished(s) and s["job"]["summary"] is not None)
        assert [job["name"] for job in state["earlier"]] == ["rows.csv", "rows.csv (fixed rows)"]
        assert target in (await _download(page, "earlier/2/report"))[1]
        assert await _download(page, "earlier/1/report") == first_report
        for wrong in ("earlier/3/report", "earlier/1/input", "earlier/..%2f1/report"):
            assert (await _download(page, wrong))[0] == 404, wrong


async def test_fixed_rows_are_read_with_the_tags_separator_chosen(tmp_path: Path) -> None:
    rows = tmp_path / "tags.csv"
    rows.write_text(f'id,tags\n{MISSING},"vip,hot"\n')
    target = "906a04f0281c1bc2aafa0bc0"
    async with new_server(tmp_path) as server, page_client(server) as page:
        await page.act("/api/sandbox")
        await upload(page, rows, "tags.csv")
        await page.until(checked)
        await page.act("/api/tags-separator", json={"separator": ","})
        await page.act("/api/check")
        await page.until(checked)
        await page.act("/api/start")
        state = await page.until(lambda s: finished(s) and s["job"]["summary"] is not None)
        assert state["job"]["summary"]["counts"] == {"not_found": 1}
        table = await _rejects(page)
        assert [row["cells"][:2] for row in table["rows"]] == [[MISSING, "vip,hot"]]
        await page.act("/api/send-fixed", json={"rows": {"1": {"id": target}}})
        state = await page.until(lambda s: finished(s) and s["job"]["summary"] is not None)
        assert state["job"]["summary"]["counts"] == {"updated": 1}
        assert server.sandbox is not None
        assert server.sandbox.state.leads[target]["tags"] == ["vip", "hot"]


async def test_the_rejects_of_a_job_restored_are_shown_and_kept_by_a_new_start(
    tmp_path: Path,
) -> None:
    # Rows no lead has come first, so a job stopped early has rejects already.
    rows = tmp_path / "rows.csv"
    with rows.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["id", "jobTitle"])
        writer.writerows([f"{n:024x}", "Nobody"] for n in range(3))
        writer.writerows([lead_id, "Title"] for lead_id in LEADS)
    with SandboxThread(LEADS, api_key=DEFAULT_SANDBOX_KEY, latency_ms=150, rate=10) as sandbox:
        connection = Connection(SecretStr(DEFAULT_SANDBOX_KEY), sandbox.url, sandbox=True)
        async with new_server(tmp_path, connection) as server, page_client(server) as page:
            await upload(page, rows, "rows.csv")
            await page.until(checked)
            await page.act("/api/start")
            await page.until(lambda s: s["job"]["counts"].get("not_found") == 3)
            await page.act("/api/stop")
            await page.until(finished)
        async with new_server(tmp_path, connection) as server, page_client(server) as page:
            state = await page.state()
            assert state["job"]["state"] == "stopped"  # restored: no summary
            assert state["job"]["has_rejects"]
            status, rejects = await _download(page, "rejects")
            assert status == 200
            assert f"{2:024x}" in rejects
            other = tmp_path / "other.csv"
            other.write_text("id,jobTitle\n066091adcd648f9dab09032e,CFO\n")
            await upload(page, other, "other.csv")
            await page.until(checked)
            await page.act("/api/start")
            state = await page.until(lambda s: finished(s) and s["job"]["summary"] is not None)
            assert state["earlier"][0]["has_rejects"]
            assert await _download(page, "earlier/1/rejects") == (200, rejects)


async def test_a_row_fixed_in_the_check_is_read_with_the_tags_separator_chosen(
    tmp_path: Path,
) -> None:
    rows = tmp_path / "tags.csv"
    rows.write_text('id,tags\n066091adcd648f9dab09032e,"vip,hot"\nnot an id,"vip,hot"\n')
    async with new_server(tmp_path) as server, page_client(server) as page:
        await page.act("/api/sandbox")
        await upload(page, rows, "tags.csv")
        await page.until(checked)
        await page.act("/api/tags-separator", json={"separator": ","})
        await page.act("/api/check")
        state = await page.until(checked)
        assert (state["check"]["valid"], state["check"]["invalid"]) == (1, 1)
        target = "906a04f0281c1bc2aafa0bc0"
        state = await page.act("/api/fix", json={"row": 2, "cells": {"id": target}})
        assert state["check"]["invalid"] == 0  # its tags read as two, as the row above
        await page.act("/api/start")
        state = await page.until(lambda s: finished(s) and s["job"]["summary"] is not None)
        assert state["job"]["summary"]["counts"] == {"updated": 2}
        assert server.sandbox is not None
        assert server.sandbox.state.leads[target]["tags"] == ["vip", "hot"]

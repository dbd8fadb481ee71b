"""The page's steps through its API, without a browser: file, columns, check, run, done."""

from __future__ import annotations

import asyncio
import csv
import io
from pathlib import Path
from typing import Any

from tests.ui.conftest import SAMPLES, PageClient, new_server, page_client

EXPORT = SAMPLES / "excel-export.csv"
BAD_ROW = 10  # the export's row whose Tags cell is `["vip"`: not a JSON array


def finished(state: dict[str, Any]) -> bool:
    job = state["job"]
    return job is not None and job["state"] in ("finished", "stopped", "failed")


def checked(state: dict[str, Any]) -> bool:
    return state["check"] is not None and not state["check"]["running"]


async def _upload(page: PageClient, path: Path, name: str) -> dict[str, Any]:
    data = await asyncio.to_thread(path.read_bytes)
    return await page.act(f"/api/upload?name={name}", data=data)


async def test_the_european_export_is_read_mapped_checked_fixed_and_sent(tmp_path: Path) -> None:
    async with new_server(tmp_path) as server, page_client(server) as page:
        await page.act("/api/sandbox")
        state = await _upload(page, EXPORT, "export.csv")
        file = state["file"]
        assert (file["encoding"], file["delimiter"]) == ("cp1252", ";")
        assert file["encoding_how"] == "guessed (not UTF-8)"
        assert file["rows"][0][:2] == ["066091adcd648f9dab09032e", "Amelia"]
        assert file["rows"][0][3] == "Directrice financière"
        how = {c["header"]: (c["field"], c["how"]) for c in state["columns"]}
        assert how["Lead ID"] == ("id", "suggested")
        assert how["First Name"] == ("firstName", "normalised")
        assert state["needs_decision"]
        assert state["check"] is None  # a suggestion waits for the user

        state = await page.act("/api/columns", json={"columns": {"Owner": "-"}})
        assert ("Owner", "-", "chosen") in [tuple(c.values()) for c in state["columns"]]
        assert state["command"] == (
            "bulk-updater run export.csv --map 'Lead ID=id' --ignore-unknown-columns "
            "--encoding cp1252"
        )
        await page.act("/api/check")
        state = await page.until(checked)
        check = state["check"]
        assert (check["rows"], check["valid"], check["invalid"]) == (10, 9, 1)
        [bad] = check["invalid_rows"]
        assert bad["row"] == BAD_ROW
        assert "tags" in bad["message"]

        state = await page.act("/api/fix", json={"row": BAD_ROW, "cells": {"Tags": '["vip"]'}})
        assert (state["check"]["valid"], state["check"]["invalid"]) == (10, 0)

        await page.act("/api/start")
        state = await page.until(finished)
        job = state["job"]
        assert job["state"] == "finished"
        assert job["summary"]["counts"] == {"updated": 9, "not_found": 1}
        assert server.sandbox is not None
        leads = server.sandbox.state.leads
        assert leads["066091adcd648f9dab09032e"]["jobTitle"] == "Directrice financière"
        assert leads["f64616a3d4cca855af4b6121"]["tags"] == ["vip"]  # the fixed cell went out

        async with page.http.get(page.origin + "/api/download/report") as answer:
            report = list(csv.DictReader(io.StringIO((await answer.read()).decode("utf-8-sig"))))
        updated = {line["id"] for line in report if line["status"] == "updated"}
        assert len(updated) == 9
        assert updated <= set(leads)
        async with page.http.get(page.origin + "/api/download/rejects") as answer:
            rejects = (await answer.read()).decode("utf-8-sig")
        assert "not_found" in rejects
        assert "ffffffffffffffffffffffff" in rejects


async def test_the_rejects_fixed_on_the_page_are_sent_again_alone(tmp_path: Path) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text("id,city\n066091adcd648f9dab09032e,Lyon\nnot-a-lead,Paris\n")
    async with new_server(tmp_path) as server, page_client(server) as page:
        await page.act("/api/sandbox")
        await _upload(page, rows, "rows.csv")
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


async def test_a_second_file_of_the_same_headers_opens_mapped(tmp_path: Path) -> None:
    async with new_server(tmp_path) as server, page_client(server) as page:
        await _upload(page, EXPORT, "november.csv")
        await page.act("/api/columns", json={"columns": {"Owner": "-", "Last Activity": "-"}})
        await page.act("/api/check")  # checking a mapping confirms it
        await page.until(checked)
    async with new_server(tmp_path) as server, page_client(server) as page:
        state = await _upload(page, EXPORT, "december.csv")
        how = {c["header"]: (c["field"], c["how"]) for c in state["columns"]}
        assert how["Lead ID"] == ("id", "remembered")
        assert how["Owner"] == ("-", "remembered")
        assert not state["needs_decision"]
        state = await page.until(checked)  # so the check ran by itself
        assert state["check"]["rows"] == 10


async def test_a_file_of_another_format_is_refused_in_one_line(tmp_path: Path) -> None:
    async with new_server(tmp_path) as server, page_client(server) as page:
        async with await page.change("/api/upload?name=leads.pdf", data=b"%PDF") as answer:
            assert answer.status == 400
            error = (await answer.json())["error"]
        assert error.startswith("leads.pdf: the page reads CSV")
        assert "\n" not in error
        state = await _upload(page, SAMPLES / "updates.csv", "rows.txt")
        assert state["file"]["format"] == "csv"

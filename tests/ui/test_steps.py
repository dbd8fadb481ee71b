"""The page's steps through its API, without a browser: file, columns, check, run, done."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path

import pytest
from pydantic import SecretStr

from bulk_updater.limits.limiter import NOTHING_LEFT
from bulk_updater.sandbox import DEFAULT_SANDBOX_KEY, Sandbox
from bulk_updater.ui import Connection
from tests.ui.conftest import (
    LEADS,
    SAMPLES,
    checked,
    finished,
    new_server,
    page_client,
    upload,
)

EXPORT = SAMPLES / "excel-export.csv"
BAD_ROW = 10  # the export's row whose Tags cell is `["vip"`: not a JSON array


async def test_the_european_export_is_read_mapped_checked_fixed_and_sent(tmp_path: Path) -> None:
    async with new_server(tmp_path) as server, page_client(server) as page:
        await page.act("/api/sandbox")
        state = await upload(page, EXPORT, "export.csv")
        file = state["file"]
        assert (file["encoding"], file["delimiter"], file["header_row"]) == ("cp1252", ";", 1)
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


async def test_a_second_file_of_the_same_headers_opens_mapped(tmp_path: Path) -> None:
    async with new_server(tmp_path) as server, page_client(server) as page:
        await upload(page, EXPORT, "november.csv")
        await page.act("/api/columns", json={"columns": {"Owner": "-", "Last Activity": "-"}})
        await page.act("/api/check")  # checking a mapping confirms it
        await page.until(checked)
    async with new_server(tmp_path) as server, page_client(server) as page:
        state = await upload(page, EXPORT, "december.csv")
        how = {c["header"]: (c["field"], c["how"]) for c in state["columns"]}
        assert how["Lead ID"] == ("id", "remembered")
        assert how["Owner"] == ("-", "remembered")
        assert not state["needs_decision"]
        state = await page.until(checked)  # so the check ran by itself
        assert state["check"]["rows"] == 10


async def test_a_key_typed_in_the_page_is_checked_and_never_shown(tmp_path: Path) -> None:
    key = "sk_live_typed1nThePage0000"
    async with new_server(tmp_path) as server, page_client(server) as page:
        async with await page.change("/api/key", json={"key": "sk_live\nX-Evil: 1"}) as answer:
            assert answer.status == 400
            assert "line break" in (await answer.json())["error"]
        state = await page.act("/api/key", json={"key": f"  {key} "})
        assert state["connection"] == {"base_url": "https://api.sendkit.ai", "sandbox": False}
        assert key not in json.dumps(state)
        assert server.session is not None
        assert server.session.connection is not None
        assert server.session.connection.api_key.get_secret_value() == key
        assert key not in repr(server.session.connection)


async def test_a_429_pause_is_pushed_with_the_seconds_it_lasts(tmp_path: Path) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text("id,city\n" + "".join(f"{lead},Lyon\n" for lead in LEADS))
    # The API allows 2 requests a second; the job starts at 10: a 429 comes at once.
    async with Sandbox(LEADS, api_key=DEFAULT_SANDBOX_KEY, rate=2) as sandbox:
        connection = Connection(SecretStr(DEFAULT_SANDBOX_KEY), sandbox.url, sandbox=True)
        async with new_server(tmp_path, connection) as server, page_client(server) as page:
            await upload(page, rows, "rows.csv")
            await page.until(checked)
            await page.act("/api/start")
            paused = await page.until(lambda s: bool(s["job"] and s["job"]["paused_s"]))
            assert 0 < paused["job"]["paused_s"] <= 120
            assert paused["job"]["paused_why"] == "429 Too Many Requests"
            assert sandbox.state.rate_limited > 0
            await page.act("/api/stop")
            state = await page.until(finished)
        assert state["job"]["paused_s"] is None  # no countdown once the job is not running


async def test_a_hold_of_the_rate_limit_headers_is_pushed_too(tmp_path: Path) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text("id,city\n" + "".join(f"{lead},Lyon\n" for lead in LEADS))
    # Every answer says nothing is left until a reset hours away: the job is held, no 429 came.
    exhausted = Sandbox(LEADS, api_key=DEFAULT_SANDBOX_KEY, rate=100, headers="exhausted")
    async with exhausted as sandbox:
        connection = Connection(SecretStr(DEFAULT_SANDBOX_KEY), sandbox.url, sandbox=True)
        async with new_server(tmp_path, connection) as server, page_client(server) as page:
            await upload(page, rows, "rows.csv")
            await page.until(checked)
            await page.act("/api/start")
            held = await page.until(lambda s: bool(s["job"] and s["job"]["paused_s"]))
            assert held["job"]["paused_why"] == NOTHING_LEFT
            assert sandbox.state.rate_limited == 0
            await page.act("/api/stop")
            state = await page.until(finished)
        assert (state["job"]["paused_s"], state["job"]["paused_why"]) == (None, None)


async def test_a_malformed_request_or_a_mapping_that_cannot_be_is_a_clear_400(
    tmp_path: Path,
) -> None:
    async with new_server(tmp_path) as server, page_client(server) as page:
        await upload(page, EXPORT, "export.csv")
        refused = [
            ("/api/columns", {"data": b"not json"}, "the request must be a JSON object"),
            ("/api/columns", {"json": ["Owner"]}, "the request must be a JSON object"),
            ("/api/columns", {"json": {"columns": {"Owner": 1}}}, "must map text to text"),
            ("/api/fix", {"json": {"row": "x", "cells": {}}}, "a row must be given"),
            # Digits of other scripts: `str.isdigit()` takes them, `int()` does not.
            ("/api/fix", {"json": {"row": "²", "cells": {}}}, "a row must be given"),
            ("/api/fix", {"json": {"row": "٣", "cells": {}}}, "a row must be given"),
            ("/api/fix", {"json": {"row": "9" * 5000, "cells": {}}}, "a row must be given"),
            ("/api/read", {"json": {"encoding": 8}}, "an encoding or a sheet is given by"),
            ("/api/send-fixed", {"json": {"rows": {}}}, "no finished job"),
            ("/api/start", {}, "check the rows first"),
            ("/api/stop", {}, "no job is running"),
        ]
        for path, body, message in refused:
            async with await page.change(path, **body) as answer:
                assert answer.status == 400, path
                assert message in (await answer.json())["error"], path
        columns = {"Lead ID": "id", "First Name": "id"}
        await page.act("/api/columns", json={"columns": columns})
        async with await page.change("/api/check") as answer:
            assert answer.status == 400
            error = (await answer.json())["error"]
        assert error.startswith("export.csv: ")  # as the user named it, not its upload path
        assert "both mean id" in error
        assert (await page.state())["check"] is None


async def test_a_sandbox_that_cannot_start_is_said_in_one_line(tmp_path: Path) -> None:
    leads = tmp_path / "leads.json"
    leads.write_text('{"not": "a list"}')
    async with new_server(tmp_path, sandbox_leads=leads) as server, page_client(server) as page:
        async with await page.change("/api/sandbox") as answer:
            assert answer.status == 400
            error = (await answer.json())["error"]
        # The option of the command that started the page, not the sandbox command's `--leads`.
        assert "`bulk-updater ui --sandbox-leads` takes a JSON list of lead objects" in error
        assert (await page.state())["connection"] is None


async def test_an_answer_carries_its_change_and_a_new_file_replaces_the_one_before(
    tmp_path: Path,
) -> None:
    async with new_server(tmp_path) as server, page_client(server) as page:
        before = (await page.state())["version"]
        state = await page.act("/api/sandbox")
        # The answer is at least as new as any push that does not hold the change.
        assert state["version"] > before
        assert state["connection"]["sandbox"]
        assert server.workspace is not None
        await upload(page, EXPORT, "first.csv")
        await upload(page, SAMPLES / "updates.csv", "second.csv")
        uploads = await asyncio.to_thread(lambda: list(server.workspace.root.iterdir()))
        assert len(uploads) == 1  # the first file is gone from the private folder
        assert (await page.state())["file"]["name"] == "second.csv"


async def test_a_json_line_with_an_unknown_key_is_an_invalid_row_that_names_it(
    tmp_path: Path,
) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        '{"id": "066091adcd648f9dab09032e", "jobTitle": "CFO"}\n'
        '{"id": "906a04f0281c1bc2aafa0bc0", "jobTitel": "CEO"}\n'
        '{"id": "000000000000000000000000", "jobTitle": "CTO"}\n'
    )
    async with new_server(tmp_path) as server, page_client(server) as page:
        state = await upload(page, rows, "rows.jsonl")
        assert (state["file"]["format"], state["columns"]) == ("jsonl", [])
        state = await page.until(checked)  # nothing to decide: checked by itself
        assert (state["check"]["valid"], state["check"]["invalid"]) == (2, 1)
        [bad] = state["check"]["invalid_rows"]
        assert "unknown column `jobTitel` (did you mean `jobTitle`?)" in bad["message"]
        line = '{"id": "906a04f0281c1bc2aafa0bc0", "jobTitle": "CEO"}'
        assert bad["cells"] == {"JSON line": line.replace("jobTitle", "jobTitel")}
        state = await page.act("/api/fix", json={"row": 2, "cells": {"JSON line": line}})
        assert (state["check"]["valid"], state["check"]["invalid"]) == (3, 0)
        await page.act("/api/sandbox")
        await page.act("/api/start")
        state = await page.until(finished)
        assert state["job"]["summary"]["counts"] == {"updated": 2, "not_found": 1}
        assert server.sandbox is not None
        assert server.sandbox.state.leads["906a04f0281c1bc2aafa0bc0"]["jobTitle"] == "CEO"

        async with page.http.get(page.origin + "/api/rejects") as answer:
            table = await answer.json()
        assert table["header"] == ["JSON line"]
        [reject] = table["rows"]
        assert json.loads(reject["cells"][0])["_status"] == "not_found"
        fixed = '{"id": "7bc3be32b23532505b2f632b", "jobTitle": "CTO"}'
        await page.act("/api/send-fixed", json={"rows": {"1": {"JSON line": fixed}}})
        state = await page.until(lambda s: finished(s) and s["job"]["summary"] is not None)
        assert state["job"]["summary"]["counts"] == {"updated": 1}
        assert server.sandbox.state.leads["7bc3be32b23532505b2f632b"]["jobTitle"] == "CTO"


async def test_a_row_short_of_cells_is_fixed_by_filling_them(tmp_path: Path) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text("id,city,jobTitle\n066091adcd648f9dab09032e,Lyon\n")
    async with new_server(tmp_path) as server, page_client(server) as page:
        await upload(page, rows, "rows.csv")
        state = await page.until(checked)
        [bad] = state["check"]["invalid_rows"]
        assert bad["message"] == "the row has 2 cells but the header 3"
        assert bad["cells"] == {"id": "066091adcd648f9dab09032e", "city": "Lyon", "jobTitle": ""}
        state = await page.act("/api/fix", json={"row": 1, "cells": {"jobTitle": "CFO"}})
        assert state["check"]["invalid_rows"][0]["message"] == "fixed"
        assert (state["check"]["valid"], state["check"]["invalid"]) == (1, 0)


async def test_a_checked_file_is_started_once_then_checked_again_to_send_again(
    tmp_path: Path,
) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text("id,city\n066091adcd648f9dab09032e,Lyon\n")
    async with new_server(tmp_path) as server, page_client(server) as page:
        await page.act("/api/sandbox")
        await upload(page, rows, "rows.csv")
        state = await page.until(checked)
        assert state["check"]["ready"]
        await page.act("/api/start")
        state = await page.until(finished)
        assert not state["check"]["ready"]  # the page's Start is off
        async with await page.change("/api/start") as answer:
            assert answer.status == 400
            assert "was sent already" in (await answer.json())["error"]
        assert server.sandbox is not None
        assert server.sandbox.state.applied_by_lead["066091adcd648f9dab09032e"] == 1
        await page.act("/api/check")
        state = await page.until(checked)
        assert state["check"]["ready"]  # a new check: Start again


async def test_the_tags_separator_is_chosen_with_the_columns_and_in_the_command(
    tmp_path: Path,
) -> None:
    rows = tmp_path / "tags.csv"
    rows.write_text('id,tags\n066091adcd648f9dab09032e,"vip,hot"\n')
    async with new_server(tmp_path) as server, page_client(server) as page:
        await page.act("/api/sandbox")
        await upload(page, rows, "tags.csv")
        state = await page.until(checked)
        assert state["tags_separator"] == ";"
        assert (state["check"]["valid"], state["check"]["invalid"]) == (0, 1)  # `,` is not `;`
        async with await page.change("/api/tags-separator", json={"separator": "ab"}) as answer:
            assert answer.status == 400
            error = (await answer.json())["error"]
            assert error.startswith("tags separator 'ab': give one character")
        state = await page.act("/api/tags-separator", json={"separator": ","})
        assert state["tags_separator"] == ","
        assert state["check"] is None  # the check before read the tags otherwise
        assert state["command"].endswith("--tags-separator ,")
        await page.act("/api/check")
        state = await page.until(checked)
        assert (state["check"]["valid"], state["check"]["invalid"]) == (1, 0)
        await page.act("/api/start")
        state = await page.until(lambda s: finished(s) and s["job"]["summary"] is not None)
        assert state["job"]["summary"]["counts"] == {"updated": 1}
        assert server.sandbox is not None
        assert server.sandbox.state.leads["066091adcd648f9dab09032e"]["tags"] == ["vip", "hot"]
        await page.act("/api/read", json={"encoding": "utf-8"})  # read again: the choice stays
        assert (await page.state())["tags_separator"] == ","


async def test_the_tags_separator_is_remembered_with_the_mapping(tmp_path: Path) -> None:
    rows = tmp_path / "tags.csv"
    rows.write_text("id,tags\n066091adcd648f9dab09032e,vip|hot\n")
    async with new_server(tmp_path) as server, page_client(server) as page:
        await upload(page, rows, "november.csv")
        state = await page.until(checked)
        [bad] = state["check"]["invalid_rows"]
        assert "choose `|` under Tags separated by" in bad["message"]
        assert "--tags-separator" not in bad["message"]  # a flag the page has not
        await page.act("/api/tags-separator", json={"separator": "|"})
        await page.act("/api/check")  # checking confirms the mapping, and its separator
        await page.until(checked)
    async with new_server(tmp_path) as server, page_client(server) as page:
        state = await upload(page, rows, "december.csv")
        assert [c["how"] for c in state["columns"]] == ["remembered", "remembered"]
        assert state["tags_separator"] == "|"
        state = await page.until(checked)  # the automatic check read the lists with it
        assert (state["check"]["valid"], state["check"]["invalid"]) == (1, 0)


@pytest.mark.parametrize("separator", ["\x00", "\x1b", "\x85", "\u2028", "\u00a6", "\x7f"])
async def test_a_tags_separator_the_page_does_not_offer_must_be_printable_ascii(
    tmp_path: Path, separator: str
) -> None:
    rows = tmp_path / "tags.csv"
    rows.write_text("id,tags\n066091adcd648f9dab09032e,vip\n")
    async with new_server(tmp_path) as server, page_client(server) as page:
        await upload(page, rows, "tags.csv")
        await page.until(checked)
        async with await page.change(
            "/api/tags-separator", json={"separator": separator}
        ) as answer:
            assert answer.status == 400
            [line] = (await answer.json())["error"].splitlines()
            assert line.endswith(
                "choose one the page offers, or a printable punctuation mark such as , or |"
            )
        state = await page.state()
        assert state["tags_separator"] == ";"
        assert separator not in state["command"]
        for offered, taken in (("tab", "\t"), ("|", "|"), (" ", " "), ("#", "#")):
            state = await page.act("/api/tags-separator", json={"separator": offered})
            assert state["tags_separator"] == taken


async def test_rows_a_filter_hides_are_not_sent_and_keep_their_numbers_after_a_fix_below(
    tmp_path: Path,
) -> None:
    import openpyxl

    first, intern, third = list(LEADS)[:3]
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Leads"
    for row in (["id", "jobTitle", "Score"], [first, "CRO", "1"], [intern, "INTERN", "1"],
                [third, "CFO", "x"]):  # fmt: skip
        sheet.append(row)
    sheet.row_dimensions[3].hidden = True  # as Excel's AutoFilter stores a row it filters out
    book.save(tmp_path / "filtered.xlsx")
    async with new_server(tmp_path) as server, page_client(server) as page:
        await page.act("/api/sandbox")
        await upload(page, tmp_path / "filtered.xlsx", "filtered.xlsx")
        await page.act("/api/columns", json={"columns": {"Score": "customFields.score:integer"}})
        await page.act("/api/check")
        check = (await page.until(checked))["check"]
        assert (check["rows"], check["valid"], check["invalid"]) == (2, 1, 1)  # as the sheet shows
        [bad] = check["invalid_rows"]
        assert bad["row"] == 3  # below the hidden row
        await page.act("/api/fix", json={"row": 3, "cells": {"Score": "3"}})
        await page.act("/api/start")  # the fixed copy is sent: the hidden row is skipped there too
        state = await page.until(finished)
        assert state["job"]["summary"]["counts"] == {"updated": 2, "skipped": 1}
        async with page.http.get(page.origin + "/api/download/report") as answer:
            report = list(csv.DictReader(io.StringIO((await answer.read()).decode("utf-8-sig"))))
        assert server.sandbox is not None
        leads = server.sandbox.state.leads
    assert [(r["row"], r["id"], r["status"]) for r in report] == [
        ("1", first, "updated"),
        ("2", intern, "skipped"),
        ("3", third, "updated"),
    ]
    assert (leads[first]["jobTitle"], leads[third]["jobTitle"]) == ("CRO", "CFO")
    assert leads[intern]["jobTitle"] != "INTERN"

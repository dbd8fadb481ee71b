"""An input that changes while the job reads it (an exporter still writing it, or rewriting it in
place): the job stops (`input_changed`, exit 3), no cut-off row is sent, and `--resume` continues a
file that only grew.

Each change is made by the test between the opening of the input and its reading (or once the
sandbox saw the first request), so nothing here waits on time.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bulk_updater import BulkUpdater, InputChangedError, Source, Status, StopReason
from bulk_updater.sandbox import Sandbox, SandboxThread
from tests.cli.conftest import KEY as CLI_KEY
from tests.cli.conftest import finish, running, start, wait_until
from tests.conftest import make_leads, read_report

KEY = "sk_test_changes"


def append(path: Path, text: str) -> None:
    """What the exporter writes next, at the end of the file."""
    with open(path, "a") as exporter:
        exporter.write(text)


def rewrite(path: Path, text: str) -> None:
    """`> path`: the same file, truncated, then the next export written into it."""
    with open(path, "r+") as exporter:
        exporter.truncate(0)
        exporter.write(text)


def lines(*rows: tuple[str, str]) -> str:
    return "id,jobTitle\n" + "".join(f"{lead},{title}\n" for lead, title in rows)


async def test_a_cut_off_last_line_of_a_file_still_written_is_never_sent(tmp_path: Path) -> None:
    leads = make_leads(3)
    a, b, c = leads
    path = tmp_path / "nightly.csv"
    path.write_text(lines((a, "Chief"), (b, "Head")))
    source = Source(path)
    source.check()
    append(path, f"{c},Engin")  # the exporter goes on: half of the next line so far
    async with Sandbox(leads, api_key=KEY) as sb:
        async with BulkUpdater(api_key=KEY, base_url=sb.url, rate=0) as up:
            summary = await up.run(source, report=tmp_path / "r.csv")
        held = {lead: sb.state.leads[lead]["jobTitle"] for lead in leads}
    assert summary.stopped is StopReason.INPUT_CHANGED
    assert summary.exit_code == 3
    assert held[c] == "Engineer"  # c never got `Engin`
    report = read_report(tmp_path / "r.csv")
    assert [(r["row"], r["status"]) for r in report] == [("1", "aborted"), ("2", "aborted")]
    for row in report:  # the user's line, as for any stop: no exception's name
        assert row["message"].endswith(
            "nightly.csv changed while it was read (an exporter still writing it?); rerun once it "
            "is complete"
        )
        assert "Error" not in row["message"]
        assert "failed" not in row["message"]


async def test_a_json_lines_file_cut_off_while_read_stops_too(tmp_path: Path) -> None:
    leads = make_leads(2)
    a, b = leads
    path = tmp_path / "nightly.jsonl"
    path.write_text(json.dumps({"id": a, "jobTitle": "Chief"}) + "\n")
    source = Source(path)
    source.check()
    append(path, f'{{"id": "{b}", "jobTitle": "Engin"}}')  # a whole JSON, no line break
    async with (
        Sandbox(leads, api_key=KEY) as sb,
        BulkUpdater(api_key=KEY, base_url=sb.url, rate=0) as up,
    ):
        summary = await up.run(source)
        assert sb.state.leads[b]["jobTitle"] == "Engineer"
    assert summary.stopped is StopReason.INPUT_CHANGED


async def test_an_export_rewritten_in_place_while_read_stops_the_job(tmp_path: Path) -> None:
    leads = make_leads(4)
    ids = list(leads)
    path = tmp_path / "inplace.csv"
    path.write_text(lines(*((lead, "Y") for lead in ids)))
    source = Source(path)
    source.check()
    rewrite(path, lines(*((lead, "X") for lead in reversed(ids))))  # the same size here
    async with (
        Sandbox(leads, api_key=KEY) as sb,
        BulkUpdater(api_key=KEY, base_url=sb.url, rate=0) as up,
    ):
        summary = await up.run(source)
    assert summary.stopped is StopReason.INPUT_CHANGED
    # `--resume` refuses a report of another input: the message does not send the user there.
    assert summary.stop_message is not None
    assert summary.stop_message.endswith(
        "changed while it was read (rewritten in place, or another export moved there?); run the "
        "complete file again with a new --report (--resume refuses a report of another input)"
    )


async def test_a_workbook_replaced_while_read_stops_the_job(tmp_path: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    leads = make_leads(2)
    path = tmp_path / "book.xlsx"
    book = openpyxl.Workbook()
    book.active.append(["id", "jobTitle"])
    for lead in leads:
        book.active.append([lead, "Chief"])
    book.save(path)
    source = Source(path)
    source.check()
    book.active.append(["0" * 24, "Late"])
    book.save(path.with_suffix(".new.xlsx"))
    path.with_suffix(".new.xlsx").replace(path)  # the exporter's next workbook, moved in
    async with (
        Sandbox(leads, api_key=KEY) as sb,
        BulkUpdater(api_key=KEY, base_url=sb.url, rate=0) as up,
    ):
        summary = await up.run(source)
    assert summary.stopped is StopReason.INPUT_CHANGED


async def test_resume_continues_a_file_that_only_grew(tmp_path: Path) -> None:
    leads = make_leads(5)
    ids = list(leads)
    path = tmp_path / "grow.csv"
    report = tmp_path / "grow.report.csv"
    path.write_text(lines(*((lead, "First") for lead in ids[:2])))
    source = Source(path)
    source.check()
    append(path, f"{ids[2]},First\n{ids[3]},Fir")
    async with Sandbox(leads, api_key=KEY) as sb:
        async with BulkUpdater(api_key=KEY, base_url=sb.url, rate=0) as up:
            stopped = await up.run(source, report=report, resume=True)
            append(path, f"st\n{ids[4]},First\n")  # the export is complete now
            summary = await up.run(Source(path), report=report, resume=True)
        held = [sb.state.leads[lead]["jobTitle"] for lead in ids]
        patches = dict(sb.state.patches_by_lead)
    assert stopped.stopped is StopReason.INPUT_CHANGED
    assert stopped.stop_message is not None
    assert stopped.stop_message.endswith("rerun once it is complete")
    assert held == ["First"] * 5
    assert summary.counts[Status.UPDATED] == 5
    assert max(patches.values()) == 1
    assert [r["status"] for r in read_report(report)] == ["updated"] * 5


async def test_resume_refuses_a_file_that_ended_mid_line_when_it_started(tmp_path: Path) -> None:
    """The row cut there may have been sent cut off (the file had not changed yet when it was
    read): trusted as finished, it would keep its cut-off value."""
    leads = make_leads(2)
    a, b = leads
    path = tmp_path / "nightly.csv"
    report = tmp_path / "nightly.report.csv"
    path.write_text(f"id,jobTitle\n{a},Chief\n{b},Engin")
    async with (
        Sandbox(leads, api_key=KEY) as sb,
        BulkUpdater(api_key=KEY, base_url=sb.url, rate=0) as up,
    ):
        await up.run(Source(path), report=report, resume=True)
        path.write_text(f"id,jobTitle\n{a},Chief\n{b},Engineer\n")
        with pytest.raises(InputChangedError, match="not the one this report was started"):
            await up.run(Source(path), report=report, resume=True)


def test_the_command_exits_3_with_the_stop_and_the_counts(tmp_path: Path) -> None:
    leads = make_leads(300)  # past the rows read ahead (256): the end is read after 44 requests
    ids = list(leads)
    path = tmp_path / "nightly.csv"
    path.write_text(lines(*((lead, "Y") for lead in ids)))
    summary = tmp_path / "summary.json"
    with SandboxThread(leads, api_key=CLI_KEY) as sb:
        args = ("--base-url", sb.url, "--rate", "20", "-q", "--summary-json", summary)
        with running(start(path, *args, cwd=tmp_path)) as proc:
            wait_until(sb, lambda: sb.state.requests >= 1, 15, "the first request")
            path.write_text(lines(*((lead, "X") for lead in ids[:10])))  # the next export
            code, out, err = finish(proc, timeout=30)
    assert code == 3, out + err
    stop = (
        f"  stopped: {path} changed while it was read (rewritten in place, or another export "
        "moved there?); run the complete file again with a new --report (--resume refuses a "
        "report of another input)"
    )
    assert stop in out.splitlines(), out
    assert "--resume continues" not in out  # it would be refused (exit 2)
    assert "rerun the same command with --resume" not in out
    assert "Error(" not in out
    assert not err.strip()
    written = json.loads(summary.read_text())  # a monitor sees what was sent before the stop
    assert (written["state"], written["exit_code"]) == ("finished", 3)
    assert written["stopped"] == "input_changed"
    counts = written["counts"]
    assert counts["updated"] >= 1
    assert counts["updated"] + counts["aborted"] == written["rows"]

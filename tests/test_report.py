"""The report file: flushing, input order, one line per row, safe cells, lock, resume state.

The first tests drive `ReportWriter` directly; the last ones write reports through a run."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from bulk_updater import (
    BulkUpdater,
    InputChangedError,
    LeadUpdate,
    Outcome,
    Reply,
    ReportLockedError,
    Source,
    Status,
)
from bulk_updater.errors import ConfigError
from bulk_updater.report import ReportWriter, default_report_path, read_statuses
from bulk_updater.report.meta import read_meta
from tests.conftest import HoldFirstSender, read_report, write_csv


def outcome(row: int, status: Status = Status.UPDATED, **fields: object) -> Outcome:
    values: dict[str, object] = {"row": row, "id": f"lead{row}", "status": status, "attempts": 1}
    values.update(fields)
    return Outcome.model_validate(values)


def test_lines_are_flushed_as_written_and_sorted_on_close(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    writer = ReportWriter(path, fingerprint="abc")
    for row in (3, 1, 2):
        writer.write(outcome(row))
        writer.flush()
        # flushed: another reader sees the line before the run ends
        assert f"{row},,lead{row},updated" in path.read_text()
    writer.close()
    assert [line["row"] for line in read_report(path)] == ["1", "2", "3"]
    meta = read_meta(path.resolve())
    assert meta == {"report": str(path.resolve()), "input_sha256": "abc", "input_options": {}}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.csv"]  # nothing left beside it


def test_formula_cells_are_neutralised_and_records_stay_one_line(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    with ReportWriter(path) as writer:
        writer.write(outcome(1, Status.INVALID, id="-abc", message="=HYPERLINK(1)", attempts=0))
        writer.write(outcome(2, Status.INVALID, id="a\nb", message="+1", email="@x.com"))
        writer.write(outcome(3, Status.REJECTED, message="line one\r\nline two", error_code="-X"))
    lines = path.read_text().splitlines()
    assert len(lines) == 4
    first, second, third = read_report(path)
    assert (first["id"], first["message"]) == ("-abc", "'=HYPERLINK(1)")  # a valid id: as read
    assert (second["id"], second["message"], second["email"]) == ("a\\x0ab", "'+1", "'@x.com")
    assert third["message"] == "line one\\x0d\\x0aline two"
    assert third["error_code"] == "'-X"


def test_jsonl_report_keeps_types(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    with ReportWriter(path) as writer:
        writer.write(outcome(2, Status.NOT_FOUND, http_status=404, error_code="NOT_FOUND"))
        writer.write(outcome(1, duration_ms=12))
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["row"] for r in records] == [1, 2]
    assert records[0]["duration_ms"] == 12
    assert records[1]["http_status"] == 404
    assert list(read_statuses(path)) == [(1, Status.UPDATED), (2, Status.NOT_FOUND)]


def test_resume_keeps_the_last_line_per_row_and_knows_what_is_final(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    with ReportWriter(path, fingerprint="f1") as writer:
        writer.write(outcome(1))
        writer.write(outcome(2, Status.FAILED))
        writer.write(outcome(3, Status.ABORTED))
        writer.write(outcome(4, Status.NOT_FOUND))
    with ReportWriter(path, resume=True, fingerprint="f1") as writer:
        assert writer.resumed
        assert [row in writer.finished for row in range(6)] == [
            False, True, False, False, True, False,
        ]  # fmt: skip
        assert len(writer.finished) == 2
        writer.write(outcome(3))
        writer.write(outcome(2))
        writer.write(outcome(5))
    assert [(r["row"], r["status"]) for r in read_report(path)] == [
        ("1", "updated"),
        ("2", "updated"),
        ("3", "updated"),
        ("4", "not_found"),
        ("5", "updated"),
    ]


def test_resume_after_a_partial_last_line_starts_a_new_line(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    with ReportWriter(path, fingerprint="f") as writer:
        writer.write(outcome(1))
    with open(path, "a") as file:
        file.write("2,lead2,upd")  # a run killed mid-line
    with ReportWriter(path, resume=True, fingerprint="f") as writer:
        assert 2 not in writer.finished
        writer.write(outcome(2))
    assert [r["status"] for r in read_report(path)] == ["updated", "updated"]


def test_resume_refuses_another_input(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    with ReportWriter(path, fingerprint="old") as writer:
        writer.write(outcome(1))
    with pytest.raises(InputChangedError, match="not the one this report was started from"):
        ReportWriter(path, resume=True, fingerprint="new")
    # the refusal left the report and its lock alone
    assert len(read_report(path)) == 1
    ReportWriter(path, resume=True, fingerprint="old").close()


def test_resume_without_a_report_starts_a_new_one(tmp_path: Path) -> None:
    with ReportWriter(tmp_path / "r.csv", resume=True, fingerprint="f") as writer:
        assert not writer.resumed
        assert len(writer.finished) == 0


def test_second_writer_on_the_same_report_is_locked_out(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    with (
        ReportWriter(path),
        pytest.raises(ReportLockedError, match=r"r\.csv: another run is writing"),
    ):
        ReportWriter(path)
    ReportWriter(path).close()  # released on close


def test_report_needs_a_known_extension(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\.csv or \.jsonl"):
        ReportWriter(tmp_path / "r.txt")


def test_default_report_path() -> None:
    assert default_report_path("data/in.csv") == Path("data/in.csv.report.csv")
    assert default_report_path("-") == Path("bulk-updater.report.csv")


def test_resume_drops_a_cut_off_last_line_that_opens_a_quote(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    with ReportWriter(path, fingerprint="f") as writer:
        writer.write(outcome(1))
        writer.write(outcome(2, Status.FAILED))
    with open(path, "a") as file:
        file.write('3,,lead3,updated,200,,"cut off by a power loss')
    with ReportWriter(path, resume=True, fingerprint="f") as writer:
        assert 3 not in writer.finished  # half a line is not a finished row
        assert 1 in writer.finished
        writer.write(outcome(2))
        writer.write(outcome(3))
    assert [(r["row"], r["status"]) for r in read_report(path)] == [
        ("1", "updated"),
        ("2", "updated"),
        ("3", "updated"),
    ]


# --- reports written by a run


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
async def test_report_is_in_input_order_once_the_run_completes(tmp_path: Path, suffix: str) -> None:
    rows: list[dict[str, Any]] = [{"id": "first", "city": "x"}]
    rows += [{"id": f"l{i}", "city": "x"} for i in range(20)]
    rows += [{"id": "../bad", "city": "x"}, {"id": "gone", "city": "x"}]
    sender = HoldFirstSender("first", others=21, missing=["gone"])
    report = tmp_path / f"report{suffix}"
    finished: list[int] = []
    async with asyncio.timeout(10), BulkUpdater(sender=sender, rate=0, concurrency=8) as updater:
        await updater.run(rows, report=report, on_outcome=lambda o: finished.append(o.row))

    assert finished[-1] == 1  # row 1 really finished last
    if suffix == ".csv":
        lines = read_report(report)
    else:
        lines = [json.loads(line) for line in report.read_text("utf-8").splitlines()]
    assert [int(line["row"]) for line in lines] == list(range(1, len(rows) + 1))
    statuses = [line["status"] for line in lines]
    assert statuses == ["updated"] * 21 + ["invalid", "not_found"]


async def test_report_cells_never_start_a_formula(tmp_path: Path) -> None:
    rows: list[Any] = [
        {"id": "-lead", "city": "x"},  # a valid id that a spreadsheet would compute
        {"id": "=1+2", "city": "x"},
        {"id": "+33", "city": "x"},
        {"id": "@SUM(A1)", "city": "x"},
        {"id": "\t=cmd", "city": "x"},
        {"id": "\r=cmd", "city": "x"},
        {"id": '=HYPERLINK("http://evil")', "email": "a@b.c"},
    ]
    path = write_csv(
        tmp_path / "in.csv",
        ["id", "email", "city"],
        [*([r["id"], "=cmd|' /C calc'!A0", "x"] for r in rows), ["ok", "-2+3", "y"]],
    )

    class Answer:
        async def send(self, update: LeadUpdate) -> Reply:
            return Reply(422, "=ERR", "-bad value")

    report = tmp_path / "report.csv"
    async with BulkUpdater(sender=Answer(), rate=0) as updater:
        summary = await updater.run(Source(path), report=report)
    assert summary.rows == len(rows) + 1

    raw_lines = report.read_text("utf-8").splitlines()
    assert len(raw_lines) == len(rows) + 2  # header + one physical line per row
    lines = read_report(report)
    assert [line["status"] for line in lines] == ["rejected"] + ["invalid"] * 6 + ["rejected"]
    for line in lines[1:]:
        for column in ("id", "status", "error_code", "message", "email"):
            assert not line[column].startswith(("=", "+", "-", "@", "\t", "\r")), (column, line)
    assert lines[0]["id"] == "-lead"  # a valid id is written as read, so the report joins back
    assert lines[1]["id"] == "'=1+2"
    assert lines[2]["id"] == "'+33"
    assert lines[3]["id"] == "'@SUM(A1)"
    assert lines[0]["email"] == "'=cmd|' /C calc'!A0"
    assert lines[7]["email"] == "'-2+3"
    assert lines[7]["error_code"] == "'=ERR"
    assert lines[7]["message"] == "'-bad value"

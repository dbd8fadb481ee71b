"""The report file: flushing, input order, one line per row, safe cells, lock, resume state."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from bulk_updater import InputChangedError, Outcome, ReportLockedError, Status
from bulk_updater.errors import ConfigError
from bulk_updater.report import ReportWriter, default_report_path, read_statuses


def outcome(row: int, status: Status = Status.UPDATED, **fields: object) -> Outcome:
    values: dict[str, object] = {"row": row, "id": f"lead{row}", "status": status, "attempts": 1}
    values.update(fields)
    return Outcome.model_validate(values)


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8-sig") as file:
        return list(csv.DictReader(file))


def test_lines_are_flushed_as_written_and_sorted_on_close(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    writer = ReportWriter(path, fingerprint="abc")
    for row in (3, 1, 2):
        writer.write(outcome(row))
        writer.flush()
        # flushed: another reader sees the line before the run ends
        assert f"{row},lead{row},updated" in path.read_text()
    writer.close()
    assert [line["row"] for line in read_csv(path)] == ["1", "2", "3"]
    assert json.loads((tmp_path / "r.csv.meta.json").read_text()) == {"input_sha256": "abc"}


def test_formula_cells_are_neutralised_and_records_stay_one_line(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    with ReportWriter(path) as writer:
        writer.write(outcome(1, Status.INVALID, id="-abc", message="=HYPERLINK(1)", attempts=0))
        writer.write(outcome(2, Status.INVALID, id="a\nb", message="+1", email="@x.com"))
        writer.write(outcome(3, Status.REJECTED, message="line one\r\nline two", error_code="-X"))
    lines = path.read_text().splitlines()
    assert len(lines) == 4
    first, second, third = read_csv(path)
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
    assert [(r["row"], r["status"]) for r in read_csv(path)] == [
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
    assert [r["status"] for r in read_csv(path)] == ["updated", "updated"]


def test_resume_refuses_another_input(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    with ReportWriter(path, fingerprint="old") as writer:
        writer.write(outcome(1))
    with pytest.raises(InputChangedError, match="not the one this report was started from"):
        ReportWriter(path, resume=True, fingerprint="new")
    # the refusal left the report and its lock alone
    assert len(read_csv(path)) == 1
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
        file.write('3,lead3,updated,200,,"cut off by a power loss')
    with ReportWriter(path, resume=True, fingerprint="f") as writer:
        assert 3 not in writer.finished  # half a line is not a finished row
        assert 1 in writer.finished
        writer.write(outcome(2))
        writer.write(outcome(3))
    assert [(r["row"], r["status"]) for r in read_csv(path)] == [
        ("1", "updated"),
        ("2", "updated"),
        ("3", "updated"),
    ]

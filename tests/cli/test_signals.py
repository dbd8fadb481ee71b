"""SIGTERM and SIGINT: the exit code, the grace period for requests in flight, a report flushed in
row order, and a resume that finishes the job."""

from __future__ import annotations

import ctypes
import json
import os
import select
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from bulk_updater.report.meta import read_meta
from bulk_updater.sandbox import FaultPlan, SandboxThread
from bulk_updater.state import StateFile
from tests.cli.conftest import (
    KEY,
    applied,
    clean_env,
    cli,
    expected_lead,
    finish,
    job_input,
    read_run_report,
    running,
    start,
    wait_until,
)
from tests.conftest import make_leads, read_report

#: Rows enough that counting them (for the progress line) takes a second or more.
BIG = 400_000


#: inotify(7): a file was renamed into the folder watched.
IN_MOVED_TO = 0x80


def wait_for_file(path: Path, proc: subprocess.Popen[str], timeout: float) -> None:
    """Wait until the child puts `path` in place (whole, by a rename), or fail if it ends first:
    woken by the kernel (inotify on the folder, a pidfd for the child's end), never by a timer."""
    libc = ctypes.CDLL(None, use_errno=True)
    watch = libc.inotify_init1(os.O_CLOEXEC)
    assert watch >= 0, os.strerror(ctypes.get_errno())
    ended = os.pidfd_open(proc.pid)
    try:
        added = libc.inotify_add_watch(watch, bytes(path.parent), IN_MOVED_TO)
        assert added >= 0, os.strerror(ctypes.get_errno())
        deadline = time.monotonic() + timeout
        while not path.exists():  # checked once watched: a rename before is not missed
            left = deadline - time.monotonic()
            ready = select.select([watch, ended], [], [], max(left, 0))[0]
            if not ready or ended in ready:
                pytest.fail(f"{path.name} never appeared (the run ended with {proc.poll()})")
            os.read(watch, 4096)
    finally:
        os.close(ended)
        os.close(watch)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_while_the_rows_are_counted_ends_the_run_sending_nothing(
    tmp_path: Path, signum: signal.Signals, code: int
) -> None:
    """Without -q the rows are counted for the progress line before the job starts: a signal
    then ends the run at once, with one line and an `interrupted` summary."""
    source = tmp_path / "big.csv"
    source.write_text("id,jobTitle\n" + "".join(f"L{n:07d},t\n" for n in range(BIG)))
    summary = tmp_path / "summary.json"
    with SandboxThread(make_leads(1), api_key=KEY) as sb:
        args = ("--base-url", sb.url, "--summary-json", summary)
        with running(start(source, *args, cwd=tmp_path)) as proc:
            wait_for_file(summary, proc, timeout=60)  # written as the count starts
            proc.send_signal(signum)
            exit_code, out, err = finish(proc, timeout=20)
        assert sb.state.requests == 0
    assert exit_code == code, err
    name = signal.Signals(signum).name
    assert err == f"bulk-updater: interrupted by {name} before any row was sent\n"
    assert out == ""
    data = json.loads(summary.read_text())
    assert (data["state"], data["exit_code"]) == ("interrupted", code)
    assert data["stop_message"] == f"interrupted by {name} before any row was sent"
    # counted once the run holds its locks (a run refused one leaves the summary alone): the
    # report is begun by then, with no row in it
    assert read_report(tmp_path / "big.csv.report.csv") == []


#: Put first on the child's `PYTHONPATH`: when the child is about to import aiohttp (the slowest
#: of the command's imports), it says so on stderr and waits for a signal.
HOLD_AIOHTTP = """
import os, signal, sys

class Hold:
    def find_spec(self, name, path=None, target=None):
        if name == "aiohttp":
            os.write(2, b"importing aiohttp\\n")
            signal.pause()
        return None

sys.meta_path.insert(0, Hold())
"""


def test_sigterm_while_the_command_imports_its_modules_exits_143_with_one_line(
    tmp_path: Path,
) -> None:
    """The default action would end the command without a word (exit -15): the handler goes in
    before the imports of a second or more."""
    (tmp_path / "hold").mkdir()
    (tmp_path / "hold" / "sitecustomize.py").write_text(HOLD_AIOHTTP)
    source = tmp_path / "in.csv"
    source.write_text("id,jobTitle\nL1,t\n")
    env = clean_env(SENDKIT_API_KEY=KEY, PYTHONPATH=str(tmp_path / "hold"))
    with running(start(source, "--base-url", "http://127.0.0.1:9", env=env, cwd=tmp_path)) as proc:
        assert proc.stderr is not None
        assert proc.stderr.readline() == "importing aiohttp\n"
        proc.send_signal(signal.SIGTERM)
        exit_code, out, err = finish(proc, timeout=20)
    assert (exit_code, out) == (143, "")
    assert err == "bulk-updater: interrupted by SIGTERM while starting\n"
    assert not (tmp_path / "in.csv.report.csv").exists()


def test_sigterm_while_the_state_file_is_waited_for_ends_the_run_sending_nothing(
    tmp_path: Path,
) -> None:
    """Another process holds the state file's SQLite write lock: the run waits for it, and a
    SIGTERM then ends the wait and the run (not ignored until the whole job was sent)."""
    leads = make_leads(40)
    source, _ = job_input(tmp_path, leads)
    state = tmp_path / "state.sqlite3"
    StateFile(state).close()
    other = sqlite3.connect(state, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with SandboxThread(leads, api_key=KEY) as sb:
            args = ("--base-url", sb.url, "--skip-unchanged", "--state", state, "-q")
            with running(start(source, *args, cwd=tmp_path)) as proc:
                assert proc.stderr is not None
                line = proc.stderr.readline()
                assert "state: waiting for another process writing" in line, line
                proc.send_signal(signal.SIGTERM)
                exit_code, out, err = finish(proc, timeout=20)
            assert sb.state.requests == 0
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert exit_code == 143, err
    assert "interrupted by SIGTERM" in out


def test_sigterm_mid_job_then_resume_updates_every_row_exactly_once(tmp_path: Path) -> None:
    leads = make_leads(3000)
    source, ids = job_input(tmp_path, leads)
    report = tmp_path / "report.csv"
    first_json = tmp_path / "first.json"
    with SandboxThread(leads, api_key=KEY) as sb:
        base = ("--base-url", sb.url, "--report", report, "--concurrency", "8")
        with running(
            start(source, *base, "--rate", "300", "--summary-json", first_json, cwd=tmp_path)
        ) as proc:
            wait_until(sb, lambda: applied(sb) >= 300, 30, "300 rows applied")
            assert proc.poll() is None, "the job ended before it could be interrupted"
            proc.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            code, out, err = finish(proc, timeout=15)
            stop_time = time.monotonic() - signalled
        assert code == 143, err
        assert stop_time < 4.0, f"took {stop_time:.1f}s to stop after SIGTERM"
        assert "updated" in out  # the summary was printed

        first = read_run_report(report)
        seen = len(first)
        assert 300 <= seen < 3000, "SIGTERM must stop the reading of the input"
        # flushed in row order, exactly one line per row read, nothing unread reported
        assert [int(r["row"]) for r in first] == list(range(1, seen + 1))
        assert [r["id"] for r in first] == ids[:seen]
        assert {r["status"] for r in first} <= {"updated", "aborted"}
        first_status = {int(r["row"]): r["status"] for r in first}
        first_attempts = {int(r["row"]): int(r["attempts"]) for r in first}
        summary = json.loads(first_json.read_text())
        assert summary["exit_code"] == 143
        assert sum(summary["counts"].values()) == seen
        assert summary["counts"]["updated"] == list(first_status.values()).count("updated")
        assert read_meta((tmp_path / "report.csv").resolve()) is not None

        started = time.monotonic()
        code, out, err = cli(source, *base, "--rate", "300", "--resume", cwd=tmp_path, timeout=120)
        resume_time = time.monotonic() - started
        assert code == 0, out + err

        final = read_run_report(report)
        assert [int(r["row"]) for r in final] == list(range(1, 3001))
        assert [r["id"] for r in final] == ids
        assert {r["status"] for r in final} == {"updated"}
        assert sb.state.bad_requests == []
        assert sb.state.max_in_flight_per_lead == 1
        for index, lead_id in enumerate(ids):
            row = index + 1
            assert sb.state.leads[lead_id] == {
                **expected_lead(leads[lead_id], index),
                "updatedAt": sb.state.leads[lead_id]["updatedAt"],
            }
            assert sb.state.leads[lead_id]["updatedAt"] != leads[lead_id]["updatedAt"]
            # finished by the first run: never sent again; aborted (sent only if it was in
            # flight) or never read: sent once more by the resume
            done = first_status.get(row) == "updated"
            expected = 1 if done else first_attempts.get(row, 0) + 1
            assert sb.state.patches_by_lead[lead_id] == expected, (row, first_status.get(row))
            assert sb.state.applied_by_lead[lead_id] == expected, (row, first_status.get(row))
        # Off a terminal, a run of several seconds logs plain progress lines (checked plain above).
        assert resume_time > 5.0
        assert err.strip(), "no progress line in a run of several seconds"


def test_sigint_stops_with_exit_130_and_a_flushed_in_order_report(tmp_path: Path) -> None:
    leads = make_leads(600)
    source, ids = job_input(tmp_path, leads)
    report = tmp_path / "report.csv"
    with SandboxThread(leads, api_key=KEY) as sb:
        args = (source, "--base-url", sb.url, "--report", report, "--rate", "200")
        with running(start(*args, cwd=tmp_path)) as proc:
            wait_until(sb, lambda: applied(sb) >= 50, 20, "50 rows applied")
            assert proc.poll() is None, "the job ended before it could be interrupted"
            proc.send_signal(signal.SIGINT)
            code, out, err = finish(proc, timeout=10)
    assert code == 130, err
    assert "Traceback" not in err
    rows = read_run_report(report)
    assert 50 <= len(rows) < 600
    assert [int(r["row"]) for r in rows] == list(range(1, len(rows) + 1))
    assert [r["id"] for r in rows] == ids[: len(rows)]
    updated = [r["id"] for r in rows if r["status"] == "updated"]
    assert updated, out
    assert all(sb.state.applied_by_lead[lead_id] == 1 for lead_id in updated)
    # nothing beyond the rows read was sent
    assert set(sb.state.patches_by_lead) <= set(ids[: len(rows)])


def test_sigterm_waits_only_a_grace_period_for_requests_in_flight(tmp_path: Path) -> None:
    leads = make_leads(40)
    source, _ = job_input(tmp_path, leads)
    report = tmp_path / "report.csv"
    # Every answer takes 3 s: the requests in flight cannot finish within a 0.5 s grace.
    slow = FaultPlan(rate=1.0, kinds=("slow",), slow_seconds=3.0)
    with SandboxThread(leads, api_key=KEY, faults=slow) as sb:
        args = ("--base-url", sb.url, "--report", report, "--rate", "0", "--concurrency", "4")
        with running(start(source, *args, "--grace", "0.5", cwd=tmp_path)) as proc:
            wait_until(sb, lambda: sb.state.requests >= 4, 15, "4 requests in flight")
            proc.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            code, _, err = finish(proc, timeout=10)
            stop_time = time.monotonic() - signalled
    assert code == 143, err
    assert stop_time < 2.5, f"took {stop_time:.1f}s to stop with --grace 0.5"
    rows = read_run_report(report)
    assert rows, "the report was not flushed"
    assert [int(r["row"]) for r in rows] == list(range(1, len(rows) + 1))
    assert {r["status"] for r in rows} == {"aborted"}
    assert sum(sb.state.patches_by_lead.values()) == 4  # nothing new started after the signal


def test_row_aborted_while_in_flight_is_not_reported_as_never_sent(tmp_path: Path) -> None:
    """A request cut off after the grace period did reach the API (here it was even applied):
    its report line must not claim `attempts` 0 / "not sent", or the operator is misled."""
    leads = make_leads(8)
    source, _ = job_input(tmp_path, leads)
    report = tmp_path / "report.csv"
    slow = FaultPlan(rate=1.0, kinds=("slow",), slow_seconds=3.0)
    with SandboxThread(leads, api_key=KEY, faults=slow) as sb:
        args = ("--base-url", sb.url, "--report", report, "--rate", "0", "--concurrency", "2")
        with running(start(source, *args, "--grace", "0.2", cwd=tmp_path)) as proc:
            wait_until(sb, lambda: sb.state.requests >= 2, 15, "2 requests in flight")
            proc.send_signal(signal.SIGTERM)
            code, _, err = finish(proc, timeout=10)
        sent = set(sb.state.patches_by_lead)
    assert code == 143, err
    rows = {r["id"]: r for r in read_run_report(report)}
    assert len(sent) == 2
    for lead_id in sent:
        assert rows[lead_id]["status"] == "aborted"
        assert int(rows[lead_id]["attempts"]) >= 1, rows[lead_id]
        assert "not sent" not in rows[lead_id]["message"], rows[lead_id]

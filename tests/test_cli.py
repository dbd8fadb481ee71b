"""The `bulk-updater run` command as cron runs it: real subprocesses against the sandbox.

Every run here is `python -m bulk_updater run ...` in a child process, with pipes (not a terminal)
for its output, talking HTTP to a `SandboxThread` on loopback. Waiting is always on an event: the
sandbox's notification after each request (`wait_until`), or `proc.wait(timeout=...)`.
"""

from __future__ import annotations

import csv
import fcntl
import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from bulk_updater.sandbox import FaultPlan, SandboxThread

from .conftest import make_leads

KEY = "sk_live_7fQ2mX9pLr4TzW8cKj3N"
WRONG_KEY = "sk_live_WRONGwrong0Hq5Yv1Ue6Ds"
PLATFORM_KEY = "sk_user_4bN8cD2eF6gH0jK3"
STATUSES = ("updated", "not_found", "invalid", "rejected", "failed", "aborted", "skipped")
HEADER = ("id", "email", "jobTitle", "tags", "customFields.tier")
#: Anything but printable text and newlines: carriage returns, escapes, other C0/C1 controls.
CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")
SELECT_TIMEOUT = 0.05  # the terminal test's select(): wakes on output, or to check the deadline


# ---------------------------------------------------------------------------------------------
# helpers


def clean_env(**extra: str) -> dict[str, str]:
    """The parent's environment without any SENDKIT_* setting, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENDKIT_")}
    env.update(extra)
    return env


def command(*args: str | os.PathLike[str]) -> list[str]:
    return [sys.executable, "-m", "bulk_updater", "run", *map(str, args)]


class Result(NamedTuple):
    code: int
    out: str
    err: str


def cli(
    *args: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    cwd: Path,
    timeout: float = 30.0,
) -> Result:
    """Run the CLI to the end; its output, off a terminal, must be plain text."""
    done = subprocess.run(
        command(*args),
        env=clean_env(SENDKIT_API_KEY=KEY) if env is None else dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert_plain(done.stdout, done.stderr)
    return Result(done.returncode, done.stdout, done.stderr)


def start(
    *args: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    cwd: Path,
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command(*args),
        env=clean_env(SENDKIT_API_KEY=KEY) if env is None else dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@contextmanager
def running(proc: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    """Never leave a child behind, whatever the test does."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def finish(proc: subprocess.Popen[str], timeout: float) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate(timeout=10)
        pytest.fail(f"the run did not exit within {timeout}s; stderr: {err[-2000:]}")
    assert_plain(out, err)
    return proc.returncode, out, err


def assert_plain(*texts: str) -> None:
    for text in texts:
        bad = CONTROL.search(text)
        assert bad is None, f"control character {bad.group()!r} in output: {text[-500:]!r}"


def wait_until(sb: SandboxThread, condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Wait on the sandbox's own notifications (after every request) until `condition` holds."""
    if not sb.wait_until(condition, timeout):
        pytest.fail(f"timed out after {timeout}s waiting for {what}")


def applied(sb: SandboxThread) -> int:
    return sum(sb.state.applied_by_lead.values())


def update_row(index: int, lead_id: str) -> dict[str, str]:
    return {
        "id": lead_id,
        "email": f"lead{index}@example.com",
        "jobTitle": f"Title {index}",
        "tags": "vip;q3",
        "customFields.tier": f"t{index}",
    }


def write_csv(
    path: Path, rows: Sequence[Mapping[str, str]], header: Sequence[str] = HEADER
) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(header))
        writer.writeheader()
        writer.writerows(rows)
    return path


def job_input(
    tmp_path: Path, leads: Mapping[str, Any], name: str = "updates.csv"
) -> tuple[Path, list[str]]:
    """One update row per lead, in lead order; returns the file and the ids in row order."""
    ids = list(leads)
    write_csv(tmp_path / name, [update_row(i, lead_id) for i, lead_id in enumerate(ids)])
    return tmp_path / name, ids


def expected_lead(original: Mapping[str, Any], index: int) -> dict[str, Any]:
    lead = dict(original)
    lead["jobTitle"] = f"Title {index}"
    lead["tags"] = ["vip", "q3"]
    lead["customFields"] = {**original["customFields"], "tier": f"t{index}"}
    return lead


def read_report(path: Path) -> list[dict[str, str]]:
    """The report's records whose status is known (a killed run may leave a partial line)."""
    with open(path, encoding="utf-8-sig", newline="") as file:
        return [r for r in csv.DictReader(file) if r.get("status") in STATUSES]


def leaks(secret: str, out: str, err: str, folder: Path, skip: Sequence[Path] = ()) -> list[str]:
    """Where `secret` shows up: the output streams and every file under `folder`."""
    found = [name for name, text in (("stdout", out), ("stderr", err)) if secret in text]
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path not in skip and secret.encode() in path.read_bytes():
            found.append(str(path))
    return found


# ---------------------------------------------------------------------------------------------
# signals and --resume


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

        first = read_report(report)
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
        assert (tmp_path / "report.csv.meta.json").is_file()

        started = time.monotonic()
        code, out, err = cli(source, *base, "--rate", "300", "--resume", cwd=tmp_path)
        resume_time = time.monotonic() - started
        assert code == 0, out + err

        final = read_report(report)
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
    rows = read_report(report)
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
    rows = read_report(report)
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
    rows = {r["id"]: r for r in read_report(report)}
    assert len(sent) == 2
    for lead_id in sent:
        assert rows[lead_id]["status"] == "aborted"
        assert int(rows[lead_id]["attempts"]) >= 1, rows[lead_id]
        assert "not sent" not in rows[lead_id]["message"], rows[lead_id]


def rewrite_report(report: Path, lines: Sequence[tuple[int, str]], ids: Sequence[str]) -> None:
    """Replace a report's records by `(row, status)` lines, keeping the program's own header."""
    with open(report, encoding="utf-8-sig", newline="") as file:
        header = next(csv.reader(file))
    with open(report, "w", encoding="utf-8", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=header, lineterminator="\n")
        writer.writeheader()
        for row, status in lines:
            record = dict.fromkeys(header, "")
            record.update(row=str(row), id=ids[row - 1], status=status, attempts="1")
            writer.writerow(record)


def test_resume_sends_only_rows_whose_last_outcome_is_not_final(tmp_path: Path) -> None:
    leads = make_leads(10)
    source, ids = job_input(tmp_path, leads)
    report = tmp_path / "report.csv"
    with SandboxThread(leads, api_key=KEY) as sb:
        first = cli(source, "--base-url", sb.url, "--report", report, "--rate", "0", cwd=tmp_path)
        assert first.code == 0, first.out + first.err
    # What an earlier run could have left: every status, a row seen twice (the last line
    # wins), and rows it never reached (9 has a line, 10 does not).
    earlier = [
        (1, "updated"),
        (2, "not_found"),
        (3, "invalid"),
        (4, "rejected"),
        (5, "skipped"),
        (6, "failed"),
        (7, "aborted"),
        (8, "failed"),
        (9, "updated"),
        (8, "updated"),
        (9, "failed"),
    ]
    rewrite_report(report, earlier, ids)
    with SandboxThread(leads, api_key=KEY) as sb:
        code, out, err = cli(
            source,
            "--base-url",
            sb.url,
            "--report",
            report,
            "--rate",
            "0",
            "--resume",
            cwd=tmp_path,
        )
        sent_rows = sorted(ids.index(lead_id) + 1 for lead_id in sb.state.patches_by_lead)
        assert all(n == 1 for n in sb.state.patches_by_lead.values())
    assert sent_rows == [6, 7, 9, 10], out + err
    # every row sent now was updated, but the report still holds the earlier run's problems
    assert code == 1, out + err
    assert "skipped rows, as the earlier run left them: updated 2, not_found 1" in out
    final = read_report(report)
    assert [int(r["row"]) for r in final] == list(range(1, 11))
    assert [r["status"] for r in final] == [
        "updated",
        "not_found",
        "invalid",
        "rejected",
        "skipped",
        "updated",
        "updated",
        "updated",
        "updated",
        "updated",
    ]


def test_resume_refuses_an_input_that_changed(tmp_path: Path) -> None:
    leads = make_leads(5)
    source, ids = job_input(tmp_path, leads)
    report = tmp_path / "report.csv"
    with SandboxThread(leads, api_key=KEY) as sb:
        args = ("--base-url", sb.url, "--report", report, "--rate", "0")
        assert cli(source, *args, cwd=tmp_path)[0] == 0
        assert (tmp_path / "report.csv.meta.json").is_file()
        before = report.read_bytes()
        requests = sb.state.requests
        rows = [update_row(i, lead_id) for i, lead_id in enumerate(ids)]
        rows[2]["jobTitle"] = "Changed"
        write_csv(source, rows)
        code, out, err = cli(source, *args, "--resume", cwd=tmp_path)
        assert sb.state.requests == requests
    assert code == 2, out + err
    assert str(report) in err
    assert "resume" in err
    assert "Traceback" not in err
    assert report.read_bytes() == before


def test_same_resume_command_every_night_starts_then_does_nothing(tmp_path: Path) -> None:
    """Cron runs one fixed command line: --resume on a report that does not exist yet starts the
    job; once the job is done, the next run sends nothing and keeps the report as it was."""
    leads = make_leads(6)
    source, ids = job_input(tmp_path, leads)
    report = tmp_path / "report.csv"
    with SandboxThread(leads, api_key=KEY) as sb:
        args = (source, "--base-url", sb.url, "--report", report, "--rate", "0", "--resume")
        assert cli(*args, cwd=tmp_path).code == 0
        assert sb.state.requests == 6
        before = [(r["row"], r["id"], r["status"]) for r in read_report(report)]
        code, out, err = cli(*args, cwd=tmp_path)
        assert sb.state.requests == 6
    assert code == 0, out + err
    assert before == [(str(i + 1), lead_id, "updated") for i, lead_id in enumerate(ids)]
    assert [(r["row"], r["id"], r["status"]) for r in read_report(report)] == before


# ---------------------------------------------------------------------------------------------
# the report lock


def test_second_run_on_the_same_report_exits_75_at_once(tmp_path: Path) -> None:
    leads = make_leads(200)
    source, _ = job_input(tmp_path, leads)
    report = tmp_path / "report.csv"
    with SandboxThread(leads, api_key=KEY) as sb:
        args = ("--base-url", sb.url, "--report", report, "--rate", "20")
        with running(start(source, *args, cwd=tmp_path)) as first:
            # a request means the first run holds the lock: it takes it before sending anything
            wait_until(sb, lambda: sb.state.requests >= 2, 15, "the first run's requests")
            for extra in ((), ("--resume",)):
                started = time.monotonic()
                code, out, err = cli(source, *args, *extra, cwd=tmp_path)
                assert code == 75, out + err
                assert time.monotonic() - started < 5.0
                assert str(report) in err
            assert first.poll() is None
            first.send_signal(signal.SIGTERM)
            assert finish(first, timeout=10)[0] == 143
        # the second runs sent nothing: no lead got a second PATCH
        assert max(sb.state.patches_by_lead.values()) == 1
    assert report.read_text("utf-8-sig").startswith("row,")


def test_lock_held_elsewhere_blocks_and_a_released_lock_file_does_not(tmp_path: Path) -> None:
    leads = make_leads(5)
    source, _ = job_input(tmp_path, leads)
    report = tmp_path / "out" / "report.csv"
    report.parent.mkdir()
    with SandboxThread(leads, api_key=KEY) as sb:
        args = (source, "--base-url", sb.url, "--report", report, "--rate", "0")
        with open(tmp_path / "out" / "report.csv.lock", "a+") as holder:
            fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
            code, out, err = cli(*args, cwd=tmp_path)
            assert code == 75, out + err
            assert str(report) in err
            assert sb.state.requests == 0
            assert not report.exists()
        # the lock file is still there, but nobody holds it
        assert (tmp_path / "out" / "report.csv.lock").exists()
        code, out, err = cli(*args, cwd=tmp_path)
        assert code == 0, out + err
        assert sum(sb.state.applied_by_lead.values()) == 5


def test_lock_left_by_a_killed_run_does_not_block_the_resume(tmp_path: Path) -> None:
    leads = make_leads(300)
    source, ids = job_input(tmp_path, leads)
    report = tmp_path / "report.csv"
    with SandboxThread(leads, api_key=KEY) as sb:
        args = ("--base-url", sb.url, "--report", report)
        with running(start(source, *args, "--rate", "100", cwd=tmp_path)) as proc:
            wait_until(sb, lambda: applied(sb) >= 20, 15, "20 rows applied")
            proc.kill()
            proc.wait(timeout=10)
        assert (tmp_path / "report.csv.lock").exists()
        done_before = {r["id"] for r in read_report(report) if r["status"] == "updated"}
        assert done_before
        code, out, err = cli(source, *args, "--rate", "0", "--resume", cwd=tmp_path)
        assert code == 0, out + err
        final = read_report(report)
        assert [int(r["row"]) for r in final] == list(range(1, 301))
        assert {r["status"] for r in final} == {"updated"}
        assert all(sb.state.applied_by_lead[lead_id] >= 1 for lead_id in ids)
        assert all(sb.state.patches_by_lead[lead_id] == 1 for lead_id in done_before)


# ---------------------------------------------------------------------------------------------
# output: progress, -q, --summary-json, --dry-run


def mixed_input(tmp_path: Path, leads: Mapping[str, Any]) -> Path:
    ids = list(leads)
    rows = [update_row(i, lead_id) for i, lead_id in enumerate(ids)]
    rows.append(update_row(90, "ffffffffffffffffffffffff"))  # no such lead
    rows.append(update_row(91, "not/a/plain/id"))  # invalid, never sent
    return write_csv(tmp_path / "mixed.csv", rows)


def test_summary_json_counts_by_status_and_exit_1_for_problem_rows(tmp_path: Path) -> None:
    leads = make_leads(3)
    source = mixed_input(tmp_path, leads)
    summary = tmp_path / "summary.json"
    with SandboxThread(leads, api_key=KEY) as sb:
        code, out, err = cli(
            source, "--base-url", sb.url, "--rate", "0", "--summary-json", summary, cwd=tmp_path
        )
        assert sb.state.stray == []
    assert code == 1, out + err
    counts = json.loads(summary.read_text())["counts"]
    assert counts == {
        "updated": 3,
        "not_found": 1,
        "invalid": 1,
        "rejected": 0,
        "failed": 0,
        "aborted": 0,
        "skipped": 0,
    }
    statuses = [r["status"] for r in read_report(tmp_path / "mixed.csv.report.csv")]
    assert statuses == ["updated", "updated", "updated", "not_found", "invalid"]


def test_quiet_success_prints_nothing(tmp_path: Path) -> None:
    leads = make_leads(5)
    source, _ = job_input(tmp_path, leads)
    with SandboxThread(leads, api_key=KEY) as sb:
        code, out, err = cli(source, "--base-url", sb.url, "--rate", "0", "-q", cwd=tmp_path)
        assert sum(sb.state.applied_by_lead.values()) == 5
    assert code == 0
    assert (out, err) == ("", "")


def test_live_progress_only_on_a_terminal(tmp_path: Path) -> None:
    """The counterpart of the plain-output checks: on a terminal the bar redraws itself."""
    leads = make_leads(40)
    source, _ = job_input(tmp_path, leads)
    master, slave = pty.openpty()
    with SandboxThread(leads, api_key=KEY) as sb:
        proc = subprocess.Popen(
            command(source, "--base-url", sb.url, "--rate", "40"),
            env=clean_env(SENDKIT_API_KEY=KEY),
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=slave,
            text=True,
        )
        os.close(slave)
        with running(proc):
            chunks = []
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if not select.select([master], [], [], SELECT_TIMEOUT)[0]:
                    continue
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            assert proc.wait(timeout=15) == 0
    os.close(master)
    assert b"\r" in b"".join(chunks)


def test_dry_run_validates_and_sends_nothing(tmp_path: Path) -> None:
    leads = make_leads(3)
    source, ids = job_input(tmp_path, leads)
    with SandboxThread(leads, api_key=KEY) as sb:
        code, out, err = cli(source, "--base-url", sb.url, "--dry-run", cwd=tmp_path)
        assert sb.state.requests == 0
    assert code == 0, out + err
    assert f"/v1/leads/{ids[0]}" in out
    assert '"jobTitle": "Title 0"' in out  # an example body
    assert re.search(r"\b3\b", out)  # the count of valid rows


def test_dry_run_with_an_invalid_row_exits_1_and_sends_nothing(tmp_path: Path) -> None:
    leads = make_leads(3)
    source = mixed_input(tmp_path, leads)
    with SandboxThread(leads, api_key=KEY) as sb:
        code, out, err = cli(source, "--base-url", sb.url, "--dry-run", cwd=tmp_path)
        assert sb.state.requests == 0
    assert code == 1, out + err
    assert "row 5" in out


# ---------------------------------------------------------------------------------------------
# pacing


def test_job_at_the_sandbox_rate_gets_no_429(tmp_path: Path) -> None:
    leads = make_leads(60)
    source, ids = job_input(tmp_path, leads)
    summary = tmp_path / "summary.json"
    with SandboxThread(leads, api_key=KEY, rate=20) as sb:
        args = ("--base-url", sb.url, "--rate", "20", "--summary-json", summary)
        code, out, err = cli(source, *args, cwd=tmp_path)
        assert sb.state.rate_limited == 0
        assert all(sb.state.patches_by_lead[lead_id] == 1 for lead_id in ids)
    assert code == 0, out + err
    data = json.loads(summary.read_text())
    assert data["rate_limited"] == 0
    assert data["counts"]["updated"] == 60


# ---------------------------------------------------------------------------------------------
# usage and input errors: exit 2 before any request


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("unknown.csv", "id,jobtitle\n000000000000000000000000,CTO\n", ["jobtitle", "jobTitle"]),
        ("noid.csv", "email,jobTitle\na@example.com,CTO\n", ["id"]),
        ("missing.csv", None, ["missing.csv"]),
    ],
)
def test_input_errors_exit_2_before_any_request(
    tmp_path: Path, name: str, content: str | None, expected: list[str]
) -> None:
    if content is not None:
        (tmp_path / name).write_text(content, encoding="utf-8")
    with SandboxThread(make_leads(1), api_key=KEY) as sb:
        code, out, err = cli(tmp_path / name, "--base-url", sb.url, cwd=tmp_path)
        assert sb.state.requests == 0
    assert code == 2, out + err
    assert "Traceback" not in err
    for word in expected:
        assert word in err


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--rate", "-1"), "rate"),
        (("--concurrency", "0"), "concurrency"),
        (("--report", "out.txt"), "out.txt"),
        (("--no-such-flag",), "no-such-flag"),
    ],
)
def test_bad_settings_exit_2_before_any_request(
    tmp_path: Path, args: tuple[str, ...], expected: str
) -> None:
    source, _ = job_input(tmp_path, make_leads(2))
    with SandboxThread(make_leads(2), api_key=KEY) as sb:
        code, out, err = cli(source, "--base-url", sb.url, *args, cwd=tmp_path)
        assert sb.state.requests == 0
    assert code == 2, out + err
    assert expected in err
    assert "Traceback" not in err


def test_stdin_cannot_be_resumed(tmp_path: Path) -> None:
    lead_id = next(iter(make_leads(1)))
    with SandboxThread(make_leads(1), api_key=KEY) as sb:
        done = subprocess.run(
            command("-", "--format", "csv", "--resume", "--base-url", sb.url),
            env=clean_env(SENDKIT_API_KEY=KEY),
            cwd=tmp_path,
            input=f"id,jobTitle\n{lead_id},CTO\n",
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert sb.state.requests == 0
    assert done.returncode == 2, done.stdout + done.stderr
    assert "resume" in done.stderr
    assert "Traceback" not in done.stderr


# ---------------------------------------------------------------------------------------------
# the key, the base URL, the workspace


def test_no_key_exits_2_with_a_clear_message(tmp_path: Path) -> None:
    leads = make_leads(2)
    source, _ = job_input(tmp_path, leads)
    (tmp_path / "empty.key").write_text("\n")
    with SandboxThread(leads, api_key=KEY) as sb:
        code, out, err = cli(source, "--base-url", sb.url, env=clean_env(), cwd=tmp_path)
        assert code == 2, out + err
        assert "SENDKIT_API_KEY" in err
        code, out, err = cli(
            source,
            "--base-url",
            sb.url,
            "--api-key-file",
            tmp_path / "empty.key",
            env=clean_env(),
            cwd=tmp_path,
        )
        assert code == 2, out + err
        assert "empty.key" in err
        assert sb.state.requests == 0


def test_key_from_a_file(tmp_path: Path) -> None:
    leads = make_leads(3)
    source, _ = job_input(tmp_path, leads)
    key_file = tmp_path / "sendkit.key"
    key_file.write_text(KEY + "\n")
    with SandboxThread(leads, api_key=KEY) as sb:
        code, out, err = cli(
            source,
            "--base-url",
            sb.url,
            "--rate",
            "0",
            "--api-key-file",
            key_file,
            env=clean_env(),
            cwd=tmp_path,
        )
        assert sum(sb.state.applied_by_lead.values()) == 3
    assert code == 0, out + err


@pytest.mark.parametrize("scenario", ["accepted", "refused", "from_file"])
def test_key_appears_in_nothing_the_program_writes(tmp_path: Path, scenario: str) -> None:
    leads = make_leads(20)
    source = mixed_input(tmp_path, leads)
    key = WRONG_KEY if scenario == "refused" else KEY
    env = clean_env(SENDKIT_API_KEY=key)
    extra: tuple[str | Path, ...] = ()
    key_file = tmp_path / "secret" / "key.txt"
    if scenario == "from_file":
        key_file.parent.mkdir()
        key_file.write_text(key)
        env = clean_env()
        extra = ("--api-key-file", key_file)
    with SandboxThread(leads, api_key=KEY) as sb:
        code, out, err = cli(
            source,
            "--base-url",
            sb.url,
            "--rate",
            "0",
            "-v",
            "--summary-json",
            tmp_path / "summary.json",
            *extra,
            env=env,
            cwd=tmp_path,
        )
    assert code == (3 if scenario == "refused" else 1), out + err
    assert (tmp_path / "mixed.csv.report.csv.meta.json").is_file()
    assert (tmp_path / "summary.json").is_file()
    assert leaks(key, out, err, tmp_path, skip=[key_file]) == []


def test_refused_key_stops_the_job_with_exit_3(tmp_path: Path) -> None:
    leads = make_leads(200)
    source, ids = job_input(tmp_path, leads)
    report = tmp_path / "report.csv"
    env = clean_env(SENDKIT_API_KEY=WRONG_KEY)
    with SandboxThread(leads, api_key=KEY) as sb:
        args = ("--base-url", sb.url, "--report", report, "--rate", "0", "--concurrency", "4")
        code, out, err = cli(source, *args, env=env, cwd=tmp_path)
        assert sb.state.requests <= 4  # at most the requests already in flight
        assert sum(sb.state.applied_by_lead.values()) == 0
        quiet = cli(source, *args, "-q", env=env, cwd=tmp_path)
    assert code == 3, out + err
    assert "refused" in out + err
    rows = read_report(report)
    assert [r["id"] for r in rows] == ids
    assert {r["status"] for r in rows} == {"aborted"}
    assert quiet.code == 3
    assert "refused" in quiet.err


@pytest.mark.parametrize(
    ("flag", "env_url"),
    [
        (("--base-url", "http://api.sendkit.ai"), None),
        ((), "http://10.1.2.3:8080"),
    ],
)
def test_plain_http_to_a_remote_host_is_refused(
    tmp_path: Path, flag: tuple[str, ...], env_url: str | None
) -> None:
    source, _ = job_input(tmp_path, make_leads(2))
    env = clean_env(SENDKIT_API_KEY=KEY)
    if env_url is not None:
        env["SENDKIT_BASE_URL"] = env_url
    code, out, err = cli(source, *flag, env=env, cwd=tmp_path, timeout=15)
    assert code == 2, out + err
    assert "http" in err
    assert "Traceback" not in err
    assert not (tmp_path / "updates.csv.report.csv").exists()


@pytest.mark.parametrize("how", ["none", "flag", "env"])
def test_workspace_id_is_sent_for_a_platform_key(tmp_path: Path, how: str) -> None:
    leads = make_leads(4)
    source, _ = job_input(tmp_path, leads)
    env = clean_env(SENDKIT_API_KEY=PLATFORM_KEY)
    extra: tuple[str, ...] = ()
    if how == "flag":
        extra = ("--workspace-id", "ws_123")
    elif how == "env":
        env["SENDKIT_WORKSPACE_ID"] = "ws_123"
    with SandboxThread(leads, api_key=PLATFORM_KEY) as sb:
        code, out, err = cli(
            source, "--base-url", sb.url, "--rate", "0", *extra, env=env, cwd=tmp_path
        )
        applied = sum(sb.state.applied_by_lead.values())
        refused = sb.state.auth_failures
    if how == "none":
        assert code == 3, out + err
        assert "refused" in out + err
        assert (applied, refused > 0) == (0, True)
    else:
        assert code == 0, out + err
        assert (applied, refused) == (4, 0)


@pytest.mark.parametrize(
    "what", ["key_file_with_two_lines", "key_with_control_char", "workspace_id"]
)
def test_header_values_that_cannot_be_sent_are_a_usage_error(tmp_path: Path, what: str) -> None:
    """A key file with a second line, a control character in the key or a line break in the
    workspace id cannot go into an HTTP header: exit 2 with a message, no crash, no hang."""
    leads = make_leads(3)
    source, _ = job_input(tmp_path, leads)
    key_file = tmp_path / "sendkit.key"
    key_file.write_text(KEY + "\n# production key, rotated 2026-01\n")
    env = clean_env(SENDKIT_API_KEY=KEY)
    extra: tuple[str | Path, ...] = ()
    if what == "key_file_with_two_lines":
        env, extra = clean_env(), ("--api-key-file", key_file)
    elif what == "key_with_control_char":
        env = clean_env(SENDKIT_API_KEY=KEY[:8] + "\x01" + KEY[8:])
    else:
        extra = ("--workspace-id", "ws_1\nX-Injected: 1")
    with SandboxThread(leads, api_key=KEY) as sb:
        with running(start(source, "--base-url", sb.url, *extra, env=env, cwd=tmp_path)) as proc:
            code, out, err = finish(proc, timeout=15)
        assert sum(sb.state.applied_by_lead.values()) == 0
    assert code == 2, out + err
    assert "Traceback" not in err
    assert ("workspace" if what == "workspace_id" else "key") in err.lower()
    assert KEY[8:] not in out + err


# ---------------------------------------------------------------------------------------------
# outputs that would destroy the input or cannot be written; input read only once


def test_report_that_is_the_input_is_refused(tmp_path: Path) -> None:
    source, _ = job_input(tmp_path, make_leads(3))
    before = source.read_bytes()
    with SandboxThread(make_leads(3), api_key=KEY) as sb:
        code, out, err = cli(source, "--base-url", sb.url, "--report", source, cwd=tmp_path)
        assert sb.state.requests == 0
    assert code == 2, out + err
    assert "is the input file" in err
    assert source.read_bytes() == before


@pytest.mark.parametrize("flag", ["--report", "--summary-json"])
def test_output_in_a_missing_folder_exits_2_before_any_request(tmp_path: Path, flag: str) -> None:
    source, _ = job_input(tmp_path, make_leads(3))
    target = tmp_path / "no" / "such" / ("out.csv" if flag == "--report" else "s.json")
    with SandboxThread(make_leads(3), api_key=KEY) as sb:
        code, out, err = cli(source, "--base-url", sb.url, flag, target, cwd=tmp_path)
        assert sb.state.requests == 0
    assert code == 2, out + err
    assert "does not exist" in err
    assert "Traceback" not in err


def test_input_from_a_pipe_is_read_whole_and_cannot_be_resumed(tmp_path: Path) -> None:
    leads = make_leads(2000)
    fifo = tmp_path / "updates.fifo"
    os.mkfifo(fifo)
    body = "id,jobTitle\n" + "".join(f"{lead_id},Piped\n" for lead_id in leads)

    def feed_the_pipe() -> subprocess.Popen[bytes]:
        script = f"open({str(fifo)!r}, 'w').write({body!r})"
        return subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.DEVNULL)

    with SandboxThread(leads, api_key=KEY) as sb:
        writer = feed_the_pipe()
        code, out, err = cli(
            fifo, "--format", "csv", "--base-url", sb.url, "--rate", "0",
            "--report", tmp_path / "r.csv", cwd=tmp_path,
        )  # fmt: skip
        writer.wait(timeout=30)
        assert sum(sb.state.applied_by_lead.values()) == 2000
        assert all(lead["jobTitle"] == "Piped" for lead in sb.state.leads.values())
        writer = feed_the_pipe()
        refused = cli(fifo, "--format", "csv", "--resume", "--base-url", sb.url, cwd=tmp_path)
        writer.kill()
        writer.wait(timeout=30)
        assert sum(sb.state.applied_by_lead.values()) == 2000
    assert code == 0, out + err
    assert len(read_report(tmp_path / "r.csv")) == 2000
    assert refused.code == 2
    assert "can be read again" in refused.err

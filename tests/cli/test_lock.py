"""The report lock: one run per report (exit 75), a lock held elsewhere, a lock left by a kill."""

from __future__ import annotations

import fcntl
import signal
import time
from pathlib import Path

from bulk_updater.sandbox import SandboxThread
from tests.cli.conftest import (
    KEY,
    applied,
    cli,
    finish,
    job_input,
    read_run_report,
    running,
    start,
    wait_until,
)
from tests.conftest import make_leads


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


def test_lock_held_elsewhere_blocks_and_nothing_beside_the_report_matters(
    tmp_path: Path,
) -> None:
    """The lock is on the report itself: held elsewhere, the run exits 75 and leaves it as it
    was; a hidden `.report.csv.lock` of an older version, held or not, changes nothing."""
    leads = make_leads(5)
    source, _ = job_input(tmp_path, leads)
    report = tmp_path / "out" / "report.csv"
    report.parent.mkdir()
    report.write_text("another run's report\n")
    with SandboxThread(leads, api_key=KEY) as sb:
        args = (source, "--base-url", sb.url, "--report", report, "--rate", "0")
        with open(report, "a+") as holder:
            fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
            code, out, err = cli(*args, cwd=tmp_path)
            assert code == 75, out + err
            assert str(report) in err
            assert sb.state.requests == 0
            assert report.read_text() == "another run's report\n"
        with open(tmp_path / "out" / ".report.csv.lock", "a+") as old:
            fcntl.flock(old, fcntl.LOCK_EX | fcntl.LOCK_NB)
            code, out, err = cli(*args, cwd=tmp_path)
        assert code == 0, out + err
        assert sum(sb.state.applied_by_lead.values()) == 5


def test_lock_left_by_a_killed_run_does_not_block_the_resume(tmp_path: Path) -> None:
    leads = make_leads(300)
    source, ids = job_input(tmp_path, leads)
    report = tmp_path / "report.csv"
    with SandboxThread(leads, api_key=KEY) as sb:
        args = ("--base-url", sb.url, "--report", report)
        with running(start(source, *args, "--rate", "100", killed=True, cwd=tmp_path)) as proc:
            wait_until(sb, lambda: applied(sb) >= 20, 15, "20 rows applied")
            proc.kill()
            proc.wait(timeout=10)
        # nothing beside the report: the lock was the report's own, dropped with the process
        beside = sorted(p.name for p in tmp_path.iterdir())
        assert beside == sorted([source.name, "report.csv"])
        done_before = {r["id"] for r in read_run_report(report) if r["status"] == "updated"}
        assert done_before
        code, out, err = cli(source, *args, "--rate", "0", "--resume", cwd=tmp_path)
        assert code == 0, out + err
        final = read_run_report(report)
        assert [int(r["row"]) for r in final] == list(range(1, 301))
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted([source.name, "report.csv"])
        assert {r["status"] for r in final} == {"updated"}
        assert all(sb.state.applied_by_lead[lead_id] >= 1 for lead_id in ids)
        assert all(sb.state.patches_by_lead[lead_id] == 1 for lead_id in done_before)


def test_the_next_nights_run_of_the_same_input_exits_75_while_one_runs(tmp_path: Path) -> None:
    """The cron line names its report by date, so the report's lock never meets the next night's
    run: the input's own lock does, and the older export cannot land after the newer one."""
    leads = make_leads(200)
    source, _ = job_input(tmp_path, leads, name="nightly.csv")
    link = tmp_path / "link.csv"
    link.symlink_to(source)
    with SandboxThread(leads, api_key=KEY) as sb:
        night = ("--base-url", sb.url, "--resume", "-q")
        day1 = ("--report", tmp_path / "day1.csv", "--rate", "20")
        with running(start(source, *night, *day1, cwd=tmp_path)) as first:
            wait_until(sb, lambda: sb.state.requests >= 2, 15, "the first night's requests")
            for name, report in ((source, "day2.csv"), (link, "day3.csv")):
                code, out, err = cli(name, *night, "--report", tmp_path / report, cwd=tmp_path)
                assert code == 75, out + err
                assert f"{name}: another run is sending this input to {sb.url}" in err
                assert not (tmp_path / report).exists()
            assert first.poll() is None
            first.send_signal(signal.SIGTERM)
            assert finish(first, timeout=10)[0] == 143
        assert max(sb.state.patches_by_lead.values()) == 1
        code, out, err = cli(source, *night, "--report", tmp_path / "day2.csv", cwd=tmp_path)
        assert code == 0, out + err  # the lock went with the run

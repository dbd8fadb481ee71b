"""`--skip-unchanged` under stress: two runs on one state file at once, another process holding
its lock, and a run killed with SIGKILL then run again."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from pathlib import Path

from bulk_updater.sandbox import SandboxThread
from tests.cli.conftest import (
    KEY,
    applied,
    cli,
    expected_lead,
    finish,
    job_input,
    running,
    start,
    update_row,
    wait_until,
)
from tests.conftest import integrity, make_leads, remembered, write_csv


def _expected_fields(index: int) -> dict[str, object]:
    return {"jobTitle": f"Title {index}", "tags": ["vip", "q3"], "customFields.tier": f"t{index}"}


def test_two_runs_on_one_state_file_at_once(tmp_path: Path) -> None:
    leads = make_leads(800)
    ids = list(leads)
    state = tmp_path / "state.sqlite3"
    header = ("id", "email", "jobTitle", "tags", "customFields.tier")
    halves = []
    for part, chunk in enumerate((ids[:400], ids[400:])):
        rows = [update_row(ids.index(lead), lead) for lead in chunk]
        halves.append(write_csv(tmp_path / f"part{part}.csv", header, rows))
    with SandboxThread(leads, api_key=KEY) as sb:
        base = ("--base-url", sb.url, "--rate", "150", "--skip-unchanged", "--state", state)
        with (
            running(start(halves[0], *base, cwd=tmp_path)) as one,
            running(start(halves[1], *base, cwd=tmp_path)) as two,
        ):
            results = [finish(one, timeout=60), finish(two, timeout=60)]
        for code, out, err in results:
            assert code == 0, out + err
        held = remembered(state)
        assert held == {lead: _expected_fields(n) for n, lead in enumerate(ids)}
        assert integrity(state) == "ok"
        sb.state.patches_by_lead.clear()
        for half in halves:
            code, out, err = cli(half, *base, cwd=tmp_path)
            assert code == 0, out + err
            assert "unchanged 400" in out
        assert sum(sb.state.patches_by_lead.values()) == 0


def test_a_run_waits_for_another_process_holding_the_lock_and_says_so(tmp_path: Path) -> None:
    leads = make_leads(5)
    source, _ = job_input(tmp_path, leads)
    state = tmp_path / "state.sqlite3"
    with SandboxThread(leads, api_key=KEY) as sb:
        base = ("--base-url", sb.url, "--skip-unchanged", "--state", state)
        code, out, err = cli(source, *base, cwd=tmp_path)
        assert code == 0, out + err
        other = sqlite3.connect(state, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        with running(start(source, *base, cwd=tmp_path)) as proc:
            waiting = threading.Event()
            lines: list[str] = []

            def read() -> None:
                assert proc.stderr is not None
                for line in proc.stderr:
                    lines.append(line)
                    if "waiting for another process" in line:
                        waiting.set()

            reader = threading.Thread(target=read, daemon=True)
            reader.start()
            assert waiting.wait(timeout=30), lines
            other.execute("ROLLBACK")
            other.close()
            assert proc.wait(timeout=30) == 0
            reader.join(timeout=10)
        warning = next(line for line in lines if "waiting" in line)
        assert warning.startswith("bulk-updater: warning: state: waiting for another process")


def test_sigkill_mid_run_then_a_rerun_leaves_every_lead_with_its_rows_values(
    tmp_path: Path,
) -> None:
    """The state file is never left unreadable; what it lost (the last moments) is sent again."""
    leads = make_leads(2000)
    source, ids = job_input(tmp_path, leads)
    state = tmp_path / "state.sqlite3"
    rate = 300
    with SandboxThread(leads, api_key=KEY) as sb:
        base = ("--base-url", sb.url, "--skip-unchanged", "--state", state)
        with running(start(source, *base, "--rate", str(rate), killed=True, cwd=tmp_path)) as proc:
            wait_until(sb, lambda: applied(sb) >= 900, 60, "900 rows applied")
            assert proc.poll() is None, "the run ended before it could be killed"
            proc.kill()
            proc.wait(timeout=10)
        at_kill = applied(sb)
        assert integrity(state) == "ok"
        held = remembered(state)
        for lead, fields in held.items():  # only values the API accepted are remembered
            assert fields == _expected_fields(ids.index(lead))
        assert at_kill - len(held) <= rate * 3, (at_kill, len(held))  # seconds, not more

        sb.state.patches_by_lead.clear()
        report = tmp_path / "again.report.csv"
        code, out, err = cli(source, *base, "--rate", "0", "--report", report, cwd=tmp_path)
        assert code == 0, out + err
        assert set(sb.state.patches_by_lead) == set(ids) - set(held)
        for index, lead in enumerate(ids):
            assert sb.state.leads[lead] == {
                **expected_lead(leads[lead], index),
                "updatedAt": sb.state.leads[lead]["updatedAt"],
            }
    assert len(remembered(state)) == 2000
    with contextlib.closing(sqlite3.connect(state)) as db:
        runs = db.execute("SELECT finished_at IS NULL FROM runs ORDER BY id").fetchall()
    assert runs == [(1,), (0,)]  # the killed run never finished

"""`--skip-unchanged` under stress: two runs on one state file at once, another process holding
its lock, and a run killed with SIGKILL then run again."""

from __future__ import annotations

import contextlib
import socket
import sqlite3
import threading
from pathlib import Path

from bulk_updater.sandbox import FaultPlan, SandboxThread
from tests.cli.conftest import (
    KEY,
    applied,
    cli,
    expected_lead,
    finish,
    job_input,
    running,
    start,
    wait_until,
)
from tests.conftest import integrity, make_leads, remembered, write_csv


def _expected_fields(index: int) -> dict[str, object]:
    return {"jobTitle": f"Title {index}", "tags": ["vip", "q3"], "customFields.tier": f"t{index}"}


def test_two_runs_on_one_state_file_at_once(tmp_path: Path) -> None:
    """Run A sets TitleA on 400 leads while run B would set TitleB on the same leads: B exits 75
    before any request, with one line; once A is stopped B runs, and a rerun of A sends every row
    (the API holds TitleB): the state never skips a row the API does not hold."""
    leads = make_leads(400)
    ids = list(leads)
    state = tmp_path / "state.sqlite3"
    header = ("id", "jobTitle")
    inputs = {
        run: write_csv(tmp_path / f"{run}.csv", header, [(lead, f"Title{run}") for lead in ids])
        for run in "AB"
    }
    with SandboxThread(leads, api_key=KEY) as sb:
        base = ("--base-url", sb.url, "--skip-unchanged", "--state", state)
        summary = tmp_path / "B.summary.json"
        with running(start(inputs["A"], *base, "--rate", "20", cwd=tmp_path)) as one:
            wait_until(sb, lambda: applied(sb) >= 5, 60, "run A under way")
            code, out, err = cli(inputs["B"], *base, "--summary-json", summary, cwd=tmp_path)
            assert one.poll() is None, "run A ended before run B was refused"
            assert code == 75, out + err
            assert err == (
                f"bulk-updater: error: {state}: another run is using this state file (pid "
                f"{one.pid}); try again once it is done\n"
            )
            assert not summary.exists()  # refused a lock: the file may be the running job's
            assert all(lead["jobTitle"] != "TitleB" for lead in sb.state.leads.values())
            one.terminate()  # 20 s of run A are not needed: what it set is remembered
            code, out, err = finish(one, timeout=60)
            assert code == 143, out + err
        for run, title in (("B", "TitleB"), ("A", "TitleA")):
            code, out, err = cli(inputs[run], *base, "--rate", "0", cwd=tmp_path)
            assert code == 0, out + err
            assert "updated 400" in out  # nothing skipped: the API held the other title
            assert {lead["jobTitle"] for lead in sb.state.leads.values()} == {title}
            assert remembered(state) == {lead: {"jobTitle": title} for lead in ids}
        assert integrity(state) == "ok"
        assert not state.with_name(state.name + ".lock").exists()


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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_sigkill_with_requests_in_flight_then_a_night_going_back_sends_them(
    tmp_path: Path,
) -> None:
    """Review 6, S1: night 1 sets Y on leads remembered at X; the API applies every PATCH but
    answers none, and the run is killed with SIGKILL once all are applied. The file must not say
    X for them: night 2, back to X, sends every row, and the leads end with X."""
    leads = make_leads(20)
    ids = list(leads)
    port = _free_port()  # one base URL for the three nights: the state file is the account's
    nights = {
        title: write_csv(tmp_path / f"{title}.csv", ("id", "jobTitle"), [(i, title) for i in ids])
        for title in "XY"
    }
    state = tmp_path / "state.sqlite3"

    def base(sb: SandboxThread) -> tuple[object, ...]:
        return ("--base-url", sb.url, "--rate", "0", "--skip-unchanged", "--state", state)

    with SandboxThread(leads, api_key=KEY, port=port) as sb:
        code, out, err = cli(nights["X"], *base(sb), cwd=tmp_path)
        assert code == 0, out + err
        leads = sb.state.leads
    late = FaultPlan(rate=1.0, kinds=("slow",), slow_seconds=10)  # applied, answered late
    with SandboxThread(leads, api_key=KEY, port=port, faults=late) as sb:
        night1 = start(nights["Y"], *base(sb), "--concurrency", "20", killed=True, cwd=tmp_path)
        with running(night1) as proc:
            wait_until(sb, lambda: applied(sb) == len(ids), 60, "every row applied")
            proc.kill()
            proc.wait(timeout=10)
        assert all(lead["jobTitle"] == "Y" for lead in sb.state.leads.values())
        leads = sb.state.leads
    assert all(fields.get("jobTitle") != "X" for fields in remembered(state).values())
    with SandboxThread(leads, api_key=KEY, port=port) as sb:
        code, out, err = cli(nights["X"], *base(sb), cwd=tmp_path)
        assert code == 0, out + err
        assert f"updated {len(ids)}" in out
        assert all(lead["jobTitle"] == "X" for lead in sb.state.leads.values())


def test_a_damaged_entry_is_sent_again_and_rewritten(tmp_path: Path) -> None:
    """`UPDATE leads SET fields='oops'`: no traceback, the rows of that lead sent and
    remembered afresh, the others unchanged; the next run is all unchanged."""
    leads = make_leads(20)
    source, ids = job_input(tmp_path, leads)
    state = tmp_path / "state.sqlite3"
    with SandboxThread(leads, api_key=KEY) as sb:
        base = ("--base-url", sb.url, "--rate", "0", "--skip-unchanged", "--state", state)
        code, out, err = cli(source, *base, cwd=tmp_path)
        assert code == 0, out + err
        with contextlib.closing(sqlite3.connect(state)) as db:
            db.execute("UPDATE leads SET fields = 'oops' WHERE id = ?", (ids[5],))
            db.commit()
        sb.state.patches_by_lead.clear()
        code, out, err = cli(source, *base, cwd=tmp_path)
        assert code == 0, out + err
        assert "updated 1, unchanged 19" in out
        assert set(sb.state.patches_by_lead) == {ids[5]}
        assert err == (
            f"bulk-updater: warning: state: {state} holds damaged entries (lead {ids[5]} first); "
            "they count as unknown: their rows are sent and the entries rewritten\n"
        )
        assert f"  warning: state: {state}: 1 damaged entry counted as unknown" in out
        assert remembered(state)[ids[5]] == _expected_fields(5)
        code, out, err = cli(source, *base, cwd=tmp_path)
        assert (code, err) == (0, "")
        assert "unchanged 20" in out

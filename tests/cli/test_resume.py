"""`--resume`: which rows are sent again, an input that changed, the same command every night, and
input that can be read only once (standard input, a pipe)."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

from bulk_updater.report.meta import meta_path, read_meta
from bulk_updater.sandbox import SandboxThread
from tests.cli.conftest import (
    HEADER,
    KEY,
    clean_env,
    cli,
    command,
    finish,
    job_input,
    read_run_report,
    running,
    start,
    update_row,
    wait_until,
)
from tests.conftest import make_leads, unmeasured, write_csv


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
    # One sandbox for both runs: a report resumes only with the account it was started for.
    with SandboxThread(leads, api_key=KEY) as sb:
        first = cli(source, "--base-url", sb.url, "--report", report, "--rate", "0", cwd=tmp_path)
        assert first.code == 0, first.out + first.err
        before = dict(sb.state.patches_by_lead)
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
        now = {lead: n - before.get(lead, 0) for lead, n in sb.state.patches_by_lead.items()}
        sent_rows = sorted(ids.index(lead_id) + 1 for lead_id, n in now.items() if n)
        assert all(n in (0, 1) for n in now.values())
        assert sent_rows == [6, 7, 9, 10], out + err
        # every row sent now was updated, but the report still holds the earlier run's problems
        assert code == 1, out + err
        assert "skipped rows, as the earlier run left them: updated 2, not_found 1" in out
        final = read_run_report(report)
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
        assert read_meta(report.resolve()) is not None
        before = report.read_bytes()
        requests = sb.state.requests
        rows = [update_row(i, lead_id) for i, lead_id in enumerate(ids)]
        rows[2]["jobTitle"] = "Changed"
        write_csv(source, HEADER, rows)
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
        before = [(r["row"], r["id"], r["status"]) for r in read_run_report(report)]
        code, out, err = cli(*args, cwd=tmp_path)
        assert sb.state.requests == 6
    assert code == 0, out + err
    assert before == [(str(i + 1), lead_id, "updated") for i, lead_id in enumerate(ids)]
    assert [(r["row"], r["id"], r["status"]) for r in read_run_report(report)] == before
    # a run that finished every row leaves nothing beside its report (once a .lock and a .meta.json)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([source.name, "report.csv"])


def test_a_report_started_by_an_older_version_resumes_and_its_files_go(tmp_path: Path) -> None:
    """Reports begun before the meta moved to the state folder have it beside them."""
    leads = make_leads(6)
    source, ids = job_input(tmp_path, leads)
    report = tmp_path / "report.csv"
    with SandboxThread(leads, api_key=KEY) as sb:
        args = (source, "--base-url", sb.url, "--report", report, "--rate", "0")
        assert cli(*args, cwd=tmp_path).code == 0
        meta = read_meta(report.resolve())
        assert meta is not None
        meta_path(report.resolve()).unlink()
        del meta["report"]
        (tmp_path / "report.csv.meta.json").write_text(json.dumps(meta))
        (tmp_path / "report.csv.lock").write_text("")
        lines = report.read_text("utf-8-sig").splitlines(keepends=True)
        report.write_text("".join(lines[:4]), encoding="utf-8-sig")  # the header and 3 rows
        code, out, err = cli(*args, "--resume", cwd=tmp_path)
        assert sb.state.requests == 9  # the last three rows again, nothing more
    assert code == 0, out + err
    assert [r["id"] for r in read_run_report(report)] == ids
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([source.name, "report.csv"])
    assert read_meta(report.resolve()) == {"report": str(report.resolve()), **meta}


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


def test_input_from_a_pipe_is_read_whole_and_cannot_be_resumed(tmp_path: Path) -> None:
    leads = make_leads(2000)
    fifo = tmp_path / "updates.fifo"
    os.mkfifo(fifo)
    body = "id,jobTitle\n" + "".join(f"{lead_id},Piped\n" for lead_id in leads)

    def feed_the_pipe() -> subprocess.Popen[bytes]:
        script = f"open({str(fifo)!r}, 'w').write({body!r})"
        # Killed at the end, maybe as it exits: unmeasured (`tests.conftest.unmeasured`).
        return subprocess.Popen(
            [sys.executable, "-c", script], stderr=subprocess.DEVNULL, env=unmeasured()
        )

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
    assert len(read_run_report(tmp_path / "r.csv")) == 2000
    assert refused.code == 2
    assert "can be read again" in refused.err


def test_a_sigterm_during_the_searches_of_a_resume_leaves_a_finished_row_finished(
    tmp_path: Path,
) -> None:
    """Row 1 failed and row 2 was updated; the resume searches both (row 2 only to learn whether
    its lead is row 1's) and is stopped during the searches: row 2 stays `updated`, and the next
    run does not send it again."""
    leads = make_leads(2)
    ann, bob = leads
    source = tmp_path / "in.csv"
    source.write_text(f"email,jobTitle\n{leads[ann]['email']},CTO\n{leads[bob]['email']},CFO\n")
    report = tmp_path / "report.csv"
    mode = {"search": "refuse"}

    async def searches(request: web.Request) -> web.StreamResponse | None:
        if request.path != "/v1/leads" or mode["search"] == "answer":
            return None
        if mode["search"] == "refuse" and request.query.get("search") == leads[ann]["email"]:
            return web.json_response({"error": {"code": "BUSY", "message": "busy"}}, status=503)
        if mode["search"] == "hold":
            await asyncio.Event().wait()  # a search that never answers: the stop comes during it
        return None

    def statuses() -> list[tuple[str, str]]:
        return [(r["row"], r["status"]) for r in read_run_report(report)]

    with SandboxThread(leads, api_key=KEY, intercept=searches) as sb:
        base = (source, "--base-url", sb.url, "--report", report, "--rate", "0", "--resume")
        first = cli(*base, "--max-attempts", "1", cwd=tmp_path)
        assert statuses() == [("1", "failed"), ("2", "updated")], first.out + first.err

        mode["search"] = "hold"
        searched = sb.state.search_requests
        with running(start(*base, "--grace", "1", cwd=tmp_path)) as proc:
            both = searched + 2
            wait_until(sb, lambda: sb.state.search_requests >= both, 30, "both searches of run 2")
            proc.send_signal(signal.SIGTERM)
            code, out, err = finish(proc, timeout=30)
        assert code == 143, out + err
        assert statuses() == [("1", "aborted"), ("2", "updated")], out + err

        mode["search"] = "answer"
        patched = dict(sb.state.patches_by_lead)
        last = cli(*base, cwd=tmp_path)
        assert last.code == 0, last.out + last.err
        sent = {lead: n - patched.get(lead, 0) for lead, n in sb.state.patches_by_lead.items()}
    assert sent == {ann: 1, bob: 0}  # row 1 sent; row 2, finished, not again
    assert statuses() == [("1", "updated"), ("2", "updated")]

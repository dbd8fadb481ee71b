"""What a run writes, and only there: outputs that would overwrite the input or each other are
refused, a report reached through a link is locked and written as the file it points to, the
summary is written whatever happens, and no key a server echoes reaches any output."""

from __future__ import annotations

import errno
import json
import os
import resource
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from bulk_updater import Outcome, Status
from bulk_updater.report import ReportWriter, companions, read_statuses
from bulk_updater.report.meta import read_meta
from bulk_updater.sandbox import SandboxThread, start_app
from tests.cli.conftest import (
    KEY,
    clean_env,
    cli,
    finish,
    job_input,
    leaks,
    read_run_report,
    running,
    start,
    wait_until,
)
from tests.conftest import make_leads


@pytest.mark.parametrize("target", ["input", "report", "meta"])
def test_summary_json_may_not_overwrite_the_input_or_the_report(
    tmp_path: Path, target: str
) -> None:
    source, _ = job_input(tmp_path, make_leads(3))
    report = tmp_path / "r.csv"
    meta = companions(report)[0]  # in the state folder, which the test's environment names
    meta.parent.mkdir(parents=True, exist_ok=True)
    where = {"input": source, "report": report, "meta": meta}[target]
    before = source.read_bytes()
    with SandboxThread(make_leads(3), api_key=KEY) as sb:
        code, out, err = cli(
            source, "--base-url", sb.url, "--report", report, "--summary-json", where, cwd=tmp_path
        )
        assert sb.state.requests == 0
    assert code == 2, out + err
    assert "--summary-json" in err
    assert source.read_bytes() == before


def test_an_output_reached_through_a_link_to_the_input_is_refused(tmp_path: Path) -> None:
    source, _ = job_input(tmp_path, make_leads(2))
    (tmp_path / "link.csv").symlink_to(source)
    with SandboxThread(make_leads(2), api_key=KEY) as sb:
        code, _, err = cli(
            source, "--base-url", sb.url, "--report", tmp_path / "link.csv", cwd=tmp_path
        )
        assert sb.state.requests == 0
    assert code == 2
    assert "is the input file" in err


def test_a_link_to_a_locked_report_is_locked_too(tmp_path: Path) -> None:
    leads = make_leads(100)
    source, _ = job_input(tmp_path, leads)
    report = tmp_path / "rep.csv"
    link = tmp_path / "rep_sym.csv"
    link.symlink_to(report.name)
    with SandboxThread(leads, api_key=KEY) as sb:
        args = ("--base-url", sb.url, "--report", report, "--rate", "5")
        with running(start(source, *args, cwd=tmp_path)) as first:
            wait_until(sb, lambda: sb.state.requests >= 2, 15, "the first run's requests")
            code, out, err = cli(source, "--base-url", sb.url, "--report", link, cwd=tmp_path)
            assert code == 75, out + err
            first.send_signal(signal.SIGTERM)
            assert finish(first, timeout=15)[0] == 143
    lines = read_run_report(report)
    assert len(lines) == 100  # run B truncated nothing: every row has its line
    assert link.is_symlink()


def test_a_run_through_a_link_writes_the_file_and_keeps_the_link(tmp_path: Path) -> None:
    leads = make_leads(20)
    source, _ = job_input(tmp_path, leads)
    (tmp_path / "reports").mkdir()
    target = tmp_path / "reports" / "real.csv"
    target.write_text("")
    link = tmp_path / "latest.csv"
    link.symlink_to(target)
    with SandboxThread(leads, api_key=KEY) as sb:
        code, out, err = cli(source, "--base-url", sb.url, "--report", link, "--rate", "0",
                             cwd=tmp_path)  # fmt: skip
    assert code == 0, out + err
    assert link.is_symlink()
    assert [int(line["row"]) for line in read_run_report(target)] == list(range(1, 21))
    assert read_meta(target.resolve()) is not None
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == ["real.csv"]


def test_a_failed_final_sort_leaves_a_complete_resumable_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "r.csv"
    (tmp_path / ".r.csv.leftover.sorting").write_text("an earlier failed sort")

    def full_disk(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    writer = ReportWriter(path, fingerprint="f")
    for row in (3, 1, 2):
        writer.write(Outcome(row=row, id=f"lead{row}", status=Status.UPDATED))
    monkeypatch.setattr(os, "fsync", full_disk)
    writer.close()
    assert writer.unsorted == "No space left on device"
    assert [row for row, _ in read_statuses(path)] == [3, 1, 2]  # as written, nothing lost
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".sorting"))
    assert leftovers == [".r.csv.leftover.sorting"]  # ours removed, the old one in nobody's way
    monkeypatch.undo()
    again = ReportWriter(path, resume=True, fingerprint="f")
    assert len(again.finished) == 3
    again.close()
    assert [row for row, _ in read_statuses(path)] == [1, 2, 3]


SIGNAL_IN_THE_SORT = """
import os, signal, sys
from bulk_updater.report import sort
from bulk_updater.cli import main
original = sort.sort_report
def sort_report(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGINT)  # the user presses Ctrl-C as the report is sorted
    return original(*args, **kwargs)
sort.sort_report = sort_report
sys.argv = ["bulk-updater", "run", *sys.argv[1:]]
main()
"""


def test_a_signal_during_the_final_sort_does_not_change_the_result(tmp_path: Path) -> None:
    leads = make_leads(30)
    source, _ = job_input(tmp_path, leads)
    summary = tmp_path / "s.json"
    with SandboxThread(leads, api_key=KEY) as sb:
        done = subprocess.run(
            [sys.executable, "-c", SIGNAL_IN_THE_SORT, str(source), "--base-url", sb.url,
             "--rate", "0", "--summary-json", str(summary)],
            env=clean_env(SENDKIT_API_KEY=KEY), cwd=tmp_path, capture_output=True, text=True,
            timeout=60, check=False,
        )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads(summary.read_text())
    assert data["stopped"] is None
    assert data["exit_code"] == 0
    assert data["counts"]["updated"] == 30


def limit_file_size(size: int) -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))


def test_a_disk_full_mid_run_still_writes_the_summary(tmp_path: Path) -> None:
    """A report that cannot grow (here: a file size limit) stops the run with exit 3; the
    summary says so, instead of keeping the previous run's figures."""
    leads = make_leads(2000)
    source, _ = job_input(tmp_path, leads)
    summary = tmp_path / "s.json"
    summary.write_text('{"state": "finished", "exit_code": 0, "counts": {"updated": 7}}\n')
    with SandboxThread(leads, api_key=KEY) as sb:
        done = subprocess.run(
            [*map(str, (sys.executable, "-m", "bulk_updater", "run", source, "--base-url", sb.url,
                        "--rate", "0", "--summary-json", summary))],
            env=clean_env(SENDKIT_API_KEY=KEY), cwd=tmp_path, capture_output=True, text=True,
            timeout=60, check=False, preexec_fn=lambda: limit_file_size(64 * 1024),
        )  # fmt: skip
    assert done.returncode == 3, done.stdout + done.stderr
    assert "--resume" in done.stderr
    data = json.loads(summary.read_text())
    assert data["state"] == "failed"
    assert data["exit_code"] == 3
    assert data["started_at"] <= data["finished_at"]


@pytest.fixture
def echo_server() -> Iterator[str]:
    """An API that echoes the key back in every answer, in each error shape and in HTML."""

    async def answer(request: web.Request) -> web.Response:
        key = request.headers.get("X-Api-Key", "")
        lead = request.match_info["id"]
        if lead.endswith("1"):
            return web.json_response(
                {"error": {"code": "UNAUTHORIZED", "message": f"Invalid API key {key}"}}, status=401
            )
        if lead.endswith("2"):
            return web.json_response(
                {"error": "Bad", "message": f"{key}?", "code": 400}, status=400
            )
        return web.Response(status=503, text=f"<h1>{key} is down</h1>", content_type="text/html")

    ready = threading.Event()
    state: dict[str, object] = {}

    def serve() -> None:
        import asyncio

        async def main() -> None:
            app = web.Application()
            app.router.add_route("PATCH", "/v1/leads/{id}", answer)
            runner = await start_app(app, "127.0.0.1", 0)
            stop = asyncio.Event()
            state.update(url=f"http://127.0.0.1:{runner.addresses[0][1]}", stop=stop,
                         loop=asyncio.get_running_loop())  # fmt: skip
            ready.set()
            await stop.wait()
            await runner.cleanup()

        asyncio.run(main())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    ready.wait(10)
    yield str(state["url"])
    loop = state["loop"]
    loop.call_soon_threadsafe(state["stop"].set)  # type: ignore[attr-defined]
    thread.join(10)


@pytest.mark.parametrize("lead", ["x" * 23 + "1", "x" * 23 + "2", "x" * 23 + "3"])
def test_a_key_echoed_by_the_server_reaches_no_output(
    tmp_path: Path, echo_server: str, lead: str
) -> None:
    source = tmp_path / "in.csv"
    source.write_text(f"id,jobTitle\n{lead},CRO\n")
    summary = tmp_path / "s.json"
    code, out, err = cli(source, "--base-url", echo_server, "--summary-json", summary,
                         "--max-attempts", "1", "--rate", "0", "-v", cwd=tmp_path)  # fmt: skip
    assert code in (1, 3), out + err
    assert leaks(KEY, out, err, tmp_path) == []
    assert "[redacted]" in (tmp_path / "in.csv.report.csv").read_text("utf-8-sig") + out


def test_the_summary_says_running_while_the_job_runs(tmp_path: Path) -> None:
    leads = make_leads(50)
    source, _ = job_input(tmp_path, leads)
    summary = tmp_path / "s.json"
    with SandboxThread(leads, api_key=KEY) as sb:
        args = ("--base-url", sb.url, "--rate", "5", "--summary-json", summary)
        with running(start(source, *args, cwd=tmp_path)) as proc:
            wait_until(sb, lambda: sb.state.requests >= 2, 15, "the run's requests")
            during = json.loads(summary.read_text())
            proc.send_signal(signal.SIGTERM)
            finish(proc, timeout=15)
    assert during["state"] == "running"
    assert during["started_at"].endswith("Z")
    after = json.loads(summary.read_text())
    assert after["state"] == "finished"
    assert after["exit_code"] == 143
    assert os.path.getsize(summary) > 0


@pytest.mark.parametrize("report", ["same", "dated"])
def test_a_run_refused_a_lock_leaves_the_running_jobs_summary_alone(
    tmp_path: Path, report: str
) -> None:
    """On one cron line `--summary-json` is the running job's: a second run refused with exit 75
    (the same report, or the same input under another report) must not say `failed` there."""
    leads = make_leads(50)
    source, _ = job_input(tmp_path, leads)
    summary = tmp_path / "s.json"
    with SandboxThread(leads, api_key=KEY) as sb:
        args = ("--base-url", sb.url, "--summary-json", summary, "--resume")
        first_args = (*args, "--report", tmp_path / "r1.csv", "--rate", "5")
        with running(start(source, *first_args, cwd=tmp_path)) as proc:
            wait_until(sb, lambda: sb.state.requests >= 2, 15, "the run's requests")
            before = summary.read_bytes()
            second = tmp_path / ("r1.csv" if report == "same" else "r2.csv")
            code, out, err = cli(source, *args, "--report", second, cwd=tmp_path)
            assert code == 75, out + err
            assert summary.read_bytes() == before
            proc.send_signal(signal.SIGTERM)
            finish(proc, timeout=15)
    assert json.loads(before)["state"] == "running"


FULL_AT_THE_END = """
import errno, importlib, sys
from bulk_updater.cli import main
run = importlib.import_module("bulk_updater.cli.summary")
original = run.write_json_atomically
def write_json_atomically(path, data):
    if data["state"] != "running":  # the disk fills up during the run: the last write fails
        raise OSError(errno.ENOSPC, "No space left on device")
    original(path, data)
run.write_json_atomically = write_json_atomically
sys.argv = ["bulk-updater", "run", *sys.argv[1:]]
main()
"""


def test_a_final_summary_that_cannot_be_written_makes_the_run_exit_3(tmp_path: Path) -> None:
    """A monitor would read `running` there for ever: cron must hear of it (S8)."""
    leads = make_leads(5)
    source, _ = job_input(tmp_path, leads)
    summary = tmp_path / "s.json"
    with SandboxThread(leads, api_key=KEY) as sb:
        done = subprocess.run(
            [sys.executable, "-c", FULL_AT_THE_END, str(source), "--base-url", sb.url,
             "--rate", "0", "-q", "--summary-json", str(summary)],
            env=clean_env(SENDKIT_API_KEY=KEY), cwd=tmp_path, capture_output=True, text=True,
            timeout=60, check=False,
        )  # fmt: skip
        assert sum(sb.state.applied_by_lead.values()) == 5
    assert done.returncode == 3, done.stdout + done.stderr
    assert done.stderr == (
        f"bulk-updater: error: cannot write the summary {summary}: No space left on device; "
        "the file there is out of date\n"
    )
    assert "updated 5" in done.stdout  # -q prints the summary: the exit code is not 0
    assert json.loads(summary.read_text())["state"] == "running"

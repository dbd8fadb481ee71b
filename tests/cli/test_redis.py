"""`--redis URL`: several `bulk-updater run` processes share one account's budget; Redis that is
stopped mid-run (exit 3, then `--resume`), unreachable at start (exit 2, before any request), or
guarded by a password that is never shown; the `[redis]` extra missing."""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
from pathlib import Path
from typing import NamedTuple

import pytest

from bulk_updater.sandbox import SandboxState, SandboxThread, max_in_any_window
from tests.cli.conftest import (
    KEY,
    applied,
    clean_env,
    cli,
    finish,
    job_input,
    leaks,
    read_run_report,
    running,
    start,
    wait_for_line,
    wait_until,
)
from tests.conftest import make_leads
from tests.redis_server import RecordedStarts, RedisServer
from tests.servers import free_port

#: The sandbox's strict window, and every process's --rate: the account's limit (issue 16's).
RATE = 60
BURST = 5


class Shared(NamedTuple):
    results: list[tuple[int, str, str]]
    state: SandboxState
    starts: RecordedStarts
    ahead: bool  # the sandbox ran ahead of the clients (a real-time priority)


def run_together(
    tmp_path: Path, redis_url: str, processes: int, rows_each: int, *, in_step: bool = False
) -> Shared:
    """`processes` runs of `rows_each` rows each, started together, each `--rate RATE --redis`,
    against a sandbox that allows RATE a second (the burst is the API's hidden tolerance: a
    process's very first request pays for its HTTP client's set-up after its slot, beyond the
    1% margin, and may land next to the one after).

    `in_step`: each run reads its rows from a FIFO, written once every run waits there, so that
    none finishes before another has started (on a busy machine, starting a process takes
    seconds: the account's rate then goes unused for want of a run, not of a budget)."""
    leads = make_leads(processes * rows_each)
    ids = list(leads)
    inputs = []
    for n in range(processes):
        folder = tmp_path / f"job{n}"
        folder.mkdir()
        part = {lead: leads[lead] for lead in ids[n::processes]}
        inputs.append((folder, job_input(folder, part)[0]))
    total = len(ids)
    with SandboxThread(leads, api_key=KEY, rate=RATE, burst=BURST) as sb:
        ahead = ahead_of_the_clients(sb)
        starts = RecordedStarts(redis_url, sb.url, KEY)
        with contextlib.ExitStack() as stack:
            fifos = [piped(stack, source) for _, source in inputs] if in_step else []
            sources = [fifo[1:] for fifo in fifos] or [(source,) for _, source in inputs]
            procs = [
                stack.enter_context(running(start(
                    *source, "--base-url", sb.url, "--rate", str(RATE), "--redis", redis_url,
                    *(("-v",) if in_step else ()), cwd=folder,
                )))
                for (folder, _), source in zip(inputs, sources, strict=True)
            ]  # fmt: skip
            if in_step:
                for proc in procs:
                    wait_for_line(proc, "waiting for the first lines", 60)
                for (_, source), (writer, *_) in zip(inputs, fifos, strict=True):
                    feed(writer, source)
            # Redis keeps the latest RATE starts: they are read at every request the sandbox sees.
            wait_until(sb, lambda: starts.take() or applied(sb) >= total, 90, "every row applied")
            results = [finish(proc, timeout=30) for proc in procs]
        state = sb.state
    starts.take()
    starts.close()
    return Shared(results, state, starts, ahead)


def piped(stack: contextlib.ExitStack, source: Path) -> tuple[int, str, str, str]:
    """A FIFO beside `source` for a run to read, held open by the test (a writer that has not
    written yet: the run waits for its first lines); the writer's end, and the run's arguments."""
    fifo = source.with_suffix(".fifo")
    os.mkfifo(fifo)
    writer = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
    stack.callback(_close, writer)
    return writer, str(fifo), "--format", "csv"


def feed(writer: int, source: Path) -> None:
    """Write `source` to the run waiting on the FIFO, then close it: the run's end of input."""
    os.set_blocking(writer, True)
    with open(writer, "wb") as pipe:
        pipe.write(source.read_bytes())


def _close(fd: int) -> None:
    with contextlib.suppress(OSError):  # fed, it is closed already
        os.close(fd)


def ahead_of_the_clients(sandbox: SandboxThread) -> bool:
    """Run the sandbox's thread at a real-time priority where the system allows it (root on
    Linux). It stands for the API, on machines of its own: sharing two cores with the clients
    starting up, it would read a request's arrival time only when it next got a core, and
    requests that left on time would look bunched (bench/budget.py measured it)."""

    def promote() -> bool:
        try:  # on Linux, pid 0 is the calling thread
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
        except (AttributeError, OSError):
            return False
        return True

    loop = sandbox._loop
    assert loop is not None
    future: concurrent.futures.Future[bool] = concurrent.futures.Future()
    loop.call_soon_threadsafe(lambda: future.set_result(promote()))
    return future.result(10)


def test_three_processes_share_the_accounts_rate(tmp_path: Path, redis_url: str) -> None:
    """Issue 16's promise: 3 processes at the account's rate make no 429 and keep to it
    together. How much of the rate they use together (50 requests/s or more) is a timing target:
    `make bench` measures it (`--only shared`), where a loaded machine cannot fail a test."""
    results, state, starts, _ = run_together(tmp_path, redis_url, 3, 60, in_step=True)
    for code, out, err in results:
        assert code == 0, out + err
        assert "429s 0" in out
    assert state.rate_limited == 0
    assert len(starts.times) == state.requests == 180
    assert max_in_any_window(starts.times) <= RATE  # the promise: starts, across processes
    # One budget, not three, over the schedule's span: from its first slot as granted (a start
    # that left late has its record moved to when it left) to the last start. The promise is the
    # window above; 1% is the pacer's own margin.
    together = starts.average()
    assert together <= RATE * 1.01, together


def test_ten_processes_never_start_more_than_the_rate_in_any_second(
    tmp_path: Path, redis_url: str
) -> None:
    """Issue 16's target: whoever is late, the API sees no more than the rate in any second
    (where the sandbox cannot run ahead of the clients, its own waits for a core show up as
    bunched arrivals: then the API's tolerance, its burst, is what is asked)."""
    results, state, starts, ahead = run_together(tmp_path, redis_url, 10, 12)
    assert [code for code, _, _ in results] == [0] * 10, [out + err for _, out, err in results]
    assert len(starts.times) == state.requests == 120
    assert max_in_any_window(starts.times) <= RATE
    assert state.rate_limited == 0
    assert max_in_any_window(state.arrivals) <= (RATE if ahead else RATE + BURST)


def test_redis_stopped_mid_run_stops_the_job_and_resume_finishes_it(tmp_path: Path) -> None:
    leads = make_leads(120)
    source, ids = job_input(tmp_path, leads)
    report = tmp_path / "report.csv"
    summary_json = tmp_path / "summary.json"
    password = "mid-run-pw-4Rt"
    with RedisServer(password=password) as server, SandboxThread(leads, api_key=KEY) as sb:
        base = ("--base-url", sb.url, "--report", report, "--rate", "40", "--redis", server.url)
        with running(start(source, *base, "--summary-json", summary_json, cwd=tmp_path)) as proc:
            wait_until(sb, lambda: applied(sb) >= 10, 30, "10 rows applied")
            server.stop()
            code, out, err = finish(proc, timeout=30)
        assert code == 3, out + err
        shown = f"redis://:***@127.0.0.1:{server.port}/0"
        assert f"stopped: Redis at {shown} is unreachable (" in out
        assert "; rerun with --resume" in out
        assert leaks(password, out, err, tmp_path) == []  # nor in the report or the summary
        first = read_run_report(report)
        assert [int(r["row"]) for r in first] == list(range(1, 121))  # flushed, in order
        done = {r["id"] for r in first if r["status"] == "updated"}
        assert 10 <= len(done) < 120
        assert {r["status"] for r in first} == {"updated", "aborted"}
        summary = json.loads(summary_json.read_text())
        assert (summary["exit_code"], summary["stopped"]) == (3, "limiter_down")

        server.start()  # back, on the same port
        code, out, err = cli(source, *base, "--resume", cwd=tmp_path)
        assert code == 0, out + err
        assert leaks(password, out, err, tmp_path) == []
        assert {r["status"] for r in read_run_report(report)} == {"updated"}
        for lead in done:  # finished in the first run: never sent again
            assert sb.state.patches_by_lead[lead] == 1
        assert set(sb.state.applied_by_lead) == set(ids)


def test_redis_unreachable_at_start_exits_2_before_any_request(tmp_path: Path) -> None:
    leads = make_leads(5)
    source, _ = job_input(tmp_path, leads)
    summary_json = tmp_path / "summary.json"
    port = free_port()
    url = f"redis://:hunter2-pw@127.0.0.1:{port}/0"
    with SandboxThread(leads, api_key=KEY) as sb:
        code, out, err = cli(
            source, "--base-url", sb.url, "--redis", url, "--summary-json", summary_json,
            cwd=tmp_path,
        )  # fmt: skip
        assert sb.state.requests == 0
    assert code == 2, out + err
    assert f"Redis at redis://:***@127.0.0.1:{port}/0 is unreachable" in err
    assert leaks("hunter2", out, err, tmp_path) == []
    summary = json.loads(summary_json.read_text())
    assert (summary["state"], summary["exit_code"]) == ("failed", 2)
    # The report is never touched: only the input and the summary are there.
    assert {path.name for path in tmp_path.iterdir()} == {source.name, summary_json.name}


@pytest.mark.parametrize(
    ("scheme", "query", "shown"),
    [
        ("redis", "x=1", "?x=1"),
        ("redis", "ssl_cert_reqs=bogus", "?ssl_cert_reqs=bogus"),  # rediss:// takes it
        ("rediss", "ssl_cert_reqs=bogus", "?ssl_cert_reqs=bogus"),  # a value it does not take
        ("redis", "password+=hunter2-pw", "?***"),
        ("redis", "db=0&connection_class=x", "?db=0&connection_class=x"),
    ],
)
def test_a_redis_url_option_no_connection_takes_is_refused_in_one_line(
    tmp_path: Path, scheme: str, query: str, shown: str
) -> None:
    """redis-py hands the URL's query to each connection, which refuses an option it does not
    take (`TypeError`), or a value it does not take (`RedisError`), only when it is made: at
    the first call, not when the URL is read."""
    leads = make_leads(2)
    source, _ = job_input(tmp_path, leads)
    summary_json = tmp_path / "summary.json"
    url = f"{scheme}://default:hunter2-pw@127.0.0.1:{free_port()}/0?{query}"
    with SandboxThread(leads, api_key=KEY) as sb:
        code, out, err = cli(
            source, "--base-url", sb.url, "--redis", url, "--summary-json", summary_json,
            cwd=tmp_path,
        )  # fmt: skip
        assert sb.state.requests == 0
    assert code == 2, out + err
    warning, err = err.split("\n", 1)  # a password on the command line: `ps` shows it
    assert warning.endswith("--redis holds a password, visible to other users in ps; use "
                            "BULK_UPDATER_REDIS_URL instead")  # fmt: skip
    assert err.startswith(f"bulk-updater: error: the Redis URL {scheme}://default:***@127.0.0.1:")
    assert f"/0{shown} cannot be used (" in err
    assert "fix or remove the options after its ?" in err
    assert len(err.splitlines()) == 1, err
    assert leaks("hunter2", out, err, tmp_path) == []
    summary = json.loads(summary_json.read_text())
    assert (summary["state"], summary["exit_code"]) == ("failed", 2)


def test_redis_from_the_environment_with_a_password_never_shown(tmp_path: Path) -> None:
    leads = make_leads(6)
    source, _ = job_input(tmp_path, leads)
    with RedisServer(password="pw-Zq81xK") as server, SandboxThread(leads, api_key=KEY) as sb:
        env = clean_env(SENDKIT_API_KEY=KEY, BULK_UPDATER_REDIS_URL=server.url)
        code, out, err = cli(source, "--base-url", sb.url, "-v", env=env, cwd=tmp_path)
        assert code == 0, out + err
        assert applied(sb) == 6
        # -v says what it shares, and where
        assert f"through Redis at redis://:***@127.0.0.1:{server.port}/0" in err
        assert leaks("pw-Zq81xK", out, err, tmp_path) == []
        wrong = f"redis://:not-it@127.0.0.1:{server.port}/0"
        code, out, err = cli(source, "--base-url", sb.url, "--redis", wrong, cwd=tmp_path)
        assert code == 2, out + err
        assert f"Redis at redis://:***@127.0.0.1:{server.port}/0 refused the connection" in err
        assert sb.state.requests == 6  # none from the refused run
    assert leaks("pw-Zq81xK", out, err, tmp_path) == []
    assert leaks("not-it", out, err, tmp_path) == []


def test_without_the_redis_extra_the_message_names_it(tmp_path: Path) -> None:
    leads = make_leads(2)
    source, _ = job_input(tmp_path, leads)
    shadow = tmp_path / "shadow" / "redis"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('not installed')\n")
    env = clean_env(SENDKIT_API_KEY=KEY)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(shadow.parent), env.get("PYTHONPATH")]))
    with SandboxThread(leads, api_key=KEY) as sb:
        code, out, err = cli(
            source, "--base-url", sb.url, "--redis", "redis://127.0.0.1:1/0", env=env,
            cwd=tmp_path,
        )  # fmt: skip
        assert sb.state.requests == 0
    assert code == 2, out + err
    assert "pip install 'bulk-updater[redis]'" in err

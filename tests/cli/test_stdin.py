"""Standard input that stays open: rows go out as they arrive, and a signal at any moment
(while waiting for the header, or between rows) exits 130/143 with every row read reported."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from bulk_updater.sandbox import SandboxThread
from tests.cli.conftest import (
    KEY,
    applied,
    clean_env,
    command,
    read_run_report,
    wait_for_line,
    wait_until,
)
from tests.conftest import make_leads

EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}


def open_pipe(tmp_path: Path, url: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command("-", "--format", "csv", "--base-url", url, "--rate", "0", *extra),
        env=clean_env(SENDKIT_API_KEY=KEY),
        cwd=tmp_path,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def exit_with_pipe_open(proc: subprocess.Popen[str], signum: int) -> tuple[int, str, str]:
    """Signal the run and wait for it while its standard input is still open."""
    proc.send_signal(signum)
    try:
        code = proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the run did not exit after the signal")
    assert proc.stdout is not None
    assert proc.stderr is not None
    out, err = proc.stdout.read(), proc.stderr.read()
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()
    return code, out, err


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_rows_on_an_open_pipe_go_out_as_they_arrive_and_a_signal_reports_them(
    tmp_path: Path, signum: int
) -> None:
    leads = make_leads(10)
    with SandboxThread(leads, api_key=KEY) as sb:
        proc = open_pipe(tmp_path, sb.url)
        try:
            assert proc.stdin is not None
            proc.stdin.write("id,jobTitle\n")
            for sent, lead in enumerate(leads, start=1):
                proc.stdin.write(f"{lead},Live\n")
                proc.stdin.flush()
                # each row is sent before the next one is even written: nothing waits for a batch
                wait_until(sb, lambda n=sent: applied(sb) >= n, 15, f"row {sent} to be sent")
            code, out, err = exit_with_pipe_open(proc, signum)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert code == EXIT[signum], out + err
    assert "Fatal Python error" not in err
    assert "Traceback" not in err
    assert "10 rows" in out
    lines = read_run_report(tmp_path / "bulk-updater.report.csv")
    assert [line["status"] for line in lines] == ["updated"] * 10


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_waiting_for_the_header_exits_cleanly(tmp_path: Path, signum: int) -> None:
    with SandboxThread(make_leads(1), api_key=KEY) as sb:
        proc = open_pipe(tmp_path, sb.url, "-v")
        try:
            wait_for_line(proc, "waiting for the first lines", 15)
            code, out, err = exit_with_pipe_open(proc, signum)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert sb.state.requests == 0
    assert code == EXIT[signum], out + err
    assert f"interrupted by {signal.Signals(signum).name} before any row was read" in err
    assert "Aborted!" not in err
    assert "Traceback" not in err

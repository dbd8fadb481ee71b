"""The children the CLI tests start never leave a damaged coverage data file behind.

`make test` once printed "database disk image is malformed ... Combined 0 files, 1 file
errored": a child killed with SIGKILL while it wrote its data file (`tests.conftest.unmeasured`
says how). So a child a test means to kill runs unmeasured, and a child left running when its
test ends gets SIGTERM, and time to end as it should, before any SIGKILL.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from bulk_updater.sandbox import SandboxThread
from tests.cli.conftest import KEY, job_input, running, start, wait_until
from tests.conftest import make_leads


def test_a_child_left_running_ends_by_sigterm_not_sigkill(tmp_path: Path) -> None:
    leads = make_leads(200)
    source, _ = job_input(tmp_path, leads)
    with SandboxThread(leads, api_key=KEY) as sb:
        with running(start(source, "--base-url", sb.url, "--rate", "20", cwd=tmp_path)) as proc:
            wait_until(sb, lambda: sb.state.requests >= 2, 15, "the run's first requests")
        assert proc.returncode == 143  # the run's own exit after SIGTERM: it ended as it should


def test_a_child_a_test_kills_runs_unmeasured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COVERAGE_PROCESS_CONFIG", "{}")
    monkeypatch.setenv("COVERAGE_FILE", str(tmp_path / ".coverage"))
    fifo = tmp_path / "rows.csv"
    os.mkfifo(fifo)  # the run waits there, with nobody writing, until it is killed
    with running(start(fifo, "--format", "csv", killed=True, cwd=tmp_path)) as proc:
        environ = _environ_once_exec_is_done(proc.pid)
        proc.kill()
    assert not [v for v in environ if v.startswith(b"COVERAGE")]
    assert b"SENDKIT_API_KEY=" + KEY.encode() in environ


def _environ_once_exec_is_done(pid: int) -> list[bytes]:
    """The child's environment, read once its new program holds it: right after `Popen`
    returns, the kernel may still be setting the program up and `/proc` shows nothing."""
    deadline = time.monotonic() + 10
    while True:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        if environ or time.monotonic() > deadline:
            return environ.split(b"\0")
        os.sched_yield()

"""The children the CLI tests start never leave a damaged coverage data file behind.

`make test` once printed "database disk image is malformed ... Combined 0 files, 1 file
errored": a child killed with SIGKILL while it wrote its data file (`tests.conftest.unmeasured`
says how). So a child a test means to kill runs unmeasured, and a child left running when its
test ends gets SIGTERM, and time to end as it should, before any SIGKILL.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bulk_updater.sandbox import SandboxThread
from tests.cli.conftest import KEY, job_input, running, start, wait_for_line, wait_until
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
    os.mkfifo(fifo)
    # A writer of our own that writes nothing: the run opens the FIFO, says it waits for the
    # first lines, and waits there until it is killed.
    writer = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
    try:
        with running(start(fifo, "--format", "csv", "-v", killed=True, cwd=tmp_path)) as proc:
            wait_for_line(proc, "waiting for the first lines", 30)  # its program is running
            environ = Path(f"/proc/{proc.pid}/environ").read_bytes().split(b"\0")
            proc.kill()
    finally:
        os.close(writer)
    assert not [v for v in environ if v.startswith(b"COVERAGE")]
    assert b"SENDKIT_API_KEY=" + KEY.encode() in environ

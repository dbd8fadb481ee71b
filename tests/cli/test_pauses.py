"""Pauses that would outlast `--max-pause` and `--give-up-after` (issue 21, item 6), over real
sockets: an API whose headers always say nothing is left for 22 hours."""

from __future__ import annotations

from pathlib import Path

from bulk_updater.sandbox import SandboxThread
from tests.cli.conftest import KEY, applied, cli, job_input, read_run_report
from tests.conftest import make_leads


def test_headers_that_always_say_nothing_is_left_cannot_hold_a_job(tmp_path: Path) -> None:
    """Every answer says `X-RateLimit-Remaining: 0` until tomorrow, yet the API takes every
    request: the job waits `--max-pause` once, then no longer believes the headers, and
    finishes (a minute is the most the test allows it; it would have waited 22 hours)."""
    leads = make_leads(20)
    source, _ = job_input(tmp_path, leads)
    with SandboxThread(leads, api_key=KEY, rate=1000, headers="exhausted") as sb:
        result = cli(
            source,
            "--base-url",
            sb.url,
            "--report",
            tmp_path / "report.csv",
            "--max-pause",
            "5",
            "--give-up-after",
            "10",
            cwd=tmp_path,
            timeout=60,
        )
        assert applied(sb) == 20
    assert result.code == 0, result.err
    assert all(row["status"] == "updated" for row in read_run_report(tmp_path / "report.csv"))
    assert result.err.count("nothing was left") == 1

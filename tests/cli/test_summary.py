"""What a run tells at its end: `--summary-json`, the exit code for problem rows, `-q`."""

from __future__ import annotations

import json
from pathlib import Path

from bulk_updater.sandbox import SandboxThread
from tests.cli.conftest import KEY, cli, job_input, mixed_input, read_run_report
from tests.conftest import make_leads


def test_summary_json_counts_by_status_and_exit_1_for_problem_rows(tmp_path: Path) -> None:
    leads = make_leads(3)
    source = mixed_input(tmp_path, leads)
    summary = tmp_path / "summary.json"
    with SandboxThread(leads, api_key=KEY) as sb:
        code, out, err = cli(
            source, "--base-url", sb.url, "--rate", "0", "--summary-json", summary, cwd=tmp_path
        )
        assert sb.state.stray == []
    assert code == 1, out + err
    counts = json.loads(summary.read_text())["counts"]
    assert counts == {
        "updated": 3,
        "not_found": 1,
        "invalid": 1,
        "rejected": 0,
        "failed": 0,
        "aborted": 0,
        "skipped": 0,
        "unchanged": 0,
    }
    statuses = [r["status"] for r in read_run_report(tmp_path / "mixed.csv.report.csv")]
    assert statuses == ["updated", "updated", "updated", "not_found", "invalid"]


def test_quiet_success_prints_nothing(tmp_path: Path) -> None:
    leads = make_leads(5)
    source, _ = job_input(tmp_path, leads)
    with SandboxThread(leads, api_key=KEY) as sb:
        code, out, err = cli(source, "--base-url", sb.url, "--rate", "0", "-q", cwd=tmp_path)
        assert sum(sb.state.applied_by_lead.values()) == 5
    assert code == 0
    assert (out, err) == ("", "")


def test_job_at_the_sandbox_rate_gets_no_429(tmp_path: Path) -> None:
    leads = make_leads(60)
    source, ids = job_input(tmp_path, leads)
    summary = tmp_path / "summary.json"
    # One request of tolerance: on a loaded machine the server's loop can stall and count a
    # bunch of arrivals late. The client's schedule is checked exactly in tests/limits, and the
    # exact window against a server of its own process in `make bench`.
    with SandboxThread(leads, api_key=KEY, rate=20, burst=1) as sb:
        args = ("--base-url", sb.url, "--rate", "20", "--summary-json", summary)
        code, out, err = cli(source, *args, cwd=tmp_path)
        assert sb.state.rate_limited == 0
        assert all(sb.state.patches_by_lead[lead_id] == 1 for lead_id in ids)
    assert code == 0, out + err
    data = json.loads(summary.read_text())
    assert data["rate_limited"] == 0
    assert data["counts"]["updated"] == 60


def test_the_summary_says_where_the_rate_settled_and_why(tmp_path: Path) -> None:
    leads = make_leads(30)
    source, _ = job_input(tmp_path, leads)
    summary = tmp_path / "summary.json"
    with SandboxThread(leads, api_key=KEY, rate=50, headers="xrl") as sb:
        args = ("--base-url", sb.url, "--rate", "auto", "--summary-json", summary)
        code, out, err = cli(source, *args, cwd=tmp_path)
        assert sb.state.rate_limited == 0
    assert code == 0, out + err
    assert "  rate: settled at " in out
    assert ": from X-RateLimit-Limit: 50" in out
    data = json.loads(summary.read_text())
    assert data["settled_why"] == "from X-RateLimit-Limit: 50"
    assert 0 < data["settled_rate"] <= 50
    assert data["rate_hint"] is None


def test_no_limit_says_so(tmp_path: Path) -> None:
    leads = make_leads(3)
    source, _ = job_input(tmp_path, leads)
    with SandboxThread(leads, api_key=KEY) as sb:
        code, out, err = cli(source, "--base-url", sb.url, "--rate", "0", cwd=tmp_path)
    assert code == 0, out + err
    assert "  rate: no limit (--rate 0)" in out

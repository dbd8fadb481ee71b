"""`--resume` goes on only with the API account its report was started for: a row finished on
staging (or with another workspace or key) is not finished in production."""

from __future__ import annotations

import json
from pathlib import Path

from bulk_updater.report.meta import meta_path, read_meta
from bulk_updater.sandbox import SandboxThread
from tests.cli.conftest import KEY, WRONG_KEY, clean_env, cli, job_input, read_run_report
from tests.conftest import make_leads


def test_a_report_tried_on_staging_is_not_resumed_in_production(tmp_path: Path) -> None:
    leads = make_leads(2)
    source, _ = job_input(tmp_path, leads)
    report = tmp_path / "report.csv"
    with SandboxThread(leads, api_key=KEY) as staging, SandboxThread(leads, api_key=KEY) as prod:
        urls = staging.url, prod.url
        tried = cli(source, "--base-url", urls[0], "--report", report, "--limit", "1", cwd=tmp_path)
        assert tried.code == 0, tried.out + tried.err
        before = report.read_bytes()
        rest = (source, "--base-url", urls[1], "--report", report, "--resume")
        code, out, err = cli(*rest, cwd=tmp_path)
        assert prod.state.requests == 0
    assert code == 2, out + err
    assert err.count("\n") == 1
    assert "Traceback" not in err
    assert all(url in err for url in urls)
    assert "--report" in err
    assert report.read_bytes() == before


def test_a_report_is_not_resumed_with_another_workspace_or_key(tmp_path: Path) -> None:
    leads = make_leads(2)
    source, _ = job_input(tmp_path, leads)
    report = tmp_path / "report.csv"
    with SandboxThread(leads, api_key=KEY) as sb:
        args = (source, "--base-url", sb.url, "--report", report)
        assert cli(*args, "--limit", "1", cwd=tmp_path).code == 0
        requests = sb.state.requests
        workspace = cli(*args, "--resume", "--workspace-id", "ws_other", cwd=tmp_path)
        other_key = cli(*args, "--resume", env=clean_env(SENDKIT_API_KEY=WRONG_KEY), cwd=tmp_path)
        assert sb.state.requests == requests
    assert workspace.code == 2, workspace.out + workspace.err
    assert "workspace ws_other" in workspace.err
    assert other_key.code == 2, other_key.out + other_key.err
    assert "another API key" in other_key.err
    assert KEY not in other_key.err
    assert WRONG_KEY not in other_key.err


def test_a_report_whose_key_the_api_refused_resumes_with_the_right_key(tmp_path: Path) -> None:
    """A key refused with 401/403 finished no row: the run's own advice (`--resume` once fixed)
    works, and the report is the new key's from then on."""
    leads = make_leads(2)
    source, _ = job_input(tmp_path, leads)
    report = tmp_path / "report.csv"
    with SandboxThread(leads, api_key=KEY) as sb:
        args = (source, "--base-url", sb.url, "--report", report)
        refused = cli(*args, env=clean_env(SENDKIT_API_KEY=WRONG_KEY), cwd=tmp_path)
        assert refused.code == 3, refused.out + refused.err
        assert "--resume" in refused.out
        code, out, err = cli(*args, "--resume", cwd=tmp_path)
        statuses = [line["status"] for line in read_run_report(report)]
        again = cli(*args, "--resume", env=clean_env(SENDKIT_API_KEY=WRONG_KEY), cwd=tmp_path)
    assert code == 0, out + err
    assert statuses == ["updated", "updated"]
    assert again.code == 2, again.out + again.err  # its rows are the right key's now
    assert "another API key" in again.err


def test_a_report_whose_meta_names_no_account_resumes_with_a_warning(tmp_path: Path) -> None:
    """A version before the account was kept: its report resumes, as before, and says so."""
    leads = make_leads(3)
    source, _ = job_input(tmp_path, leads)
    report = tmp_path / "report.csv"
    with SandboxThread(leads, api_key=KEY) as sb:
        args = (source, "--base-url", sb.url, "--report", report)
        assert cli(*args, "--limit", "1", cwd=tmp_path).code == 0
        meta = read_meta(report.resolve())
        assert meta is not None
        assert meta["account"] == sb.url
        older = {k: v for k, v in meta.items() if k not in ("account", "key_sha256")}
        meta_path(report.resolve()).write_text(json.dumps(older))
        code, out, err = cli(*args, "--resume", cwd=tmp_path)
        assert sb.state.requests == 3  # the first row once, the other two now
    assert code == 0, out + err
    assert "warning" in err
    assert "does not say which API account" in err
    kept = read_meta(report.resolve())
    assert kept is not None  # the account is kept from now on (the limit is this run's: none)
    assert (kept["account"], kept["key_sha256"]) == (meta["account"], meta["key_sha256"])

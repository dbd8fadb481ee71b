"""Ids that are not this account's: a Salesforce report mapped with `--map "Lead ID=id"` stops
after its first 50 rows come back `not_found` (exit 3), unless `--allow-not-found`."""

from __future__ import annotations

from pathlib import Path

from bulk_updater.sandbox import SandboxThread
from tests.cli.conftest import KEY, cli, read_run_report
from tests.conftest import make_leads, write_csv

HEADER = ["Lead ID", "First Name", "Last Name", "Company / Account", "Lead Status"]


def salesforce(tmp_path: Path, rows: int) -> Path:
    leads = [[f"00Q5e00000Ab{n:06d}", f"Ann{n}", "Lee", "Acme", "Open"] for n in range(rows)]
    return write_csv(tmp_path / "report.csv", HEADER, leads)


def test_salesforce_ids_mapped_to_id_stop_the_job_naming_the_column(tmp_path: Path) -> None:
    source = salesforce(tmp_path, 300)
    options = ("--map", "Lead ID=id", "--ignore-unknown-columns", "--concurrency", "4")
    with SandboxThread(make_leads(3), api_key=KEY) as sb:
        code, out, err = cli(source, "--base-url", sb.url, *options, cwd=tmp_path)
        assert sb.state.requests < 50 + 4 * 2
    assert code == 3, out + err
    text = out + err
    assert "the first 50 rows sent were all not_found" in text
    assert "from column `Lead ID`" in text
    assert "--allow-not-found" in text
    assert "then run the command again without --resume, from the start (nothing was" in text
    statuses = [r["status"] for r in read_run_report(tmp_path / "report.csv.report.csv")]
    assert statuses.count("aborted") > 200  # the rest: resumable, not lost


def test_allow_not_found_sends_them_all(tmp_path: Path) -> None:
    source = salesforce(tmp_path, 60)
    options = ("--map", "Lead ID=id", "--ignore-unknown-columns", "--allow-not-found")
    with SandboxThread(make_leads(3), api_key=KEY) as sb:
        code, out, err = cli(source, "--base-url", sb.url, *options, cwd=tmp_path)
        assert sb.state.requests == 60
    assert code == 1, out + err
    statuses = {r["status"] for r in read_run_report(tmp_path / "report.csv.report.csv")}
    assert statuses == {"not_found"}

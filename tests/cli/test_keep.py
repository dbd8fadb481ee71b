"""`--keep COLUMN`: input columns copied into the report under their own header, so that the
report joins back to the source system by its own key; a kept column that means no field is not
sent, and `--resume` continues a report only with the same kept columns."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from bulk_updater.sandbox import SandboxThread
from tests.cli.conftest import KEY, cli, read_run_report
from tests.conftest import make_leads, write_csv

HEADER = ("CRM Id", "Lead", "City", "Owner")


def crm_input(tmp_path: Path, ids: list[str]) -> Path:
    rows = [(f"C-{n}", lead, f"City {n}", f"owner{n}") for n, lead in enumerate(ids)]
    rows[0] = ('=HYPERLINK("http://x")', ids[0], "City 0", "owner0")  # a formula in a key
    rows.append(("C-bad", "not/a/plain/id", "Nowhere", "ownerX"))  # invalid, never sent
    return write_csv(tmp_path / "crm.csv", HEADER, rows)


def test_kept_columns_follow_the_report_columns_under_the_inputs_own_header(
    tmp_path: Path,
) -> None:
    leads = make_leads(3)
    ids = list(leads)
    source = crm_input(tmp_path, ids)
    report = tmp_path / "report.csv"
    mapping = ("--map", "Lead=id", "--map", "Owner=-")
    with SandboxThread(leads, api_key=KEY) as sb:
        keep = ("--keep", "crm id", "--keep", "City", "--keep", "Owner")
        done = cli(source, *mapping, *keep, "--base-url", sb.url, "--report", report,
                   "--rate", "0", cwd=tmp_path)  # fmt: skip
        sent = {lead: dict(sb.state.leads[lead]) for lead in ids}
    assert done.code == 1, done.err  # the invalid row
    header = report.read_text(encoding="utf-8-sig").splitlines()[0]
    assert header.endswith(",email,CRM Id,City,Owner")
    records = read_run_report(report)
    kept = [(r["status"], r["CRM Id"], r["City"], r["Owner"]) for r in records]
    assert kept == [
        ("updated", '\'=HYPERLINK("http://x")', "City 0", "owner0"),
        ("updated", "C-1", "City 1", "owner1"),
        ("updated", "C-2", "City 2", "owner2"),
        ("invalid", "C-bad", "Nowhere", "ownerX"),
    ]
    assert [sent[lead]["city"] for lead in ids] == ["City 0", "City 1", "City 2"]
    assert not any("C-1" in json.dumps(lead) for lead in sent.values())


def test_a_kept_column_that_means_no_field_needs_no_map_and_is_not_sent(tmp_path: Path) -> None:
    leads = make_leads(2)
    ids = list(leads)
    write_csv(tmp_path / "in.csv", ("CRM Id", "id", "city"), [("C-0", ids[0], "Oslo"),
                                                              ("C-1", ids[1], "Rome")])  # fmt: skip
    report = tmp_path / "report.jsonl"
    with SandboxThread(leads, api_key=KEY) as sb:
        done = cli(tmp_path / "in.csv", "--keep", "CRM Id", "--base-url", sb.url,
                   "--report", report, "--rate", "0", cwd=tmp_path)  # fmt: skip
        requests = sb.state.requests
    assert done.code == 0, done.err
    assert requests == 2
    records = [json.loads(line) for line in report.read_text().splitlines()]
    assert [(r["id"], r["CRM Id"]) for r in records] == [(ids[0], "C-0"), (ids[1], "C-1")]


def test_json_lines_keep_their_keys_and_a_missing_one_is_an_empty_cell(tmp_path: Path) -> None:
    leads = make_leads(2)
    ids = list(leads)
    lines = [{"id": ids[0], "city": "Oslo", "crm": 7}, {"id": ids[1], "city": "Rome"}]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    report = tmp_path / "report.csv"
    with SandboxThread(leads, api_key=KEY) as sb:
        done = cli(source, "--keep", "crm", "--base-url", sb.url, "--report", report,
                   "--rate", "0", cwd=tmp_path)  # fmt: skip
    assert done.code == 0, done.err
    assert [r["crm"] for r in read_run_report(report)] == ["7", ""]


def test_a_kept_column_the_input_lacks_is_a_usage_error_naming_close_ones(tmp_path: Path) -> None:
    source = crm_input(tmp_path, list(make_leads(1)))
    done = cli(source, "--map", "Lead=id", "--keep", "CRM ID2", "--dry-run", cwd=tmp_path)
    assert done.code == 2
    assert done.err.strip().splitlines() == [
        f"bulk-updater: error: --keep CRM ID2: {source} has no such column (did you mean `CRM Id`?)"
    ]


def test_a_kept_column_may_not_take_a_name_the_report_has(tmp_path: Path) -> None:
    leads = make_leads(1)
    write_csv(tmp_path / "in.csv", ("id", "city"), [(next(iter(leads)), "Oslo")])
    done = cli(tmp_path / "in.csv", "--keep", "id", "--base-url", "http://127.0.0.1:9",
               cwd=tmp_path)  # fmt: skip
    assert done.code == 2
    assert "--keep id: the report has its own `id` column" in done.err


def test_resume_appends_the_same_kept_columns_and_refuses_others(tmp_path: Path) -> None:
    leads = make_leads(3)
    ids = list(leads)
    source = crm_input(tmp_path, ids)
    report = tmp_path / "report.csv"
    mapping = ("--map", "Lead=id", "--map", "Owner=-", "--map", "CRM Id=-")
    base = (source, *mapping, "--report", report, "--rate", "0")
    with SandboxThread(leads, api_key=KEY) as sb:
        first = cli(*base, "--keep", "CRM Id", "--limit", "1", "--base-url", sb.url,
                    cwd=tmp_path)  # fmt: skip
        other = cli(*base, "--keep", "Owner", "--resume", "--base-url", sb.url, cwd=tmp_path)
        again = cli(*base, "--keep", "CRM Id", "--resume", "--base-url", sb.url, cwd=tmp_path)
    assert first.code == 0, first.err
    assert other.code == 2
    assert "kept the columns CRM Id (now Owner); give the same --keep" in other.err
    assert again.code == 1, again.err  # the invalid row
    records = read_run_report(report)
    assert [r["CRM Id"] for r in records] == ['\'=HYPERLINK("http://x")', "C-1", "C-2", "C-bad"]
    assert all(set(r) == set(records[0]) for r in records)


def test_a_job_file_keeps_the_kept_columns_as_a_list(tmp_path: Path) -> None:
    source = crm_input(tmp_path, list(make_leads(1)))
    maps = ("--map", "Lead=id", "--map", "Owner=-")
    saved = cli(source, *maps, "--keep", "CRM Id", "--keep", "Owner", "--dry-run",
                "--save-job", "crm.toml", cwd=tmp_path)  # fmt: skip
    assert saved.code == 1, saved.err  # the dry run finds the invalid row
    job = tomllib.loads((tmp_path / "crm.toml").read_text(encoding="utf-8"))
    assert job["keep"] == ["CRM Id", "Owner"]
    again = cli(source, "--job", "crm.toml", "--dry-run", cwd=tmp_path)
    assert again.code == 1, again.err
    assert "CRM Id → dropped, kept in the report" in again.out
    (tmp_path / "one.toml").write_text('keep = "CRM Id"\nmap = {Lead = "id", Owner = "-"}\n')
    assert cli(source, "--job", "one.toml", "--dry-run", cwd=tmp_path).code == 1
    (tmp_path / "bad.toml").write_text("keep = [1]\n")
    bad = cli(source, *maps, "--job", "bad.toml", "--dry-run", cwd=tmp_path)
    assert bad.code == 2
    assert "`keep` must be a list of texts" in bad.err

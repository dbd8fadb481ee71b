"""A European Excel export, a workbook and a rejects file, end to end: `bulk-updater run` in a
child process against the sandbox."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import openpyxl

from bulk_updater.sandbox import SandboxThread
from tests.cli.conftest import KEY, cli, read_run_report
from tests.conftest import make_leads

LEADS = make_leads(4)
IDS = list(LEADS)
MISSING = "f" * 24
HEADER = "Lead ID;First Name;Job Title;Tags;Owner;Last Activity"
EXCEL_OPTIONS = ("--encoding", "cp1252", "--map", "Lead ID=id", "--ignore-unknown-columns")


def export(tmp_path: Path, rows: list[str], name: str = "hubspot.csv") -> Path:
    """A European Excel "CSV (semicolon)" export: cp1252, `;`, CRLF, human headers."""
    path = tmp_path / name
    path.write_bytes("\r\n".join([HEADER, *rows, ""]).encode("cp1252"))
    return path


def rows_of(path: Path, encoding: str, delimiter: str) -> list[list[str]]:
    text = path.read_bytes().decode(encoding).removeprefix("\ufeff")
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


def test_a_european_excel_export_goes_in_with_its_options(tmp_path: Path) -> None:
    source = export(tmp_path, [
        f"{IDS[0]};Zoë;Directrice générale;vip;Ann;2025-06-01",
        f"{IDS[1]};Jürgen;CTO;;Ann;2025-06-02",
    ])  # fmt: skip
    summary = tmp_path / "s.json"
    with SandboxThread(LEADS, api_key=KEY) as sb:
        without = ("--map", "Lead ID=id", "--ignore-unknown-columns")  # no --encoding
        refused = cli(source, "--base-url", sb.url, *without, cwd=tmp_path)
        assert sb.state.requests == 0
        code, out, err = cli(source, "--base-url", sb.url, *EXCEL_OPTIONS, "--summary-json",
                             summary, cwd=tmp_path)  # fmt: skip
        leads = sb.state.leads
    assert refused.code == 2
    assert "line 2 is not UTF-8" in refused.err
    assert "--encoding cp1252" in refused.err
    assert code == 0, out + err
    assert leads[IDS[0]]["firstName"] == "Zoë"
    assert leads[IDS[0]]["jobTitle"] == "Directrice générale"
    assert leads[IDS[1]]["firstName"] == "Jürgen"
    assert "columns left out: Owner, Last Activity" in out
    assert json.loads(summary.read_text())["dropped_columns"] == ["Owner", "Last Activity"]
    lines = read_run_report(tmp_path / "hubspot.csv.report.csv")
    assert [(line["row"], line["line"]) for line in lines] == [("1", "2"), ("2", "3")]


def test_the_dry_run_shows_how_the_file_is_read(tmp_path: Path) -> None:
    source = export(tmp_path, [f"{IDS[0]};Zoë;CTO;;Ann;x"])
    code, out, err = cli(source, "--dry-run", *EXCEL_OPTIONS, cwd=tmp_path)
    assert code == 0, out + err
    assert "reading" in out
    assert "encoding cp1252" in out
    assert "delimiter ';'" in out
    assert "Lead ID → id" in out
    assert "Job Title → jobTitle" in out
    assert "Owner → dropped" in out


def test_rejects_are_the_input_as_read_ready_to_fix_and_feed_back(tmp_path: Path) -> None:
    source = export(tmp_path, [
        f"{IDS[0]};Zoë;CTO;vip;Ann;x",
        f"{MISSING};Ghost;CEO;;Ann;x",
        f"{IDS[1]};Jürgen;CFO;[\"unclosed;Bo;y",
        f"{IDS[2]};Åsa;COO;;Bo;y",
    ])  # fmt: skip
    rejects = tmp_path / "to-fix.csv"
    with SandboxThread(LEADS, api_key=KEY) as sb:
        code, out, err = cli(source, "--base-url", sb.url, *EXCEL_OPTIONS, "--rejects", rejects,
                             cwd=tmp_path)  # fmt: skip
        assert code == 1, out + err
        assert str(rejects) in out
        lines = rows_of(rejects, "cp1252", ";")  # the input's own encoding and delimiter
        assert lines[0] == [*HEADER.split(";"), "_status", "_message"]
        assert [line[:2] for line in lines[1:]] == [[MISSING, "Ghost"], [IDS[1], "Jürgen"]]
        assert [line[6] for line in lines[1:]] == ["not_found", "invalid"]
        assert "column tags" in lines[2][7]
        # fixed in a spreadsheet, fed back with the same options
        lines[2][3] = "vip;q3"
        with open(rejects, "w", encoding="cp1252", newline="") as file:
            csv.writer(file, delimiter=";", lineterminator="\r\n").writerows(lines)
        again = tmp_path / "again.csv"
        code, out, err = cli(rejects, "--base-url", sb.url, *EXCEL_OPTIONS, "--rejects", again,
                             cwd=tmp_path)  # fmt: skip
        assert code == 1, out + err
        assert sb.state.leads[IDS[1]]["tags"] == ["vip", "q3"]
        assert [line[0] for line in rows_of(again, "cp1252", ";")[1:]] == [MISSING]


def test_rejects_after_resume_cover_the_whole_report(tmp_path: Path) -> None:
    source = export(tmp_path, [f"{IDS[0]};A;x;;;", f"{MISSING};B;y;;;", f"{IDS[1]};C;z;;;"])
    rejects = tmp_path / "rejects.csv"
    with SandboxThread(LEADS, api_key=KEY) as sb:
        first = cli(source, "--base-url", sb.url, *EXCEL_OPTIONS, cwd=tmp_path)
        assert first.code == 1
        second = cli(source, "--base-url", sb.url, *EXCEL_OPTIONS, "--resume", "--rejects",
                     rejects, cwd=tmp_path)  # fmt: skip
        assert sum(sb.state.patches_by_lead.values()) == 3  # the resume sent nothing again
    assert second.code == 1
    (_, line) = rows_of(rejects, "cp1252", ";")
    assert line[0] == MISSING
    assert line[6] == "not_found"
    assert "earlier run" in line[7]


def test_resume_refuses_to_read_the_input_another_way(tmp_path: Path) -> None:
    source = export(tmp_path, [f"{IDS[0]};A;x;;;", f"{IDS[1]};B;y;;;"])
    with SandboxThread(LEADS, api_key=KEY) as sb:
        assert cli(source, "--base-url", sb.url, *EXCEL_OPTIONS, cwd=tmp_path).code == 0
        other = ("--encoding", "latin-1", "--map", "Lead ID=id", "--ignore-unknown-columns")
        code, out, err = cli(source, "--base-url", sb.url, *other, "--resume", cwd=tmp_path)
        requests = sb.state.requests
    assert code == 2, out + err
    assert "cannot resume" in err
    assert "encoding 'cp1252' (now 'latin-1')" in err
    assert requests == 2


def test_a_workbook_end_to_end(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Lead ID", "Phone Number", "Owner"])
    sheet.append([IDS[0], 4155550100, "Ann"])
    sheet.append([IDS[1], 4155550101, "Bo"])
    path = tmp_path / "export.xlsx"
    book.save(path)
    with SandboxThread(LEADS, api_key=KEY) as sb:
        code, out, err = cli(path, "--base-url", sb.url, "--map", "Lead ID=id", "--map",
                             "Phone Number=phone", "--map", "Owner=-", cwd=tmp_path)  # fmt: skip
        leads = sb.state.leads
    assert code == 0, out + err
    assert leads[IDS[0]]["phone"] == "4155550100"
    assert leads[IDS[1]]["phone"] == "4155550101"
    lines = read_run_report(tmp_path / "export.xlsx.report.csv")
    assert [line["line"] for line in lines] == ["2", "3"]


def test_a_salesforce_report_with_its_footer_exits_0(tmp_path: Path) -> None:
    path = tmp_path / "report.csv"
    path.write_text(
        '"Lead ID","First Name","Title"\n'
        f'"{IDS[0]}","Ann","CTO"\n'
        f'"{IDS[1]}","Bo","CFO"\n'
        '\n""\n'
        '"Copyright (c) 2000-2026 salesforce.com, inc. All rights reserved."\n'
        '"Confidential Information - Do Not Distribute"\n',
        encoding="utf-8",
    )
    summary = tmp_path / "s.json"
    with SandboxThread(LEADS, api_key=KEY) as sb:
        code, out, err = cli(path, "--base-url", sb.url, "--map", "Lead ID=id", "--map",
                             "Title=jobTitle", "--summary-json", summary, cwd=tmp_path)  # fmt: skip
        requests = sb.state.requests
    assert code == 0, out + err
    assert requests == 2
    assert "rows in" in out
    assert "warning: footer left out (2 rows after the last): `Copyright (c)" in out
    assert json.loads(summary.read_text())["counts"]["updated"] == 2
    lines = read_run_report(tmp_path / "report.csv.report.csv")
    assert len(lines) == 2


def test_tags_written_with_commas_are_never_sent_as_one_tag(tmp_path: Path) -> None:
    path = tmp_path / "sheet.csv"
    path.write_text(f'id,tags\n{IDS[0]},"vip, enterprise"\n{IDS[1]},vip\n', encoding="utf-8")
    with SandboxThread(LEADS, api_key=KEY) as sb:
        dry = cli(path, "--dry-run", cwd=tmp_path)
        refused = cli(path, "--base-url", sb.url, cwd=tmp_path)
        untouched = sb.state.leads[IDS[0]]["tags"]
        listed = cli(path, "--base-url", sb.url, "--tags-separator", ",", cwd=tmp_path)
        tags = sb.state.leads[IDS[0]]["tags"]
    assert dry.code == 1
    assert "note: 1 tags cell holds another separator than `;`" in dry.out
    assert "--tags-separator ','" in dry.out
    assert refused.code == 1
    assert "warning: 1 tags cell" in refused.out
    assert untouched == LEADS[IDS[0]]["tags"]
    assert listed.code == 0, listed.out + listed.err
    assert tags == ["vip", "enterprise"]


def test_a_title_row_above_the_header_with_header_row(tmp_path: Path) -> None:
    path = tmp_path / "titled.csv"
    path.write_text(f"Leads export 2026-12-01\nid,city\n{IDS[0]},Oslo\n", encoding="utf-8")
    with SandboxThread(LEADS, api_key=KEY) as sb:
        code, out, err = cli(path, "--base-url", sb.url, "--header-row", "2", cwd=tmp_path)
        city = sb.state.leads[IDS[0]]["city"]
    assert code == 0, out + err
    assert city == "Oslo"
    lines = read_run_report(tmp_path / "titled.csv.report.csv")
    assert [line["line"] for line in lines] == ["3"]


def test_a_workbook_keeps_numbers_and_shows_a_phone_as_excel_does(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["id", "phone", "Employees", "Notes"])
    sheet.append([IDS[0], 4155553898, 1201, "=A1"])  # a formula in a dropped column
    sheet["B2"].number_format = "[<=9999999]###-####;(###) ###-####"
    path = tmp_path / "hand-made.xlsx"
    book.save(path)
    with SandboxThread(LEADS, api_key=KEY) as sb:
        code, out, err = cli(path, "--base-url", sb.url, "--map", "Employees=customFields.keep",
                             "--map", "Notes=-", cwd=tmp_path)  # fmt: skip
        lead = sb.state.leads[IDS[0]]
    assert code == 0, out + err
    assert lead["phone"] == "(415) 555-3898"
    assert lead["customFields"]["keep"] == 1201  # a number, not the text "1201"


def test_a_csv_column_typed_in_the_map(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text(f"id,Employees\n{IDS[0]},250\n{IDS[1]},many\n", encoding="utf-8")
    with SandboxThread(LEADS, api_key=KEY) as sb:
        code, out, err = cli(path, "--base-url", sb.url, "--map",
                             "Employees=customFields.employees:number", cwd=tmp_path)  # fmt: skip
        leads = sb.state.leads
    assert code == 1, out + err
    assert leads[IDS[0]]["customFields"]["employees"] == 250
    assert "employees" not in leads[IDS[1]]["customFields"]
    lines = read_run_report(tmp_path / "people.csv.report.csv")
    assert lines[1]["status"] == "invalid"
    assert "'many' is not a number" in lines[1]["message"]


def test_a_utf8_export_read_with_a_jobs_legacy_encoding_is_refused_before_any_request(
    tmp_path: Path,
) -> None:
    """The job was saved from a cp1252 export; tonight's export is UTF-8 (no BOM): read as cp1252,
    `Zoë` would go out as `ZoÃ«`."""
    job = tmp_path / "nightly.toml"
    job.write_text('encoding = "cp1252"\nignore-unknown-columns = true\n[map]\n"Lead ID" = "id"\n')
    source = tmp_path / "tonight.csv"
    source.write_bytes(f"{HEADER}\r\n{IDS[0]};Zoë;CEO;;Ann;\r\n".encode())
    with SandboxThread(LEADS, api_key=KEY) as sb:
        from_job = cli(source, "--base-url", sb.url, "--job", job, "-q", cwd=tmp_path)
        given = cli(source, "--base-url", sb.url, "--job", job, "--encoding", "latin-1",
                    cwd=tmp_path)  # fmt: skip
        assert sb.state.requests == 0
        fixed = cli(source, "--base-url", sb.url, "--job", job, "--encoding", "utf-8", cwd=tmp_path)
        first_name = sb.state.leads[IDS[0]]["firstName"]
    assert (from_job.code, from_job.out) == (2, "")
    assert from_job.err.strip() == (
        f"bulk-updater: error: {source}: the file is UTF-8 text, not cp1252 (line 2 holds `Zoë`, "
        f'which cp1252 reads as `ZoÃ«`); set encoding = "utf-8" in the job file {job}'
    )
    assert given.code == 2
    assert given.err.strip().endswith("reads as `ZoÃ«`); drop --encoding latin-1")
    assert fixed.code == 0, fixed.err
    assert first_name == "Zoë"


def filtered_workbook(path: Path) -> Path:
    """A sheet filtered down to the rows to update: Excel's AutoFilter hides row 3 (the intern)."""
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Leads"
    for row in (["id", "Job Title", "Status"], [IDS[0], "CRO", "update"],
                [IDS[1], "INTERN - DO NOT SEND", "skip"], [IDS[2], "CFO", "update"]):  # fmt: skip
        sheet.append(row)
    sheet.auto_filter.ref = "A1:C4"
    sheet.row_dimensions[3].hidden = True
    book.save(path)
    return path


def test_rows_a_filter_hides_are_not_sent_but_reported_skipped(tmp_path: Path) -> None:
    source = filtered_workbook(tmp_path / "filtered.xlsx")
    job = tmp_path / "send-hidden.toml"
    job.write_text('hidden-rows = "send"\n[map]\nStatus = "-"\n')
    with SandboxThread(LEADS, api_key=KEY) as sb:
        dry = cli(source, "--base-url", sb.url, "--map", "Status=-", "--dry-run", cwd=tmp_path)
        code, out, err = cli(source, "--base-url", sb.url, "--map", "Status=-", cwd=tmp_path)
        titles = [sb.state.leads[lead]["jobTitle"] for lead in IDS[:3]]
        resumed = cli(source, "--base-url", sb.url, "--map", "Status=-", "--resume", cwd=tmp_path)
        sent = cli(source, "--base-url", sb.url, "--job", job, "--report", tmp_path / "all.csv",
                   cwd=tmp_path)  # fmt: skip
        intern = sb.state.leads[IDS[1]]["jobTitle"]
    note = (
        "1 row hidden in the sheet `Leads` (by a filter or by hand) left out as `skipped` (sheet "
        "row 3); to send it, unhide it or pass --hidden-rows send"
    )
    assert dry.code == 0, dry.err
    assert "2 rows valid, 0 invalid" in dry.out
    assert "INTERN" not in dry.out
    assert f"note: {note}" in dry.out
    assert code == 0, err
    assert titles == ["CRO", "Engineer", "CFO"]  # the hidden row's lead is untouched
    assert "updated 2, skipped 1" in out
    assert f"warning: {note}" in out
    lines = read_run_report(tmp_path / "filtered.xlsx.report.csv")
    assert [(line["row"], line["line"], line["status"]) for line in lines] == [
        ("1", "2", "updated"), ("2", "3", "skipped"), ("3", "4", "updated")]  # fmt: skip
    assert lines[1]["message"].startswith("hidden in the sheet `Leads` (by a filter or by hand)")
    assert resumed.code == 0, resumed.err
    assert read_run_report(tmp_path / "filtered.xlsx.report.csv") == lines  # no line twice
    assert sent.code == 0, sent.err
    assert "updated 3" in sent.out
    assert "1 row hidden in the sheet `Leads` (by a filter or by hand) is sent too" in sent.out
    assert intern == "INTERN - DO NOT SEND"

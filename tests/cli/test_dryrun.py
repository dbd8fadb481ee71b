"""`--dry-run`: every row read and validated, nothing sent; exit 1 when a row is invalid."""

from __future__ import annotations

import json
import re
from pathlib import Path

from bulk_updater.sandbox import SandboxThread
from tests.cli.conftest import KEY, cli, job_input, mixed_input
from tests.conftest import make_leads


def test_dry_run_validates_and_sends_nothing(tmp_path: Path) -> None:
    leads = make_leads(3)
    source, ids = job_input(tmp_path, leads)
    with SandboxThread(leads, api_key=KEY) as sb:
        code, out, err = cli(source, "--base-url", sb.url, "--dry-run", cwd=tmp_path)
        assert sb.state.requests == 0
    assert code == 0, out + err
    assert f"/v1/leads/{ids[0]}" in out
    assert '"jobTitle": "Title 0"' in out  # an example body
    assert re.search(r"\b3\b", out)  # the count of valid rows


def test_dry_run_with_an_invalid_row_exits_1_and_sends_nothing(tmp_path: Path) -> None:
    leads = make_leads(3)
    source = mixed_input(tmp_path, leads)
    with SandboxThread(leads, api_key=KEY) as sb:
        code, out, err = cli(source, "--base-url", sb.url, "--dry-run", cwd=tmp_path)
        assert sb.state.requests == 0
    assert code == 1, out + err
    assert "row 5" in out


def test_the_dry_run_shows_each_tag_list_and_what_tags_do(tmp_path: Path) -> None:
    ids = list(make_leads(2))
    path = tmp_path / "members.csv"  # Mailchimp's TAGS: a quoted list
    path.write_text(
        f'"Lead ID",TAGS\n"{ids[0]}","""Customer"",""VIP"""\n"{ids[1]}","[]"\n', encoding="utf-8"
    )
    code, out, err = cli(path, "--dry-run", "--map", "Lead ID=id", "--map", "TAGS=tags",
                         cwd=tmp_path)  # fmt: skip
    assert code == 0, out + err
    assert "tags: 2: `Customer`, `VIP`" in out
    assert "tags: none (the lead's tags are cleared)" in out
    assert out.count("replaces a lead's whole tag list") == 1


def test_the_dry_run_escapes_line_breaks_in_what_it_shows(tmp_path: Path) -> None:
    (lead,) = make_leads(1)
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps({"id": lead, "tags": ["vip\ngold", "a"]}) + "\n", encoding="utf-8")
    code, out, err = cli(path, "--dry-run", cwd=tmp_path)
    assert code == 0, out + err
    assert "    tags: 2: `vip\\x0agold`, `a`\n" in out  # the line break shown escaped


def test_the_dry_run_names_a_footer_it_leaves_out(tmp_path: Path) -> None:
    (lead,) = make_leads(1)
    path = tmp_path / "report.csv"
    path.write_text(f"id,city\n{lead},Oslo\n\nConfidential Information\n", encoding="utf-8")
    code, out, err = cli(path, "--dry-run", cwd=tmp_path)
    assert code == 0, out + err
    assert "1 row valid, 0 invalid" in out
    assert "note: footer left out (1 row after the last): `Confidential Information`" in out


def test_one_row_and_one_email_read_in_the_singular(tmp_path: Path) -> None:
    source = tmp_path / "one.csv"
    source.write_text("email,jobTitle\nava@example.com,CTO\n", encoding="utf-8")
    code, out, err = cli(source, "--dry-run", "--match", "email", cwd=tmp_path)
    assert code == 0, out + err
    assert ": 1 row valid, 0 invalid" in out
    assert "would search for 1 distinct email, one search each" in out


def test_the_dry_run_of_json_lines_shows_what_each_key_means(tmp_path: Path) -> None:
    (lead,) = make_leads(1)
    path = tmp_path / "leads.jsonl"
    path.write_text(json.dumps({"_id": lead, "jobTitle": "CTO", "phoneNumber": "+1 555"}) + "\n")
    code, out, err = cli(path, "--dry-run", "--ignore-unknown-columns", cwd=tmp_path)
    assert code == 0, out + err
    assert "columns:\n  _id → id\n  jobTitle → jobTitle\n" in out
    assert "  phoneNumber → dropped (did you mean `phone`?)\n" in out

"""`--dry-run`: every row read and validated, nothing sent; exit 1 when a row is invalid."""

from __future__ import annotations

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


def test_one_row_and_one_email_read_in_the_singular(tmp_path: Path) -> None:
    source = tmp_path / "one.csv"
    source.write_text("email,jobTitle\nava@example.com,CTO\n", encoding="utf-8")
    code, out, err = cli(source, "--dry-run", "--match", "email", cwd=tmp_path)
    assert code == 0, out + err
    assert ": 1 row valid, 0 invalid" in out
    assert "would search for 1 distinct email, one search each" in out

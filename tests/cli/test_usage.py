"""Usage and input errors exit 2 before any request: bad input, bad settings, and outputs that
would destroy the input or cannot be written."""

from __future__ import annotations

from pathlib import Path

import pytest

from bulk_updater.sandbox import SandboxThread
from tests.cli.conftest import KEY, cli, job_input
from tests.conftest import make_leads


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("unknown.csv", "id,jobtitel\n000000000000000000000000,CTO\n", ["jobtitel", "jobTitle"]),
        ("noid.csv", "firstName,jobTitle\nAnn,CTO\n", ["id"]),
        ("missing.csv", None, ["missing.csv"]),
    ],
)
def test_input_errors_exit_2_before_any_request(
    tmp_path: Path, name: str, content: str | None, expected: list[str]
) -> None:
    if content is not None:
        (tmp_path / name).write_text(content, encoding="utf-8")
    with SandboxThread(make_leads(1), api_key=KEY) as sb:
        code, out, err = cli(tmp_path / name, "--base-url", sb.url, cwd=tmp_path)
        assert sb.state.requests == 0
    assert code == 2, out + err
    assert "Traceback" not in err
    for word in expected:
        assert word in err


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--rate", "-1"), "rate"),
        (("--concurrency", "0"), "concurrency"),
        (("--limit", "0"), "--limit: must be 1 or more"),
        (("--job", "missing.toml"), "--job missing.toml: no such file"),
        (("--report", "out.txt"), "out.txt"),
        (("--no-such-flag",), "no-such-flag"),
    ],
)
def test_bad_settings_exit_2_before_any_request(
    tmp_path: Path, args: tuple[str, ...], expected: str
) -> None:
    source, _ = job_input(tmp_path, make_leads(2))
    with SandboxThread(make_leads(2), api_key=KEY) as sb:
        code, out, err = cli(source, "--base-url", sb.url, *args, cwd=tmp_path)
        assert sb.state.requests == 0
    assert code == 2, out + err
    assert expected in err
    assert "Traceback" not in err


def test_report_that_is_the_input_is_refused(tmp_path: Path) -> None:
    source, _ = job_input(tmp_path, make_leads(3))
    before = source.read_bytes()
    with SandboxThread(make_leads(3), api_key=KEY) as sb:
        code, out, err = cli(source, "--base-url", sb.url, "--report", source, cwd=tmp_path)
        assert sb.state.requests == 0
    assert code == 2, out + err
    assert "is the input file" in err
    assert source.read_bytes() == before


@pytest.mark.parametrize("flag", ["--report", "--summary-json"])
def test_output_in_a_missing_folder_exits_2_before_any_request(tmp_path: Path, flag: str) -> None:
    source, _ = job_input(tmp_path, make_leads(3))
    target = tmp_path / "no" / "such" / ("out.csv" if flag == "--report" else "s.json")
    with SandboxThread(make_leads(3), api_key=KEY) as sb:
        code, out, err = cli(source, "--base-url", sb.url, flag, target, cwd=tmp_path)
        assert sb.state.requests == 0
    assert code == 2, out + err
    assert "does not exist" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("name", "content", "flags", "warning"),
    [
        ("in.jsonl", '{"id": "%s", "city": "Oslo"}\n',
         ("--sheet", "Leads", "--delimiter", ";", "--header-row", "2", "--tags-separator", ","),
         "--delimiter, --header-row, --tags-separator, --sheet do not apply to JSON lines; "
         "ignored"),
        ("in.csv", "id,city\n%s,Oslo\n", ("--sheet", "Leads"),
         "--sheet does not apply to CSV; ignored"),
    ],
)  # fmt: skip
def test_options_that_do_not_apply_to_the_format_are_named_once(
    tmp_path: Path, name: str, content: str, flags: tuple[str, ...], warning: str
) -> None:
    (lead,) = make_leads(1)
    (tmp_path / name).write_text(content % lead, encoding="utf-8")
    code, out, err = cli(tmp_path / name, "--dry-run", *flags, cwd=tmp_path)
    assert code == 0, out + err
    assert err.splitlines() == [f"bulk-updater: warning: {warning}"]
    code, out, err = cli(tmp_path / name, "--dry-run", cwd=tmp_path)
    assert err == ""

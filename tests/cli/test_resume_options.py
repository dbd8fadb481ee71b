"""`--resume` reads the input as the run that started the report did: an option given on one
run and left at its default on the other is a change too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bulk_updater.report.meta import meta_path, read_meta
from bulk_updater.sandbox import SandboxThread
from tests.cli.conftest import KEY, cli, job_input
from tests.conftest import make_leads


@pytest.mark.parametrize(
    ("first", "then"),
    [
        ((), ("--tags-separator", "|")),
        (("--tags-separator", ","), ()),
    ],
)
def test_an_option_at_its_default_on_one_run_only_is_refused(
    tmp_path: Path, first: tuple[str, ...], then: tuple[str, ...]
) -> None:
    leads = make_leads(2)
    source, _ = job_input(tmp_path, leads)
    report = tmp_path / "report.csv"
    with SandboxThread(leads, api_key=KEY) as sb:
        args = (source, "--base-url", sb.url, "--report", report)
        tried = cli(*args, *first, "--limit", "1", cwd=tmp_path)
        assert tried.code in (0, 1), tried.out + tried.err  # row 1 `updated` or `invalid`
        before, requests = report.read_bytes(), sb.state.requests
        code, out, err = cli(*args, *then, "--resume", cwd=tmp_path)
        assert sb.state.requests == requests
    assert code == 2, out + err
    assert f"read the input with {(then or first)[0]} " in err  # the flag, not a key of ours
    assert "give the same options" in err
    assert report.read_bytes() == before


@pytest.mark.parametrize(
    ("first", "then"), [((), ("--header-row", "1")), (("--header-row", "1"), ())]
)
def test_the_header_row_given_as_its_default_resumes(
    tmp_path: Path, first: tuple[str, ...], then: tuple[str, ...]
) -> None:
    """`--header-row 1` reads the header from the first line, as no `--header-row` does."""
    leads = make_leads(2)
    source, _ = job_input(tmp_path, leads)
    report = tmp_path / "report.csv"
    with SandboxThread(leads, api_key=KEY) as sb:
        args = (source, "--base-url", sb.url, "--report", report)
        assert cli(*args, *first, "--limit", "1", cwd=tmp_path).code == 0
        code, out, err = cli(*args, *then, "--resume", cwd=tmp_path)
        assert sb.state.requests == 2
    assert code == 0, out + err


def test_another_header_row_is_refused_naming_the_flag(tmp_path: Path) -> None:
    leads = make_leads(2)
    source, _ = job_input(tmp_path, leads)
    report = tmp_path / "report.csv"
    with SandboxThread(leads, api_key=KEY) as sb:
        args = (source, "--base-url", sb.url, "--report", report)
        assert cli(*args, "--limit", "1", cwd=tmp_path).code == 0
        meta = read_meta(report.resolve())
        assert meta is not None
        meta["input_options"]["header_row"] = 3  # as a run with `--header-row 3` keeps it
        meta_path(report.resolve()).write_text(json.dumps(meta))
        code, out, err = cli(*args, "--resume", cwd=tmp_path)
        assert sb.state.requests == 1
    assert code == 2, out + err
    assert "read the input with --header-row 3 (now 1); give the same options" in err
    assert "header_row" not in err.partition("cannot resume")[2]


def test_a_meta_that_left_out_the_default_separator_resumes_with_it(tmp_path: Path) -> None:
    """Versions before every option was kept wrote the tags separator only when not `;`."""
    leads = make_leads(2)
    source, _ = job_input(tmp_path, leads)
    report = tmp_path / "report.csv"
    with SandboxThread(leads, api_key=KEY) as sb:
        args = (source, "--base-url", sb.url, "--report", report)
        assert cli(*args, "--limit", "1", cwd=tmp_path).code == 0
        meta = read_meta(report.resolve())
        assert meta is not None
        for option in ("tags_separator", "header_row"):
            del meta["input_options"][option]
        meta_path(report.resolve()).write_text(json.dumps(meta))
        code, out, err = cli(*args, "--resume", cwd=tmp_path)
        assert sb.state.requests == 2
    assert code == 0, out + err

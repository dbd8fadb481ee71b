"""What a run tells at its end: `--summary-json`, the exit code for problem rows, `-q`."""

from __future__ import annotations

import json
from pathlib import Path

from bulk_updater import Outcome, Status, StopReason, Summary
from bulk_updater.cli.summary import (
    EXIT_OK,
    EXIT_ROWS,
    Problems,
    format_summary,
    next_step,
    worth_telling,
)
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


def test_a_one_row_run_with_no_limit_met_claims_no_settled_rate(tmp_path: Path) -> None:
    """No 429, no rate-limit headers, no --rate: the rate was still climbing, never settled."""
    leads = make_leads(1)
    source, _ = job_input(tmp_path, leads)
    with SandboxThread(leads, api_key=KEY) as sb:
        code, out, err = cli(source, "--base-url", sb.url, "--rate", "auto", cwd=tmp_path)
    assert code == 0, out + err
    assert "  rate: still climbing: no 429 and no rate-limit headers yet\n" in out
    assert "settled at" not in out


def test_summary_json_says_where_the_rejects_are(tmp_path: Path) -> None:
    leads = make_leads(3)
    source = mixed_input(tmp_path, leads)
    summary, rejects = tmp_path / "summary.json", Path("mixed.rejects.csv")
    with SandboxThread(leads, api_key=KEY) as sb:
        args = ("--base-url", sb.url, "--rate", "0", "--summary-json", summary)
        code, out, err = cli(source, *args, "--rejects", rejects, cwd=tmp_path)
        assert code == 1, out + err
        assert json.loads(summary.read_text())["rejects"] == str(tmp_path / rejects)
        code, out, err = cli(source, *args, cwd=tmp_path)
    assert code == 1, out + err
    assert json.loads(summary.read_text())["rejects"] is None


def test_quiet_with_problem_rows_prints_the_summary_and_what_to_run_next(tmp_path: Path) -> None:
    """Cron mails what `-q` prints: nothing when all went well, else enough to act on."""
    leads = make_leads(3)
    source = mixed_input(tmp_path, leads)
    rejects = tmp_path / "mixed.rejects.csv"
    with SandboxThread(leads, api_key=KEY) as sb:
        args = ("--base-url", sb.url, "--rate", "0", "--rejects", rejects, "-q")
        code, out, err = cli(source, *args, cwd=tmp_path)
    assert code == 1, out + err
    assert "bulk-updater: 5 rows in " in out
    assert "updated 3, not_found 1, invalid 1" in out
    assert any(line.startswith("  report: ") for line in out.splitlines())
    assert f"  rows to fix and feed back: {rejects}" in out
    assert "    row 4 (ffffffffffffffffffffffff): not_found" in out
    assert "    row 5 (not/a/plain/id): invalid" in out
    assert f"  next: fix the rows in {rejects} and run it as the input" in out


def test_quiet_says_a_warning_even_at_exit_0() -> None:
    fine = summary_of(updated=2)
    warned = fine.model_copy(update={"warnings": ["the report could not be put in input order"]})
    assert not worth_telling(fine, EXIT_OK, quiet=True)
    assert worth_telling(warned, EXIT_OK, quiet=True)
    assert worth_telling(fine, EXIT_ROWS, quiet=True)
    assert worth_telling(fine, EXIT_OK, quiet=False)


def summary_of(requests: int | None = None, **counts: int) -> Summary:
    tally = dict.fromkeys(Status, 0) | {Status(name): n for name, n in counts.items()}
    sent = sum(tally.values()) if requests is None else requests
    return Summary(
        counts=tally, rows=sum(tally.values()), requests=sent, retries=0, rate_limited=0,
        duration_s=1.0, achieved_rate=float(sent), settled_rate=10.0,
        settled_why="the --rate 10 ceiling, no 429",
    )  # fmt: skip


def test_counts_read_right_in_the_singular() -> None:
    one = summary_of(updated=1).model_copy(update={"searches": 1, "requests": 2})
    text = format_summary(one, not_read=1)
    assert text.startswith("bulk-updater: 1 row in ")
    assert "(1 search, 1 update)" in text
    assert "  1 more row was not read;" in text
    two = format_summary(summary_of(updated=2).model_copy(update={"searches": 2, "requests": 4}))
    assert two.startswith("bulk-updater: 2 rows in ")
    assert "(2 searches, 2 updates)" in two


def test_a_run_that_sent_nothing_says_no_settled_rate() -> None:
    assert "rate: settled at 10.0/s" in format_summary(summary_of(updated=1))
    assert "rate:" not in format_summary(summary_of(requests=0, invalid=2))


def test_the_rejects_line_only_when_the_rejects_file_holds_rows(tmp_path: Path) -> None:
    rejects = tmp_path / "r.csv"
    assert "rows to fix" not in format_summary(summary_of(updated=2), rejects=rejects)
    assert "rows to fix" not in format_summary(summary_of(unchanged=2), rejects=rejects)
    some = format_summary(summary_of(updated=1, invalid=1), rejects=rejects)
    assert f"rows to fix and feed back: {rejects}" in some
    resumed = summary_of(skipped=2).model_copy(update={"earlier": {Status.NOT_FOUND: 1}})
    assert "rows to fix" in format_summary(resumed, rejects=rejects)


def test_what_to_run_next(tmp_path: Path) -> None:
    rejects = tmp_path / "r.csv"
    assert next_step(summary_of(updated=2), rereadable=True, rejects=rejects) is None
    cut = summary_of(updated=1, aborted=1).model_copy(update={"stopped": StopReason.INTERRUPTED})
    assert next_step(cut, rereadable=True, rejects=None) == (
        "rerun the same command with --resume: it sends only the rows not finished"
    )
    assert next_step(cut, rereadable=False, rejects=None) is None  # a pipe: nothing to resume
    refused = cut.model_copy(update={"stopped": StopReason.KEY_REFUSED})
    assert str(next_step(refused, rereadable=True, rejects=None)).startswith("fix what stopped")
    wrong_ids = summary_of(not_found=50, aborted=9).model_copy(
        update={"stopped": StopReason.UNKNOWN_IDS}
    )
    assert next_step(wrong_ids, rereadable=True, rejects=None) == (
        "map the column of SendKit lead ids to id (or match by email), then run the command "
        "again without --resume, from the start (nothing was updated)"
    )
    bad = summary_of(updated=1, not_found=1)
    assert next_step(bad, rereadable=True, rejects=rejects) == (
        f"fix the rows in {rejects} and run it as the input"
    )
    assert "--rejects PATH" in str(next_step(bad, rereadable=True, rejects=None))


def test_the_problems_listed_are_the_first_few_each_on_one_line() -> None:
    problems = Problems(keep=2)
    problems.take(Outcome(row=1, id="a1", status=Status.UPDATED))
    problems.take(Outcome(row=2, id="a\nb", status=Status.INVALID, message="bad\r\nid"))
    problems.take(Outcome(row=3, id="a3", status=Status.REJECTED, message="x" * 500))
    problems.take(Outcome(row=4, id="a4", status=Status.NOT_FOUND))
    assert problems.lines == [
        "row 2 (a\\x0ab): invalid: bad\\x0d\\x0aid",
        f"row 3 (a3): rejected: {'x' * 200}",
    ]

"""The input watch after the read: a touch is no change, a last line with no line break waits
until the file is known whole, the end of the job looks once more, and a rewrite in place is seen
within a batch of records (review 8: W1, W2, W3).

Each change is made by the test at a point the job reaches (the first outcome), never after a
sleep: the rows after it are still to be sent then.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from bulk_updater import BulkUpdater, Outcome, Source, Status, StopReason
from bulk_updater.sandbox import Sandbox
from tests.conftest import make_leads, read_report

KEY = "sk_test_watch"


def append(path: Path, text: str) -> None:
    with open(path, "a") as exporter:
        exporter.write(text)


def once(change: list[object]) -> object:
    """An `on_outcome` that calls `change[0]()` at the first outcome only."""

    def on_outcome(outcome: Outcome) -> None:
        if change:
            change.pop()()  # type: ignore[operator]

    return on_outcome


async def test_a_touched_input_is_no_change(tmp_path: Path) -> None:
    """`touch` (or a copy keeping times): the bytes hash as they did when the run read them."""
    leads = make_leads(3)
    path = tmp_path / "nightly.csv"
    path.write_text("id,jobTitle\n" + "".join(f"{lead},Chief\n" for lead in leads))
    source = Source(path)
    source.check()
    later = os.stat(path).st_mtime_ns + 5_000_000_000
    os.utime(path, ns=(later, later))
    async with (
        Sandbox(leads, api_key=KEY) as sb,
        BulkUpdater(api_key=KEY, base_url=sb.url, rate=0) as up,
    ):
        summary = await up.run(source, report=tmp_path / "r.csv")
    assert summary.stopped is None
    assert summary.counts[Status.UPDATED] == 3


async def test_a_last_line_with_no_line_break_waits_and_is_not_sent_once_the_file_grew(
    tmp_path: Path,
) -> None:
    """Read at once (a small file), unchanged then; the exporter finishes while the rows before
    it are sent: `Engin` is never sent, and the job stops."""
    leads = make_leads(4)
    a, b, c, d = leads
    path = tmp_path / "cut.csv"
    path.write_text(f"id,jobTitle\n{a},Chief\n{b},Head\n{c},Engin")
    source = Source(path)
    source.check()
    finish = [lambda: append(path, f"eer\n{d},Late\n")]
    async with Sandbox(leads, api_key=KEY) as sb:
        async with BulkUpdater(api_key=KEY, base_url=sb.url, rate=0, concurrency=1) as up:
            summary = await up.run(source, report=tmp_path / "r.csv", on_outcome=once(finish))
        held = {lead: sb.state.leads[lead]["jobTitle"] for lead in leads}
    assert not finish  # the file changed while the rows before the last one were sent
    assert held == {a: "Chief", b: "Head", c: "Engineer", d: "Engineer"}
    assert (summary.stopped, summary.exit_code) == (StopReason.INPUT_CHANGED, 3)
    report = read_report(tmp_path / "r.csv")
    assert [(r["row"], r["status"]) for r in report] == [
        ("1", "updated"),
        ("2", "updated"),
        ("3", "aborted"),
    ]
    assert report[2]["message"] == (
        f"not sent: {path} changed after it was read (an exporter still writing it?): its last "
        "line was cut off; once it is complete, run it again with a new --report (--resume "
        "refuses a file that ended mid-line)"
    )


async def test_a_json_lines_last_line_waits_too(tmp_path: Path) -> None:
    leads = make_leads(2)
    path = tmp_path / "cut.jsonl"
    first, last = ({"id": lead, "jobTitle": "Chief"} for lead in leads)
    path.write_text(json.dumps(first) + "\n" + json.dumps(last))
    source = Source(path)
    source.check()
    finish = [lambda: append(path, "\n" + json.dumps(first) + "\n")]  # the exporter goes on
    async with Sandbox(leads, api_key=KEY) as sb:
        async with BulkUpdater(api_key=KEY, base_url=sb.url, rate=0, concurrency=1) as up:
            summary = await up.run(source, on_outcome=once(finish))
        held = [sb.state.leads[lead]["jobTitle"] for lead in leads]
    assert not finish
    assert summary.stopped is StopReason.INPUT_CHANGED
    assert held == ["Chief", "Engineer"]
    assert summary.counts[Status.UPDATED] == 1
    assert summary.counts[Status.ABORTED] == 1


async def test_an_unchanged_last_line_with_no_line_break_is_sent_last(tmp_path: Path) -> None:
    leads = make_leads(3)
    ids = list(leads)
    path = tmp_path / "end.csv"
    path.write_text("id,jobTitle\n" + "\n".join(f"{lead},Chief" for lead in ids))
    seen: list[int] = []
    async with (
        Sandbox(leads, api_key=KEY) as sb,
        BulkUpdater(api_key=KEY, base_url=sb.url, rate=0, concurrency=4) as up,
    ):
        summary = await up.run(Source(path), on_outcome=lambda o: seen.append(o.row))
        held = [sb.state.leads[lead]["jobTitle"] for lead in ids]
    assert summary.stopped is None
    assert held == ["Chief"] * 3
    assert seen[-1] == 3  # held back until every other row was done


async def test_an_export_that_grows_after_it_was_read_stops_the_job_at_its_end(
    tmp_path: Path,
) -> None:
    """Read to its end at once, then the exporter writes more: those rows were never read."""
    leads = make_leads(3)
    a, b, c = leads
    path = tmp_path / "grow.csv"
    path.write_text(f"id,jobTitle\n{a},Chief\n{b},Head\n")
    source = Source(path)
    source.check()
    more = [lambda: append(path, f"{c},Late\n")]
    async with Sandbox(leads, api_key=KEY) as sb:
        async with BulkUpdater(api_key=KEY, base_url=sb.url, rate=0, concurrency=1) as up:
            summary = await up.run(source, on_outcome=once(more))
        late = sb.state.leads[c]["jobTitle"]
    assert not more
    assert late == "Engineer"
    assert summary.counts[Status.UPDATED] == 2
    assert (summary.stopped, summary.exit_code) == (StopReason.INPUT_CHANGED, 3)
    assert summary.stop_message == (
        f"{path} changed after it was read (an exporter still writing it?): the rest of the "
        "export was never read; rerun once it is complete"
    )


async def test_a_rewrite_in_place_is_seen_within_a_batch_of_records(tmp_path: Path) -> None:
    """Rewritten at the first outcome (rows past the first few hundred not read yet): the job
    stops at the next look (every 1000 records), not at the end, 4000 rows on."""
    leads = make_leads(5000)
    ids = list(leads)
    path = tmp_path / "inplace.csv"
    path.write_text("id,jobTitle\n" + "".join(f"{lead},Y\n" for lead in ids))
    source = Source(path)
    source.check()

    def rewrite() -> None:
        with open(path, "r+") as exporter:  # the next export, the same size
            exporter.write("id,jobTitle\n" + "".join(f"{lead},X\n" for lead in reversed(ids)))

    change = [rewrite]
    async with Sandbox(leads, api_key=KEY) as sb:
        async with BulkUpdater(api_key=KEY, base_url=sb.url, rate=0) as up:
            summary = await up.run(source, report=tmp_path / "r.csv", on_outcome=once(change))
        patched = set(sb.state.patches_by_lead)
    assert not change
    assert summary.stopped is StopReason.INPUT_CHANGED
    rows = [int(r["row"]) for r in read_report(tmp_path / "r.csv")]
    assert max(rows) < 1000  # at most a batch of the next export went out, from a byte offset
    assert len(patched) == summary.counts[Status.UPDATED] < 1000

"""Resume decisions in the library: which rows of an earlier report are sent again, and which
input may be resumed at all. The report file itself is `tests/test_report.py`'s."""

from __future__ import annotations

from pathlib import Path

import pytest

from bulk_updater import BulkUpdater, InputChangedError, Outcome, Source, Status
from bulk_updater.report import ReportWriter
from tests.conftest import FakeSender, VirtualTimeLoop, write_csv

HEADER = ["id", "jobTitle"]


async def test_resume_keeps_the_last_row_of_a_lead_winning(
    virtual_time: VirtualTimeLoop, tmp_path: Path
) -> None:
    source = write_csv(tmp_path / "in.csv", HEADER, [("x", "old"), ("x", "new"), ("y", "only")])
    report = tmp_path / "in.csv.report.csv"
    with Source(source) as opened:
        fingerprint = opened.fingerprint()
    with ReportWriter(report, fingerprint=fingerprint) as writer:  # an earlier run's outcomes
        for row, lead, status in ((1, "x", Status.FAILED), (2, "x", Status.UPDATED)):
            writer.write(Outcome(row=row, id=lead, status=status, attempts=1))
        writer.write(Outcome(row=3, id="y", status=Status.UPDATED, attempts=1))
    sender = FakeSender()

    async with BulkUpdater(sender=sender, rate=0, concurrency=8) as updater:
        summary = await updater.run(Source(source), report=report, resume=True)

    # row 1 goes again, so row 2 (finished before) must follow it; row 3 stays finished
    assert sender.bodies == [{"jobTitle": "old"}, {"jobTitle": "new"}]
    assert summary.counts[Status.UPDATED] == 2
    assert summary.counts[Status.SKIPPED] == 1


async def test_resume_refuses_another_match_than_the_report_was_started_with(
    virtual_time: VirtualTimeLoop, tmp_path: Path
) -> None:
    """Rows with both an id and an email go to other leads under another --match: the rest of
    the rows must not be sent to leads of another kind than the finished ones were."""
    source = write_csv(tmp_path / "in.csv", ["id", "email", "jobTitle"], [("x", "a@b.io", "a")])
    report = tmp_path / "r.csv"
    async with BulkUpdater(sender=FakeSender(), rate=0, match="id") as updater:
        await updater.run(Source(source), report=report)
    async with BulkUpdater(sender=FakeSender(), rate=0, match="email") as updater:
        with pytest.raises(InputChangedError, match="match 'id' \\(now 'email'\\)"):
            await updater.run(Source(source), report=report, resume=True)
    async with BulkUpdater(sender=FakeSender(), rate=0, match="id") as updater:
        summary = await updater.run(Source(source), report=report, resume=True)
    assert summary.counts[Status.SKIPPED] == 1  # the same --match resumes


async def test_library_resume_refuses_a_changed_source(
    virtual_time: VirtualTimeLoop, tmp_path: Path
) -> None:
    source = write_csv(tmp_path / "in.csv", HEADER, [("x", "a")])
    report = tmp_path / "r.csv"

    async with BulkUpdater(sender=FakeSender(), rate=0) as updater:
        await updater.run(Source(source), report=report)
        write_csv(source, HEADER, [("x", "b")])
        with pytest.raises(InputChangedError):
            await updater.run(Source(source), report=report, resume=True)

"""`limit`: a job takes only the first N rows of its input; resuming its report sends the rest."""

from __future__ import annotations

from pathlib import Path

from bulk_updater import BulkUpdater, Source, Status
from bulk_updater.report.meta import read_meta
from tests.conftest import FakeSender, VirtualTimeLoop, make_rows, read_report, write_csv


async def test_a_limit_sends_the_first_rows_and_resume_sends_the_rest_once(
    virtual_time: VirtualTimeLoop, tmp_path: Path
) -> None:
    source = write_csv(
        tmp_path / "in.csv", ["id", "jobTitle"], [(f"L{i}", "CTO") for i in range(25)]
    )
    report = tmp_path / "r.csv"
    sender = FakeSender()
    async with BulkUpdater(sender=sender, rate=0, concurrency=4, limit=10) as updater:
        first = await updater.run(Source(source), report=report)
    assert sorted(lead for _, lead in sender.calls) == sorted(f"L{i}" for i in range(10))
    assert first.rows == 10
    assert first.exit_code == 0
    assert any("limit 10" in w and "--resume" in w for w in first.warnings)
    meta = read_meta(report.resolve())
    assert meta is not None
    assert meta["limit"] == 10

    sender.calls.clear()
    async with BulkUpdater(sender=sender, rate=0, concurrency=4) as updater:
        rest = await updater.run(Source(source), report=report, resume=True)
    assert sorted(lead for _, lead in sender.calls) == sorted(f"L{i}" for i in range(10, 25))
    assert rest.counts[Status.SKIPPED] == 10
    assert rest.counts[Status.UPDATED] == 15
    assert rest.warnings == []
    assert "limit" not in (read_meta(report.resolve()) or {"limit": "no meta"})
    assert sorted(int(line["row"]) for line in read_report(report)) == list(range(1, 26))


async def test_resume_with_a_limit_sends_the_next_rows(
    virtual_time: VirtualTimeLoop, tmp_path: Path
) -> None:
    """Rows an earlier run finished do not count towards the limit."""
    source = write_csv(
        tmp_path / "in.csv", ["id", "jobTitle"], [(f"L{i}", "CTO") for i in range(9)]
    )
    report = tmp_path / "r.csv"
    sender = FakeSender()
    for _ in range(2):
        async with BulkUpdater(sender=sender, rate=0, concurrency=2, limit=4) as updater:
            await updater.run(Source(source), report=report, resume=True)
    assert sorted(lead for _, lead in sender.calls) == sorted(f"L{i}" for i in range(8))


async def test_a_limit_as_large_as_the_input_is_no_warning(virtual_time: VirtualTimeLoop) -> None:
    """The input ended before the limit: nothing is left to send."""
    async with BulkUpdater(sender=FakeSender(), rate=0, limit=7) as updater:
        summary = await updater.run(make_rows(6))
    assert summary.rows == 6
    assert summary.warnings == []


async def test_a_limit_cuts_a_stream_of_dicts_too(virtual_time: VirtualTimeLoop) -> None:
    sender = FakeSender()
    async with BulkUpdater(sender=sender, rate=0, limit=3) as updater:
        outcomes = [outcome async for outcome in updater.stream(make_rows(50))]
    assert sorted(o.row for o in outcomes) == [1, 2, 3]
    assert len(sender.calls) == 3

"""Edge cases of the job's life: resume ordering, stops, early exits, failing input."""

from __future__ import annotations

import asyncio
import contextlib
import csv
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bulk_updater import (
    BulkUpdater,
    InputChangedError,
    LeadUpdate,
    Outcome,
    Reply,
    Source,
    Status,
)
from bulk_updater.client import describe_error
from bulk_updater.report import ReportWriter

from .conftest import FakeSender, advance, run_virtual


def write_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["id", "jobTitle"])
        writer.writerows(rows)
    return path


def test_resume_keeps_the_last_row_of_a_lead_winning(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "in.csv", [("x", "old"), ("x", "new"), ("y", "only")])
    report = tmp_path / "in.csv.report.csv"
    with Source(source) as opened:
        fingerprint = opened.fingerprint()
    with ReportWriter(report, fingerprint=fingerprint) as writer:  # an earlier run's outcomes
        for row, lead, status in ((1, "x", Status.FAILED), (2, "x", Status.UPDATED)):
            writer.write(Outcome(row=row, id=lead, status=status, attempts=1))
        writer.write(Outcome(row=3, id="y", status=Status.UPDATED, attempts=1))
    sender = FakeSender()

    async def main() -> dict[Status, int]:
        async with BulkUpdater(sender=sender, rate=0, concurrency=8) as updater:
            summary = await updater.run(Source(source), report=report, resume=True)
        return summary.counts

    counts = run_virtual(main())
    # row 1 goes again, so row 2 (finished before) must follow it; row 3 stays finished
    assert sender.bodies == [{"jobTitle": "old"}, {"jobTitle": "new"}]
    assert counts[Status.UPDATED] == 2
    assert counts[Status.SKIPPED] == 1


def test_library_resume_refuses_a_changed_source(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "in.csv", [("x", "a")])
    report = tmp_path / "r.csv"

    async def main() -> None:
        async with BulkUpdater(sender=FakeSender(), rate=0) as updater:
            await updater.run(Source(source), report=report)
            write_csv(source, [("x", "b")])
            with pytest.raises(InputChangedError):
                await updater.run(Source(source), report=report, resume=True)

    run_virtual(main())


def test_run_outside_async_with_leaves_an_existing_report_alone(tmp_path: Path) -> None:
    report = tmp_path / "r.csv"
    report.write_text("row,id,status\n1,x,updated\n")
    updater = BulkUpdater(api_key="sk_test", rate=0)
    with pytest.raises(RuntimeError, match="not open"):
        asyncio.run(updater.run([{"id": "x", "city": "Oslo"}], report=report))
    assert report.read_text() == "row,id,status\n1,x,updated\n"


def test_a_stop_never_strands_a_row_that_was_read() -> None:
    produced: list[int] = []

    def rows() -> object:
        for i in range(10_000):
            produced.append(i)
            yield {"id": f"lead{i}", "city": "Oslo"}

    sender = FakeSender(latency=1000.0)  # every request hangs
    outcomes: list[Outcome] = []

    async def main() -> None:
        async with BulkUpdater(sender=sender, rate=0, concurrency=4, grace=1) as updater:
            asyncio.get_running_loop().call_later(5, updater.stop)
            await updater.run(rows(), on_outcome=outcomes.append)  # type: ignore[arg-type]

    run_virtual(main())
    assert len(outcomes) == len(produced)
    assert sorted(o.row for o in outcomes) == list(range(1, len(produced) + 1))
    assert {o.status for o in outcomes} == {Status.ABORTED}


def test_a_row_cut_off_after_the_grace_period_reports_its_real_attempts() -> None:
    class Slow(FakeSender):
        async def send(self, update: LeadUpdate) -> Reply:
            if self.attempts[update.id] >= 2:
                self.latency = 1000.0  # the third attempt hangs
            return await super().send(update)

    sender = Slow(lambda update, attempt: Reply(503), latency=0.01)
    outcomes: list[Outcome] = []

    async def main() -> None:
        async with BulkUpdater(
            sender=sender, rate=0, concurrency=1, grace=1, backoff_base=0.1, max_attempts=5
        ) as updater:
            asyncio.get_running_loop().call_later(10, updater.stop)
            await updater.run([{"id": "x", "city": "Oslo"}], on_outcome=outcomes.append)

    run_virtual(main())
    (outcome,) = outcomes
    assert outcome.status is Status.ABORTED
    assert outcome.attempts == 3
    assert "grace period" in outcome.message


async def collect(stream: AsyncIterator[Outcome], into: list[Outcome]) -> None:
    async for outcome in stream:
        into.append(outcome)


def test_failing_input_still_gives_every_row_read_an_outcome() -> None:
    async def rows() -> AsyncIterator[dict[str, str]]:
        for i in range(50):
            yield {"id": f"lead{i}", "city": "Oslo"}
        raise OSError("disk gone")

    outcomes: list[Outcome] = []

    async def main() -> None:
        async with BulkUpdater(sender=FakeSender(latency=1.0), rate=0, concurrency=8) as updater:
            stream = updater.stream(rows())
            with pytest.raises(OSError, match="disk gone"):
                await collect(stream, outcomes)

    run_virtual(main())
    assert sorted(o.row for o in outcomes) == list(range(1, 51))


def test_leaving_a_stream_early_ends_its_job() -> None:
    sender = FakeSender()

    async def main() -> Status:
        async with BulkUpdater(sender=sender, rate=0, concurrency=2) as updater:
            rows = [{"id": f"lead{i}", "city": "Oslo"} for i in range(1000)]
            async with contextlib.aclosing(updater.stream(rows)) as outcomes:
                async for _ in outcomes:
                    break
            summary = await updater.run([{"id": "z", "city": "Oslo"}])
            return next(s for s, n in summary.counts.items() if n)

    assert run_virtual(main()) is Status.UPDATED
    assert len(sender.calls) < 1000


def test_closing_the_updater_ends_an_abandoned_stream() -> None:
    sender = FakeSender()

    async def main() -> int:
        async with BulkUpdater(sender=sender, rate=0, concurrency=2) as updater:
            rows = [{"id": f"lead{i}", "city": "Oslo"} for i in range(1000)]
            stream = updater.stream(rows)
            await anext(stream)  # abandoned without closing
        calls = len(sender.calls)
        await advance(10)
        leftovers: list[Outcome] = []  # what was done before the close can still be read
        with pytest.raises(RuntimeError, match="closed while this stream was running"):
            await collect(stream, leftovers)
        assert len(leftovers) < 999
        return calls - len(sender.calls)

    assert run_virtual(main()) == 0


def test_server_text_cannot_carry_escape_codes() -> None:
    _, message = describe_error(400, b'{"error": {"code": "X", "message": "a\\u001b[2Jb"}}')
    assert message == "a [2Jb"
    _, long = describe_error(400, ('{"error": {"message": "' + "x" * 5000 + '"}}').encode())
    assert len(long) == 500


async def test_a_consumer_that_raises_right_after_a_stop_does_not_hang() -> None:
    class Oops(Exception):
        pass

    def stop_then_raise(outcome: Outcome) -> None:
        updater.stop()
        raise Oops

    async with (
        asyncio.timeout(10),
        BulkUpdater(sender=FakeSender(latency=0.001), rate=0, concurrency=8) as updater,
    ):
        with pytest.raises(Oops):
            await updater.run(
                [{"id": f"lead{i}", "city": "Oslo"} for i in range(200)],
                on_outcome=stop_then_raise,
            )


def test_an_interrupt_ends_the_draining_after_a_refused_key() -> None:
    async def endless() -> AsyncIterator[dict[str, str]]:
        n = 0
        while True:
            n += 1
            yield {"id": f"lead{n}", "city": "Oslo"}
            await advance(0.001)

    refused = FakeSender(lambda update, attempt: Reply(401), latency=0.01)

    async def main() -> tuple[object, float]:
        async with BulkUpdater(sender=refused, rate=0, concurrency=4) as updater:
            asyncio.get_running_loop().call_later(5, updater.stop)
            summary = await updater.run(endless())
            return summary.stopped, asyncio.get_running_loop().time()

    stopped, ended = run_virtual(main())
    assert str(stopped) == "key_refused"
    assert ended < 6


def test_a_sender_bug_after_a_stop_surfaces_and_no_row_vanishes() -> None:
    def script(update: LeadUpdate, attempt: int) -> Reply | Exception:
        if update.id == "bad":
            raise ZeroDivisionError("bug in the sender")
        return Reply(200)

    outcomes: list[Outcome] = []

    async def main() -> None:
        sender = FakeSender(script, latency=2.0)
        async with BulkUpdater(sender=sender, rate=0, concurrency=2, grace=5) as updater:
            asyncio.get_running_loop().call_later(1, updater.stop)
            rows = [{"id": i, "city": "Oslo"} for i in ("a", "bad", "bad", "c")]
            with pytest.raises(ZeroDivisionError):
                await collect(updater.stream(rows), outcomes)

    run_virtual(main())
    assert sorted(o.row for o in outcomes) == [1, 2, 3, 4]


def test_a_path_string_is_not_read_as_rows() -> None:
    async def main() -> None:
        async with BulkUpdater(sender=FakeSender(), rate=0) as updater:
            with pytest.raises(TypeError, match=r"pass Source\(path\)"):
                await updater.run("updates.csv")  # type: ignore[arg-type]

    run_virtual(main())


def test_the_caller_async_generator_is_closed_when_the_job_ends() -> None:
    closed: list[bool] = []

    async def rows() -> AsyncIterator[dict[str, str]]:
        try:
            for i in range(1000):
                yield {"id": f"lead{i}", "city": "Oslo"}
        finally:
            closed.append(True)

    async def main() -> None:
        async with BulkUpdater(sender=FakeSender(), rate=0, concurrency=2) as updater:
            asyncio.get_running_loop().call_later(0.05, updater.stop)
            await updater.run(rows())
            assert closed == [True]  # before the updater closes, not at garbage collection

    run_virtual(main())

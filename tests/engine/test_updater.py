"""The library API: `BulkUpdater`, its construction, the `async with` around a job, `stream()`,
`run()` and its `on_outcome` callback.

The same API against the real sandbox, over every kind of input, is in `tests/e2e/test_library.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bulk_updater import (
    BulkUpdater,
    ConfigError,
    LeadUpdate,
    Outcome,
    Reply,
    Source,
    StateLockedError,
    Status,
)
from bulk_updater.state import StateFile
from tests.conftest import FakeSender, HoldFirstSender, VirtualTimeLoop, WatchedPacer, advance

KEY = "sk_test_updater"

# --- construction


def test_settings_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        BulkUpdater(KEY)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("settings", "word"),
    [
        ({"concurrency": 0}, "concurrency"),
        ({"rate": -1}, "rate"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"base_url": "http://api.example.com"}, "http"),
        ({"base_url": "ftp://127.0.0.1"}, "http"),
        ({"timeout": 0}, "timeout"),
    ],
)
def test_bad_settings_fail_at_construction(settings: dict[str, Any], word: str) -> None:
    with pytest.raises(ConfigError, match=word):
        BulkUpdater(api_key=KEY, **settings)


def test_a_key_or_a_sender_is_required() -> None:
    with pytest.raises(ConfigError, match="no API key"):
        BulkUpdater()
    assert BulkUpdater(sender=FakeSender()).settings.in_flight_cap >= 1


def test_repr_never_shows_the_key() -> None:
    secret = "sk_live_do_not_print_me"
    updater = BulkUpdater(api_key=secret)
    assert "BulkUpdater" in repr(updater)
    assert secret not in repr(updater)
    assert secret not in repr(updater.settings)


# --- the `async with` around a job


async def test_a_closed_updater_refuses_to_run_and_leaves_an_existing_report_alone(
    tmp_path: Path,
) -> None:
    report = tmp_path / "r.csv"
    report.write_text("row,id,status\n1,x,updated\n")
    updater = BulkUpdater(api_key=KEY, base_url="http://127.0.0.1:9", rate=0)
    with pytest.raises(RuntimeError, match="not open") as refused:
        await updater.run([{"id": "x", "city": "Oslo"}], report=report)
    assert "async with" in str(refused.value)
    assert report.read_text() == "row,id,status\n1,x,updated\n"


async def test_one_job_at_a_time_then_the_updater_is_reusable() -> None:
    async with BulkUpdater(sender=FakeSender(latency=0), rate=0) as updater:
        release = asyncio.Event()

        async def slow() -> AsyncIterator[dict[str, str]]:
            yield {"id": "a", "city": "x"}
            await release.wait()

        first = updater.stream(slow())
        assert (await anext(first)).row == 1
        with pytest.raises(RuntimeError, match="already running"):
            await updater.run([{"id": "b", "city": "y"}])
        release.set()
        assert [o async for o in first] == []
        summary = await updater.run([{"id": "b", "city": "y"}])
    assert summary.counts[Status.UPDATED] == 1


def handles_on(path: Path) -> int:
    """How many of this process's file descriptors are open on `path`."""
    fds = Path("/proc/self/fd")
    return sum(1 for fd in fds.iterdir() if os.path.realpath(fd) == str(path.resolve()))


async def test_a_client_that_cannot_open_closes_the_limiter_opened_before_it() -> None:
    limiter = WatchedPacer()
    proxied = BulkUpdater(
        api_key=KEY,
        base_url="http://127.0.0.1:9",
        proxy="http://proxy.example:3128",
        limiter=limiter,
    )
    with pytest.raises(ConfigError, match="clear text"):
        async with proxied:
            pass
    assert limiter.calls == ["open", "close"]
    async with BulkUpdater(sender=FakeSender(), limiter=limiter) as updater:
        assert limiter.calls == ["open", "close", "open"]
        await updater.run([{"id": "a", "city": "x"}])
    assert limiter.calls == ["open", "close", "open", "close"]


async def test_a_run_refused_after_its_report_and_state_were_taken_lets_go_of_both(
    tmp_path: Path,
) -> None:
    """The rejects file is checked last: refused, the report's and the state's locks and the
    input are let go of, so the next run (or another process) gets them at once."""
    data = tmp_path / "in.csv"
    data.write_text("id,jobTitle\nlead0,X\n")
    report, state = tmp_path / "r.csv", tmp_path / "s.sqlite3"
    settings: dict[str, Any] = {"rate": 0, "skip_unchanged": True, "state": state}
    async with BulkUpdater(sender=FakeSender(), **settings) as updater:
        source = Source(data)
        assert handles_on(data) == 1
        with pytest.raises(ConfigError, match=r"name it \.csv"):
            await updater.run(source, report=report, rejects=tmp_path / "rejects.jsonl")
        assert handles_on(data) == 0
        assert not report.exists()
        summary = await updater.run(Source(data), report=report, rejects=tmp_path / "rej.csv")
    assert summary.counts[Status.UPDATED] == 1
    assert summary.state_file == str(state)


async def test_a_stream_refused_by_its_state_file_closes_its_input(tmp_path: Path) -> None:
    data = tmp_path / "in.csv"
    data.write_text("id,jobTitle\nlead0,X\n")
    state = tmp_path / "s.sqlite3"
    held = StateFile(state)  # another run
    try:
        async with BulkUpdater(sender=FakeSender(), skip_unchanged=True, state=state) as updater:
            source = Source(data)
            assert handles_on(data) == 1
            with pytest.raises(StateLockedError):
                await anext(updater.stream(source))
            assert handles_on(data) == 0
    finally:
        held.close()


async def test_leaving_a_stream_early_ends_its_job(virtual_time: VirtualTimeLoop) -> None:
    sender = FakeSender()
    async with BulkUpdater(sender=sender, rate=0, concurrency=2) as updater:
        rows = [{"id": f"lead{i}", "city": "Oslo"} for i in range(1000)]
        async with contextlib.aclosing(updater.stream(rows)) as outcomes:
            async for _ in outcomes:
                break
        summary = await updater.run([{"id": "z", "city": "Oslo"}])
    assert next(s for s, n in summary.counts.items() if n) is Status.UPDATED
    assert len(sender.calls) < 1000


async def test_closing_the_updater_ends_an_abandoned_stream(virtual_time: VirtualTimeLoop) -> None:
    sender = FakeSender()
    async with BulkUpdater(sender=sender, rate=0, concurrency=2) as updater:
        rows = [{"id": f"lead{i}", "city": "Oslo"} for i in range(1000)]
        stream = updater.stream(rows)
        await anext(stream)  # abandoned without closing
    calls = len(sender.calls)
    await advance(10)
    assert [outcome async for outcome in stream] == []  # its job ended with the block
    assert len(sender.calls) == calls < 1000  # nothing was sent after the close


async def test_breaking_out_of_an_async_with_stream_ends_its_job(
    virtual_time: VirtualTimeLoop, tmp_path: Path
) -> None:
    path = tmp_path / "in.csv"
    path.write_text("id,city\n" + "".join(f"lead{i},Oslo\n" for i in range(1000)))
    sender = FakeSender()
    async with BulkUpdater(sender=sender, rate=0, concurrency=2) as updater:
        async with updater.stream(Source(str(path))) as outcomes:
            async for _ in outcomes:
                break
        calls = len(sender.calls)
        await advance(10)
        assert len(sender.calls) == calls  # nothing sent after the block
        summary = await updater.run([{"id": "z", "city": "Oslo"}])
    assert summary.counts[Status.UPDATED] == summary.rows == 1
    assert len(sender.calls) == calls + 1


async def test_an_async_with_stream_left_by_an_exception_ends_its_job(
    virtual_time: VirtualTimeLoop,
) -> None:
    sender = FakeSender()
    async with BulkUpdater(sender=sender, rate=0, concurrency=2) as updater:
        rows = [{"id": f"lead{i}", "city": "Oslo"} for i in range(1000)]

        async def read_one_then_fail() -> None:
            async with updater.stream(rows) as outcomes:
                await anext(outcomes)
                raise LookupError

        with pytest.raises(LookupError):
            await read_one_then_fail()
        summary = await updater.run([{"id": "z", "city": "Oslo"}])
    assert summary.counts[Status.UPDATED] == 1
    assert len(sender.calls) < 1000


async def test_breaking_out_of_a_plain_async_for_ends_its_job(
    virtual_time: VirtualTimeLoop,
) -> None:
    """The stream dropped as the loop ends is closed before the next job starts."""
    sender = FakeSender()
    async with BulkUpdater(sender=sender, rate=0, concurrency=2) as updater:
        rows = [{"id": f"lead{i}", "city": "Oslo"} for i in range(1000)]
        async for _ in updater.stream(rows):
            break
        async for outcome in updater.stream([{"id": "y", "city": "Oslo"}]):
            assert outcome.status is Status.UPDATED
        summary = await updater.run([{"id": "z", "city": "Oslo"}])
    assert summary.counts[Status.UPDATED] == 1
    assert len(sender.calls) < 1000


async def test_a_dropped_stream_then_closing_the_updater_ends_its_job_quietly(
    virtual_time: VirtualTimeLoop,
) -> None:
    sender = FakeSender()
    async with BulkUpdater(sender=sender, rate=0, concurrency=2) as updater:
        async for _ in updater.stream([{"id": f"lead{i}", "city": "Oslo"} for i in range(1000)]):
            break
    calls = len(sender.calls)
    await advance(10)
    assert len(sender.calls) == calls < 1000


# --- what is no rows


@pytest.mark.parametrize("path", ["leads.csv", b"leads.csv", Path("leads.csv")])
async def test_a_path_given_as_rows_is_refused_before_the_report_is_touched(
    tmp_path: Path, path: object
) -> None:
    report = tmp_path / "r.csv"
    report.write_text("row,id,status\n1,x,updated\n")
    async with BulkUpdater(sender=FakeSender(), rate=0) as updater:
        with pytest.raises(TypeError) as refused:
            await updater.run(path, report=report)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="Source"):
            updater.stream(path)  # type: ignore[arg-type]
    assert str(refused.value) == (
        "rows is a path ('leads.csv'): pass Source('leads.csv') to read a file, or an iterable "
        "of dicts or LeadUpdates"
    )
    assert report.read_text() == "row,id,status\n1,x,updated\n"


@pytest.mark.parametrize("row", [{"id": "a", "city": "x"}, LeadUpdate(id="a", city="x")])
async def test_a_single_row_given_as_rows_is_refused(row: object) -> None:
    sender = FakeSender()
    async with BulkUpdater(sender=sender, rate=0) as updater:
        with pytest.raises(TypeError, match="rows is a single row: pass an iterable of rows"):
            await updater.run(row)  # type: ignore[arg-type]
    assert sender.calls == []


@pytest.mark.parametrize(
    ("rows", "said"),
    [
        (5, "rows is 'int', not rows: pass a Source, or an iterable"),
        (b"id\n1\n", r"rows is bytes \(a file's contents\?\): pass Source\(path\)"),
    ],
)
async def test_what_is_no_rows_is_refused_saying_what_to_pass(rows: object, said: str) -> None:
    sender = FakeSender()
    async with BulkUpdater(sender=sender, rate=0) as updater:
        with pytest.raises(TypeError, match=said):
            await updater.run(rows)  # type: ignore[arg-type]
    assert sender.calls == []


async def test_an_open_file_given_as_rows_is_refused_before_the_report_is_touched(
    tmp_path: Path,
) -> None:
    data = tmp_path / "in.csv"
    data.write_text("id,city\nlead0,Oslo\n")
    sender = FakeSender()
    async with BulkUpdater(sender=sender, rate=0) as updater:
        with data.open() as file, pytest.raises(TypeError) as refused:
            await updater.run(file, report=tmp_path / "r.csv")  # type: ignore[arg-type]
    assert str(refused.value) == (
        f"rows is an open file: pass Source({str(data)!r}) to read it, or an iterable of dicts "
        "or LeadUpdates"
    )
    assert not (tmp_path / "r.csv").exists()
    assert sender.calls == []


# --- stream()


async def test_stream_yields_outcomes_as_rows_finish_not_in_input_order() -> None:
    sender = HoldFirstSender("a", others=4)
    rows = [{"id": i, "city": "x"} for i in ("a", "b", "c", "d", "e")]
    async with asyncio.timeout(10), BulkUpdater(sender=sender, rate=0, concurrency=5) as updater:
        order = [o.row async for o in updater.stream(rows)]
    assert sorted(order) == [1, 2, 3, 4, 5]
    assert order[-1] == 1


async def test_stream_yields_before_the_input_is_exhausted() -> None:
    """Row 2 is produced only once row 1's outcome came out: a stream that waited for the whole
    input before yielding would deadlock here (the timeout turns that into a failure)."""
    seen = asyncio.Event()

    async def lazy() -> AsyncIterator[dict[str, str]]:
        yield {"id": "a", "city": "x"}
        await seen.wait()
        yield {"id": "b", "city": "y"}

    outcomes = []
    async with (
        asyncio.timeout(10),
        BulkUpdater(sender=FakeSender(latency=0), rate=0) as updater,
    ):
        async for outcome in updater.stream(lazy()):
            outcomes.append(outcome)
            seen.set()
    assert [o.row for o in outcomes] == [1, 2]


# --- the caller's ref


async def test_a_rows_ref_comes_back_on_its_outcome_and_is_never_sent() -> None:
    marker = object()  # any object: it is handed back, not read
    rows: list[dict[str, Any] | LeadUpdate] = [
        {"id": "a", "city": "Oslo", "ref": "crm-1"},
        LeadUpdate(id="b", city="Oslo", ref=marker),
        {"id": "c", "city": "Oslo", "ref": None},
        {"id": "d", "ref": ("crm", 4)},  # sets no field: invalid, and still carries its ref
        {"id": "e", "city": "Oslo"},
    ]
    sender = FakeSender(latency=0)
    async with BulkUpdater(sender=sender, rate=0) as updater:
        refs = {o.id: (o.status, o.ref) async for o in updater.stream(rows)}
    assert refs == {
        "a": (Status.UPDATED, "crm-1"),
        "b": (Status.UPDATED, marker),
        "c": (Status.UPDATED, None),
        "d": (Status.INVALID, ("crm", 4)),
        "e": (Status.UPDATED, None),
    }
    assert sender.bodies == [{"city": "Oslo"}] * 4


async def test_a_ref_key_can_be_a_column_when_columns_map_it() -> None:
    sender = FakeSender(latency=0)
    async with BulkUpdater(sender=sender, rate=0) as updater:
        (outcome,) = [
            o async for o in updater.stream([{"id": "a", "ref": "Oslo"}], columns={"ref": "city"})
        ]
    assert outcome.status is Status.UPDATED
    assert sender.bodies == [{"city": "Oslo"}]


# --- run() and its callback


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


# --- columns and rejects for dict rows


async def test_dict_rows_take_a_column_map_and_write_json_rejects(tmp_path: Path) -> None:
    rows = [
        {"Lead ID": "lead1", "Job Title": "CTO", "Owner": "Ann"},
        {"Lead ID": "lead2", "Job Title": "CFO", "Owner": "Bo"},
    ]
    rejects = tmp_path / "rejects.jsonl"

    def script(update: LeadUpdate, attempt: int) -> Reply:
        return Reply(200) if update.id == "lead1" else Reply(404, "NOT_FOUND", "Lead not found")

    async with BulkUpdater(sender=FakeSender(script, latency=0), rate=0) as updater:
        summary = await updater.run(
            rows, columns={"Lead ID": "id"}, ignore_unknown_columns=True, rejects=rejects
        )
    assert summary.counts[Status.UPDATED] == 1
    assert summary.dropped_columns == ["Owner"]
    (line,) = [json.loads(text) for text in rejects.read_text().splitlines()]
    assert line == {"Lead ID": "lead2", "Job Title": "CFO", "Owner": "Bo",
                    "_status": "not_found", "_message": "Lead not found"}  # fmt: skip


async def test_a_source_keeps_its_own_columns(tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text("id,city\nlead1,Oslo\n")
    async with BulkUpdater(sender=FakeSender(), rate=0) as updater:
        with pytest.raises(TypeError, match="Source"):
            await updater.run(Source(tmp_path / "in.csv"), columns={"a": "id"})


async def test_reword_gives_every_output_the_messages_in_other_words(tmp_path: Path) -> None:
    """`bulk-updater ui` runs its jobs with its own words: the report, the rejects and
    `on_outcome` all get them; a row without a message stays without one."""
    data = tmp_path / "in.csv"
    data.write_text('id,tags\nlead1,a;b\nlead2,"a,b"\nlead3,c\n')
    report, rejects = tmp_path / "report.csv", tmp_path / "rejects.csv"
    seen: list[Outcome] = []

    def script(update: LeadUpdate, attempt: int) -> Reply:
        return Reply(200) if update.id == "lead1" else Reply(404, "NOT_FOUND", "Lead not found")

    async with BulkUpdater(sender=FakeSender(script, latency=0), rate=0) as updater:
        summary = await updater.run(
            Source(data), report=report, rejects=rejects, on_outcome=seen.append, reword=str.upper
        )
    assert summary.counts[Status.UPDATED] == 1
    messages = {outcome.row: outcome.message for outcome in seen}
    assert messages[1] == ""
    assert messages[3] == "LEAD NOT FOUND"
    assert "PASS --TAGS-SEPARATOR ','" in messages[2]
    lines = csv.DictReader(report.read_text(encoding="utf-8-sig").splitlines())
    assert {line["row"]: line["message"] for line in lines} == {
        "1": "",
        "2": messages[2],
        "3": "LEAD NOT FOUND",
    }
    written = csv.DictReader(rejects.read_text(encoding="utf-8").splitlines())
    assert [line["_message"] for line in written] == [messages[2], "LEAD NOT FOUND"]


async def test_reworded_a_row_the_sheet_hides_is_still_in_the_report(tmp_path: Path) -> None:
    """The page's words for a hidden row are not the row's own: the row is still reported."""
    from tests.inputs.test_xlsx import FILTERED, filtered

    data = filtered(tmp_path / "in.xlsx", FILTERED, hidden=[3])
    report = tmp_path / "report.csv"
    async with BulkUpdater(sender=FakeSender(latency=0), rate=0) as updater:
        source = Source(data, ignore_unknown_columns=True)
        summary = await updater.run(source, report=report, reword=str.upper)
    assert summary.counts[Status.SKIPPED] == 1
    lines = csv.DictReader(report.read_text(encoding="utf-8-sig").splitlines())
    assert [(line["row"], line["status"]) for line in lines] == [
        ("1", "updated"),
        ("2", "skipped"),
        ("3", "updated"),
    ]

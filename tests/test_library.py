"""The library API: `BulkUpdater` as an async context manager fed by any (async) iterable."""

from __future__ import annotations

import asyncio
import csv
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from bulk_updater import (
    BulkUpdater,
    ConfigError,
    LeadUpdate,
    Outcome,
    Reply,
    Source,
    Status,
    Summary,
)
from bulk_updater.sandbox import DEFAULT_SANDBOX_KEY, Sandbox

from .conftest import FakeSender, make_leads

KEY = DEFAULT_SANDBOX_KEY
LEADS = make_leads(6)
IDS = list(LEADS)
MISSING = "f" * 24


def mixed_rows() -> list[Any]:
    """Dicts and models, good and bad, one per status a run without faults can produce."""
    return [
        {"id": IDS[0], "firstName": "Ada"},
        LeadUpdate(id=IDS[1], jobTitle="CTO", tags=("vip",)),
        {"_id": IDS[2], "customFields": {"tier": 2}, "customFields.region": "EU"},
        {"id": MISSING, "city": "Nowhere"},
        {"id": "../account", "city": "X"},
        {"id": IDS[3], "email": "new@example.com"},
        {"id": IDS[4]},
        LeadUpdate.model_validate({"_id": IDS[5], "country": "FR"}),
    ]


EXPECTED = {
    1: Status.UPDATED,
    2: Status.UPDATED,
    3: Status.UPDATED,
    4: Status.NOT_FOUND,
    5: Status.INVALID,
    6: Status.INVALID,
    7: Status.INVALID,
    8: Status.UPDATED,
}


def check_leads(leads: dict[str, dict[str, Any]]) -> None:
    assert leads[IDS[0]]["firstName"] == "Ada"
    assert leads[IDS[1]]["jobTitle"] == "CTO"
    assert leads[IDS[1]]["tags"] == ["vip"]
    assert leads[IDS[2]]["customFields"] == {
        "industry": "SaaS",
        "keep": "2",
        "tier": 2,
        "region": "EU",
    }
    assert leads[IDS[3]]["email"] == "lead3@example.com"
    assert leads[IDS[5]]["country"] == "FR"


async def agen(rows: list[Any]) -> AsyncIterator[Any]:
    for row in rows:
        await asyncio.sleep(0)  # a real async source yields to the loop between rows
        yield row


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
    with pytest.raises(ConfigError, match="key"):
        BulkUpdater()
    assert BulkUpdater(sender=FakeSender()).settings.concurrency >= 1


def test_repr_never_shows_the_key() -> None:
    secret = "sk_live_do_not_print_me"
    text = repr(BulkUpdater(api_key=secret))
    assert "BulkUpdater" in text
    assert secret not in text


async def test_a_closed_updater_refuses_to_run() -> None:
    updater = BulkUpdater(api_key=KEY, base_url="http://127.0.0.1:9", rate=0)
    with pytest.raises(RuntimeError, match="async with"):
        await updater.run([{"id": "a", "city": "x"}])


# --- stream and run, sync and async inputs, against the sandbox


async def test_stream_over_a_sync_list() -> None:
    async with (
        Sandbox(LEADS) as sb,
        BulkUpdater(api_key=KEY, base_url=sb.url, rate=0, concurrency=4) as updater,
    ):
        outcomes = [o async for o in updater.stream(mixed_rows())]
    assert all(isinstance(o, Outcome) for o in outcomes)
    assert {o.row: o.status for o in outcomes} == EXPECTED
    assert len(outcomes) == len(EXPECTED)
    check_leads(sb.state.leads)
    assert sb.state.stray == []
    assert sb.state.bad_requests == []
    by_row = {o.row: o for o in outcomes}
    assert by_row[1].http_status == 200
    assert by_row[1].attempts == 1
    assert by_row[4].http_status == 404
    assert by_row[4].error_code == "NOT_FOUND"
    assert "email" in by_row[6].message
    assert by_row[6].id == IDS[3]
    assert by_row[7].attempts == 0


async def test_stream_over_an_async_generator() -> None:
    async with (
        Sandbox(LEADS) as sb,
        BulkUpdater(api_key=KEY, base_url=sb.url, rate=0, concurrency=3) as updater,
    ):
        outcomes = [o async for o in updater.stream(agen(mixed_rows()))]
    assert {o.row: o.status for o in outcomes} == EXPECTED
    assert len(outcomes) == len(EXPECTED)
    check_leads(sb.state.leads)


@pytest.mark.parametrize("kind", ["list", "tuple", "generator", "async generator"])
async def test_run_over_any_iterable(kind: str, tmp_path: Path) -> None:
    rows = mixed_rows()
    source: Any = {
        "list": rows,
        "tuple": tuple(rows),
        "generator": (r for r in rows),
        "async generator": agen(rows),
    }[kind]
    report = tmp_path / "report.csv"
    async with (
        Sandbox(LEADS) as sb,
        BulkUpdater(api_key=KEY, base_url=sb.url, rate=0, concurrency=8) as updater,
    ):
        summary = await updater.run(source, report=report)

    assert isinstance(summary, Summary)
    assert summary.rows == len(EXPECTED)
    assert summary.counts[Status.UPDATED] == 4
    assert summary.counts[Status.NOT_FOUND] == 1
    assert summary.counts[Status.INVALID] == 3
    assert summary.requests == 5
    assert summary.retries == 0
    assert summary.stopped is None
    assert not summary.all_updated
    assert summary.report == str(report)
    check_leads(sb.state.leads)

    lines = list(csv.DictReader(report.read_text("utf-8-sig").splitlines()))
    assert [int(line["row"]) for line in lines] == list(EXPECTED)
    assert [line["status"] for line in lines] == [s.value for s in EXPECTED.values()]


async def test_run_over_a_source(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text(
        f"id,email,firstName\n{IDS[0]},a@example.com,Ada\n{IDS[1]},,Bob\n../x,,Eve\n", "utf-8"
    )
    async with (
        Sandbox(LEADS) as sb,
        BulkUpdater(api_key=KEY, base_url=sb.url, rate=0, concurrency=2) as updater,
    ):
        summary = await updater.run(Source(str(path)))
        outcomes = [o async for o in updater.stream(Source(str(path)))]
    assert summary.counts[Status.UPDATED] == 2
    assert summary.counts[Status.INVALID] == 1
    assert summary.all_updated is False
    assert {o.row: o.email for o in outcomes} == {1: "a@example.com", 2: None, 3: None}
    assert sb.state.leads[IDS[1]]["firstName"] == "Bob"
    assert sb.state.patches_by_lead == {IDS[0]: 2, IDS[1]: 2}


async def test_all_updated_summary() -> None:
    async with (
        Sandbox(LEADS) as sb,
        BulkUpdater(api_key=KEY, base_url=sb.url, rate=0) as updater,
    ):
        summary = await updater.run(agen([{"id": i, "city": "Lyon"} for i in IDS]))
    assert summary.all_updated
    assert summary.rows == summary.counts[Status.UPDATED] == len(IDS)
    assert all(lead["city"] == "Lyon" for lead in sb.state.leads.values())


# --- immutable results


async def test_outcomes_and_summary_are_immutable() -> None:
    async with BulkUpdater(sender=FakeSender(latency=0), rate=0) as updater:
        outcomes = [o async for o in updater.stream([{"id": "a", "city": "x"}])]
        summary = await updater.run([{"id": "a", "city": "x"}])
    outcome = outcomes[0]
    with pytest.raises(ValidationError):
        outcome.status = Status.FAILED  # type: ignore[misc]
    with pytest.raises(ValidationError):
        summary.rows = 0  # type: ignore[misc]
    assert outcome.status is Status.UPDATED
    assert summary.rows == 1
    update = LeadUpdate(id="a", city="x")
    with pytest.raises(ValidationError):
        update.city = "y"  # type: ignore[misc]


# --- rows that are not dicts or models


async def test_a_row_that_is_not_a_dict_is_invalid_and_the_job_goes_on() -> None:
    sender = FakeSender(latency=0)
    rows: list[Any] = ["id,city", 42, None, ["a", "b"], {"id": "ok", "city": "x"}]
    async with BulkUpdater(sender=sender, rate=0) as updater:
        outcomes = sorted([o async for o in updater.stream(rows)], key=lambda o: o.row)
    assert [o.status for o in outcomes] == [Status.INVALID] * 4 + [Status.UPDATED]
    assert all("dict" in o.message for o in outcomes[:4])
    assert [call[1] for call in sender.calls] == ["ok"]


async def test_a_dict_with_a_non_string_key_is_an_invalid_row_not_an_exception() -> None:
    """Row-level problems are outcomes: a dict keyed by something else than column names is one
    bad row, not a reason to abort the job with an AttributeError."""
    sender = FakeSender(latency=0)
    rows: list[Any] = [{"id": "a", 1: "x"}, {"id": "b", "city": "y"}]
    async with BulkUpdater(sender=sender, rate=0) as updater:
        outcomes = sorted([o async for o in updater.stream(rows)], key=lambda o: o.row)
    assert [o.status for o in outcomes] == [Status.INVALID, Status.UPDATED]
    assert [call[1] for call in sender.calls] == ["b"]


# --- streaming


class GateSender:
    """Holds lead `first` until every other lead has been sent: its row finishes last."""

    def __init__(self, first: str, others: int) -> None:
        self.first = first
        self.others = others
        self.done = 0
        self.release = asyncio.Event()
        self.sent: list[str] = []

    async def send(self, update: LeadUpdate) -> Reply:
        self.sent.append(update.id)
        if update.id == self.first:
            await self.release.wait()
        else:
            self.done += 1
            if self.done == self.others:
                self.release.set()
        return Reply(200)


async def test_stream_yields_outcomes_as_rows_finish_not_in_input_order() -> None:
    sender = GateSender("a", others=4)
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


def test_rows_from_a_plain_iterator_are_read_lazily() -> None:
    """A generator is consumed as the job runs, not turned into a list first."""
    pulled: list[int] = []

    def rows() -> Iterator[dict[str, str]]:
        for i in range(1000):
            pulled.append(i)
            yield {"id": f"l{i}", "city": "x"}

    async def main() -> tuple[int, int]:
        async with BulkUpdater(sender=FakeSender(latency=0), rate=0, concurrency=2) as updater:
            stream = updater.stream(rows())
            await anext(stream)
            early = len(pulled)
            rest = [o async for o in stream]
        return early, len(rest)

    early, rest = asyncio.run(main())
    assert early < 1000
    assert rest == 999


class BuggySender:
    """A sender with a bug: an unexpected exception for one lead."""

    def __init__(self, bad: str) -> None:
        self.bad = bad
        self.sent: list[str] = []

    async def send(self, update: LeadUpdate) -> Reply:
        self.sent.append(update.id)
        if update.id == self.bad:
            raise ZeroDivisionError("bug in the sender")
        return Reply(200)


@pytest.mark.parametrize("concurrency", [1, 4])
async def test_an_unexpected_error_surfaces_instead_of_rows_vanishing(concurrency: int) -> None:
    """Every row gets an outcome, or the job raises: a worker that dies on a bug must not take
    its row (and the rows queued behind it for that lead) silently with it, nor hang the job."""
    rows = [{"id": i, "city": "x"} for i in ("a", "bad", "bad", "c", "d")]

    async def consume(updater: BulkUpdater) -> list[Outcome]:
        async with asyncio.timeout(3):
            return [o async for o in updater.stream(rows)]

    async with BulkUpdater(sender=BuggySender("bad"), rate=0, concurrency=concurrency) as updater:
        with pytest.raises(ZeroDivisionError, match="bug in the sender"):
            await consume(updater)

"""The library API end to end: `stream()` and `run()` over lists, tuples, generators, async
generators and a `Source`, against the sandbox; every status a run without faults can produce."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bulk_updater import BulkUpdater, LeadUpdate, Outcome, Source, Status, Summary
from bulk_updater.sandbox import DEFAULT_SANDBOX_KEY, Sandbox
from tests.conftest import make_leads, read_report

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
    assert "no field" in by_row[6].message  # an email is a label, not an update
    assert by_row[6].email == "new@example.com"
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

    lines = read_report(report)
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

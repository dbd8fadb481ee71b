"""Hostile input end to end: an id that is not a plain token never leaves `/v1/leads/{id}` (it is
never sent at all), a value the wire cannot carry costs one `invalid` row, and every row is
reported once."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from bulk_updater import BulkUpdater, LeadUpdate, Source, Status
from bulk_updater.sandbox import DEFAULT_SANDBOX_KEY, Sandbox, SandboxState
from tests.conftest import HOSTILE_IDS, TOKEN_ID, make_leads, read_report, write_csv

KEY = DEFAULT_SANDBOX_KEY


def assert_no_request_left_the_leads_path(state: SandboxState, good: set[str]) -> None:
    assert state.stray == []
    assert state.bad_requests == []
    assert set(state.patches_by_lead) <= good
    assert all(TOKEN_ID.fullmatch(lead_id) for lead_id in state.patches_by_lead)


# --- hostile ids


async def test_csv_mixing_good_rows_and_hostile_ids(tmp_path: Path) -> None:
    leads = make_leads(3)
    ids = list(leads)
    missing = "f" * 24
    records: list[tuple[list[str], Status]] = []
    trimmed = empty = 0
    for n, hostile in enumerate(HOSTILE_IDS):
        records.append(([ids[n % 3], f"good{n}", ""], Status.UPDATED))
        # Spaces around an id are spreadsheet debris: a CSV cell is trimmed, then checked.
        if TOKEN_ID.fullmatch(hostile.strip()) and hostile.strip() in leads:
            trimmed += 1
            records.append(([hostile, f"padded{n}", "x@example.com"], Status.UPDATED))
        elif not hostile.strip():  # no id beside an email: matched by it (no lead has it)
            empty += 1
            records.append(([hostile, f"empty{n}", "x@example.com"], Status.NOT_FOUND))
        else:
            records.append(([hostile, f"evil{n}", "x@example.com"], Status.INVALID))
    records.append(([missing, "ghost", ""], Status.NOT_FOUND))
    records.append(([ids[0], "last", ""], Status.UPDATED))
    path = write_csv(tmp_path / "in.csv", ["id", "firstName", "email"], (c for c, _ in records))
    report = tmp_path / "report.csv"

    async with (
        Sandbox(leads) as sb,
        BulkUpdater(api_key=KEY, base_url=sb.url, rate=0, concurrency=8) as updater,
    ):
        summary = await updater.run(Source(path), report=report)

    expected = {row: status for row, (_, status) in enumerate(records, start=1)}
    lines = read_report(report)
    assert [int(line["row"]) for line in lines] == list(expected)  # each row once, in order
    assert {int(line["row"]): Status(line["status"]) for line in lines} == expected
    for line in lines:
        if line["status"] == "invalid":
            assert "column id" in line["message"]
            assert line["email"] == "x@example.com"
    assert summary.rows == len(records)
    assert trimmed == 2  # " 000…0" and "000…0 "
    assert summary.counts[Status.INVALID] == len(HOSTILE_IDS) - trimmed - empty
    assert summary.requests == len(HOSTILE_IDS) + 2 + trimmed + 1  # and one search, by email

    assert_no_request_left_the_leads_path(sb.state, {*ids, missing})
    assert sum(sb.state.patches_by_lead.values()) == len(HOSTILE_IDS) + 2 + trimmed
    assert sb.state.leads[ids[0]]["firstName"] == "last"
    assert all(not lead["firstName"].startswith("evil") for lead in sb.state.leads.values())


async def test_jsonl_mixing_good_rows_and_hostile_ids(tmp_path: Path) -> None:
    leads = make_leads(2)
    ids = list(leads)
    hostile: list[Any] = [*HOSTILE_IDS, "a\x00b", 12345, 1.5, True, None, ["a"], {"id": "a"}]
    records: list[dict[str, Any]] = []
    for n, bad in enumerate(hostile):
        records.append({"id": ids[n % 2], "city": f"good{n}"})
        records.append({"id": bad, "city": f"evil{n}"})
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")

    async with (
        Sandbox(leads) as sb,
        BulkUpdater(api_key=KEY, base_url=sb.url, rate=0, concurrency=8) as updater,
    ):
        outcomes = [o async for o in updater.stream(Source(str(path)))]

    assert sorted(o.row for o in outcomes) == list(range(1, len(records) + 1))
    for outcome in outcomes:
        expected = Status.UPDATED if outcome.row % 2 else Status.INVALID
        assert outcome.status is expected, outcome
    assert_no_request_left_the_leads_path(sb.state, set(ids))
    assert sum(sb.state.patches_by_lead.values()) == len(hostile)


@pytest.mark.parametrize("lead_id", ["../account", "..", ".", "a/b", "x?y=1", "a#b", "a\nb"])
async def test_a_model_with_a_non_token_id_is_never_sent(lead_id: str) -> None:
    """`model_copy(update=...)` and `model_construct` skip validation; the spec still says an id
    is sent only if it is a plain token, so such a row must be refused, not sent."""
    leads = make_leads(1)
    (good,) = leads
    rows = [
        LeadUpdate(id=good, city="Oslo").model_copy(update={"id": lead_id}),
        LeadUpdate.model_construct(id=lead_id, city="Rome"),
        LeadUpdate(id=good, city="Paris"),
    ]
    async with (
        Sandbox(leads) as sb,
        BulkUpdater(api_key=KEY, base_url=sb.url, rate=0, concurrency=4) as updater,
    ):
        outcomes = sorted([o async for o in updater.stream(rows)], key=lambda o: o.row)

    assert [o.status for o in outcomes] == [Status.INVALID, Status.INVALID, Status.UPDATED]
    assert_no_request_left_the_leads_path(sb.state, {good})
    assert sb.state.leads[good]["city"] == "Paris"


# --- values the wire cannot carry


@pytest.mark.parametrize("concurrency", [1, 4])
async def test_a_value_that_cannot_be_encoded_costs_one_invalid_row_not_the_job(
    tmp_path: Path, concurrency: int
) -> None:
    """JSON escapes can smuggle in a lone surrogate; JSON text can hold NaN or a 100-digit
    integer. Such a row must end `invalid`; the rows after it, for the same lead or another,
    must still be sent, and the job must finish."""
    leads = make_leads(2)
    a, b = leads
    lines = [
        f'{{"id": "{a}", "firstName": "\\ud800"}}',
        f'{{"id": "{a}", "customFields": {{"x": NaN}}}}',
        f'{{"id": "{b}", "customFields": {{"x": {10**29}}}}}',
        f'{{"id": "{b}", "tags": ["\\udfff"]}}',
        f'{{"id": "{a}", "firstName": "after"}}',
        f'{{"id": "{b}", "firstName": "after"}}',
    ]
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    async with (
        Sandbox(leads) as sb,
        BulkUpdater(
            api_key=KEY, base_url=sb.url, rate=0, concurrency=concurrency, max_attempts=1
        ) as updater,
    ):
        async with asyncio.timeout(3):
            outcomes = sorted(
                [o async for o in updater.stream(Source(str(path)))], key=lambda o: o.row
            )

    assert [o.row for o in outcomes] == [1, 2, 3, 4, 5, 6]
    statuses = [o.status for o in outcomes]
    assert statuses[:2] == [Status.INVALID, Status.INVALID]  # lone surrogate, NaN
    assert statuses[3:] == [Status.INVALID, Status.UPDATED, Status.UPDATED]
    if statuses[2] is Status.UPDATED:  # a 100-bit integer: refused, or sent exactly
        assert sb.state.leads[b]["customFields"]["x"] == 10**29
    else:
        assert statuses[2] is Status.INVALID
    assert sb.state.leads[a]["firstName"] == "after"
    assert sb.state.leads[b]["firstName"] == "after"
    assert sb.state.leads[a]["customFields"] == leads[a]["customFields"]
    assert sb.state.bad_requests == []

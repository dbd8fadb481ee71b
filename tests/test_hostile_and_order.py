"""End to end over a real loopback socket: hostile input never leaves `/v1/leads/{id}`, every row
is reported once, rows for one lead go out in input order one at a time, and the report reads
back in input order with no cell a spreadsheet would run as a formula."""

from __future__ import annotations

import asyncio
import csv
import json
import random
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from yarl import URL

from bulk_updater import BulkUpdater, LeadUpdate, Reply, SendKitClient, Source, Status
from bulk_updater.sandbox import DEFAULT_SANDBOX_KEY, Sandbox, SandboxState

from .conftest import make_leads, run_virtual

KEY = DEFAULT_SANDBOX_KEY
TOKEN = re.compile(r"[A-Za-z0-9_-]{1,128}")
HOSTILE_IDS = [
    "../account",
    "a/b",
    "x?y=1",
    "%2e%2e%2f",
    "a#b",
    "a b",
    " 000000000000000000000000",
    "000000000000000000000000 ",
    "a\tb",
    "a\x01b",
    "a\x1bb",
    "a\x7fb",
    "a\nb",
    "a\r\nb",
    "\u2028",
    "..",
    ".",
    "/",
    "a\\b",
    "?",
    "#",
    "%00",
    "caf\u00e9",
    "a" * 129,
    "",
]


def write_csv(path: Path, header: list[str], rows: Iterable[list[str]]) -> str:
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def read_report(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        return list(csv.DictReader(f))


def assert_no_request_left_the_leads_path(state: SandboxState, good: set[str]) -> None:
    assert state.stray == []
    assert state.bad_requests == []
    assert set(state.patches_by_lead) <= good
    assert all(TOKEN.fullmatch(lead_id) for lead_id in state.patches_by_lead)


# --- hostile ids, end to end


async def test_csv_mixing_good_rows_and_hostile_ids(tmp_path: Path) -> None:
    leads = make_leads(3)
    ids = list(leads)
    missing = "f" * 24
    records: list[tuple[list[str], Status]] = []
    for n, hostile in enumerate(HOSTILE_IDS):
        records.append(([ids[n % 3], f"good{n}", ""], Status.UPDATED))
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
    assert summary.counts[Status.INVALID] == len(HOSTILE_IDS)
    assert summary.requests == len(HOSTILE_IDS) + 2

    assert_no_request_left_the_leads_path(sb.state, {*ids, missing})
    assert sum(sb.state.patches_by_lead.values()) == len(HOSTILE_IDS) + 2
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


@pytest.mark.parametrize("lead_id", [*HOSTILE_IDS, "%2E%2E", "..%2f", "%2e"])
def test_url_for_keeps_any_id_inside_the_leads_path(lead_id: str) -> None:
    """The second guard: whatever the id, url_for refuses it or gives a URL that, as any server
    normalises it (percent-decoding unreserved characters, removing dot segments), names one
    lead under /v1/leads/. Percent-encoding alone leaves "", "." and ".." as they are."""
    client = SendKitClient(api_key=KEY, base_url="https://api.sendkit.ai", timeout=1, concurrency=1)
    try:
        url = client.url_for(lead_id)
    except ValueError:
        return  # refusing a non-token id is the strongest guard
    assert url.raw_query_string == ""
    assert url.raw_fragment == ""
    assert url.raw_path.startswith("/v1/leads/")
    segment = url.raw_path.removeprefix("/v1/leads/")
    assert "/" not in segment
    assert segment.replace("%2E", ".").replace("%2e", ".") not in ("", ".", "..")
    normalised = URL(str(url))  # yarl removes dot segments as servers do
    assert normalised.path.startswith("/v1/leads/")
    assert normalised.raw_path != "/v1/leads/"


def test_url_for_a_plain_token() -> None:
    client = SendKitClient(api_key=KEY, base_url="http://127.0.0.1:8080/", timeout=1, concurrency=1)
    assert (
        str(client.url_for("665d4e5f_6a7b-8c9d"))
        == "http://127.0.0.1:8080/v1/leads/665d4e5f_6a7b-8c9d"
    )


# --- values the wire cannot carry, end to end


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


# --- same-lead order


def interleaved(lead_ids: list[str], per_lead: int, seed: int | None) -> list[tuple[str, int]]:
    """(lead, k) for k in 0..per_lead-1, each lead's k increasing; round-robin or shuffled."""
    if seed is None:
        return [(lead, k) for k in range(per_lead) for lead in lead_ids]
    rng = random.Random(seed)
    pending = dict.fromkeys(lead_ids, 0)
    out = []
    while pending:
        lead = rng.choice(sorted(pending))
        out.append((lead, pending[lead]))
        pending[lead] += 1
        if pending[lead] == per_lead:
            del pending[lead]
    return out


@pytest.mark.parametrize("seed", [None, 7])
async def test_last_row_wins_for_every_lead_at_concurrency_32(
    tmp_path: Path, seed: int | None
) -> None:
    leads = make_leads(40)
    order = interleaved(list(leads), 10, seed)
    path = write_csv(
        tmp_path / "in.csv",
        ["id", "firstName", "tags", "customFields.step"],
        ([lead, f"v{k}", f"t{k}", str(k)] for lead, k in order),
    )

    async with (
        Sandbox(leads) as sb,
        BulkUpdater(api_key=KEY, base_url=sb.url, rate=0, concurrency=32) as updater,
    ):
        summary = await updater.run(Source(path))

    assert summary.counts[Status.UPDATED] == 400
    assert summary.rows == 400
    state = sb.state
    assert state.max_in_flight_per_lead == 1
    assert state.patches_by_lead == dict.fromkeys(leads, 10)
    for lead_id, lead in state.leads.items():
        assert lead["firstName"] == "v9", lead_id
        assert lead["tags"] == ["t9"]
        assert lead["customFields"]["step"] == "9"
        assert lead["customFields"]["industry"] == "SaaS"  # merged, not replaced
    assert state.stray == []
    assert state.bad_requests == []


class JitterSender:
    """Answers after a random delay; records, per lead, the order of sends and the overlap."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.sent: dict[str, list[int]] = {}
        self.in_flight: dict[str, int] = {}
        self.max_in_flight_per_lead = 0
        self.max_in_flight = 0

    async def send(self, update: LeadUpdate) -> Reply:
        assert update.customFields is not None
        self.sent.setdefault(update.id, []).append(int(str(update.customFields["k"])))
        self.in_flight[update.id] = self.in_flight.get(update.id, 0) + 1
        self.max_in_flight_per_lead = max(self.max_in_flight_per_lead, self.in_flight[update.id])
        self.max_in_flight = max(self.max_in_flight, sum(self.in_flight.values()))
        try:
            await asyncio.sleep(self.rng.uniform(0.001, 0.5))  # virtual time: costs nothing
        finally:
            self.in_flight[update.id] -= 1
        return Reply(200)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rows_for_one_lead_go_out_in_input_order_one_at_a_time(seed: int) -> None:
    lead_ids = [f"lead{i}" for i in range(40)]
    order = interleaved(lead_ids, 10, seed)
    rows = [{"id": lead, "customFields.k": str(k)} for lead, k in order]
    sender = JitterSender(seed)

    async def main() -> list[Any]:
        async with BulkUpdater(sender=sender, rate=0, concurrency=32) as updater:
            return [o async for o in updater.stream(rows)]

    outcomes = run_virtual(main())
    assert len(outcomes) == 400
    assert all(o.status is Status.UPDATED for o in outcomes)
    assert sender.max_in_flight_per_lead == 1
    assert sender.max_in_flight > 16  # the pool was busy, so the check above means something
    assert sender.sent == {lead: list(range(10)) for lead in lead_ids}


# --- the report


class LastFirstSender:
    """Holds the first lead's request until every other lead was answered."""

    def __init__(self, first: str, others: int) -> None:
        self.first = first
        self.others = others
        self.answered = 0
        self.release = asyncio.Event()

    async def send(self, update: LeadUpdate) -> Reply:
        if update.id == self.first:
            await self.release.wait()
            return Reply(200)
        self.answered += 1
        if self.answered == self.others:
            self.release.set()
        return Reply(404, "NOT_FOUND", "Lead not found") if update.id == "gone" else Reply(200)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
async def test_report_is_in_input_order_once_the_run_completes(tmp_path: Path, suffix: str) -> None:
    rows: list[dict[str, Any]] = [{"id": "first", "city": "x"}]
    rows += [{"id": f"l{i}", "city": "x"} for i in range(20)]
    rows += [{"id": "../bad", "city": "x"}, {"id": "gone", "city": "x"}]
    sender = LastFirstSender("first", others=21)
    report = tmp_path / f"report{suffix}"
    finished: list[int] = []
    async with asyncio.timeout(10), BulkUpdater(sender=sender, rate=0, concurrency=8) as updater:
        await updater.run(rows, report=report, on_outcome=lambda o: finished.append(o.row))

    assert finished[-1] == 1  # row 1 really finished last
    if suffix == ".csv":
        lines = read_report(report)
    else:
        lines = [json.loads(line) for line in report.read_text("utf-8").splitlines()]
    assert [int(line["row"]) for line in lines] == list(range(1, len(rows) + 1))
    statuses = [line["status"] for line in lines]
    assert statuses == ["updated"] * 21 + ["invalid", "not_found"]


async def test_report_cells_never_start_a_formula(tmp_path: Path) -> None:
    rows: list[Any] = [
        {"id": "-lead", "city": "x"},  # a valid id that a spreadsheet would compute
        {"id": "=1+2", "city": "x"},
        {"id": "+33", "city": "x"},
        {"id": "@SUM(A1)", "city": "x"},
        {"id": "\t=cmd", "city": "x"},
        {"id": "\r=cmd", "city": "x"},
        {"id": '=HYPERLINK("http://evil")', "email": "a@b.c"},
    ]
    path = write_csv(
        tmp_path / "in.csv",
        ["id", "email", "city"],
        [*([r["id"], "=cmd|' /C calc'!A0", "x"] for r in rows), ["ok", "-2+3", "y"]],
    )

    class Answer:
        async def send(self, update: LeadUpdate) -> Reply:
            return Reply(422, "=ERR", "-bad value")

    report = tmp_path / "report.csv"
    async with BulkUpdater(sender=Answer(), rate=0) as updater:
        summary = await updater.run(Source(path), report=report)
    assert summary.rows == len(rows) + 1

    raw_lines = report.read_text("utf-8").splitlines()
    assert len(raw_lines) == len(rows) + 2  # header + one physical line per row
    lines = read_report(report)
    assert [line["status"] for line in lines] == ["rejected"] + ["invalid"] * 6 + ["rejected"]
    for line in lines[1:]:
        for column in ("id", "status", "error_code", "message", "email"):
            assert not line[column].startswith(("=", "+", "-", "@", "\t", "\r")), (column, line)
    assert lines[0]["id"] == "-lead"  # a valid id is written as read, so the report joins back
    assert lines[1]["id"] == "'=1+2"
    assert lines[2]["id"] == "'+33"
    assert lines[3]["id"] == "'@SUM(A1)"
    assert lines[0]["email"] == "'=cmd|' /C calc'!A0"
    assert lines[7]["email"] == "'-2+3"
    assert lines[7]["error_code"] == "'=ERR"
    assert lines[7]["message"] == "'-bad value"

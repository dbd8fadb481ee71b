"""Whole jobs: the real engine against the real sandbox over loopback sockets.

Faults, a tight server limit, every `Retry-After` form, a refused key and an API that is down,
and per-lead order at full concurrency.
"""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import pytest

from bulk_updater import BulkUpdater, Source, Status, StopReason
from bulk_updater.sandbox import FaultPlan, Sandbox, SandboxThread
from tests.conftest import interleaved, make_leads, read_report, write_csv

KEY = "sk_test_e2e"
COLUMNS = ["id", "email", "firstName", "jobTitle", "tags", "customFields.tier", "customFields"]


def write_updates(
    path: Path, leads: dict[str, dict[str, Any]], *, missing: int = 0, seed: int = 7
) -> tuple[list[dict[str, str]], dict[str, dict[str, Any]]]:
    """One row per lead (plus `missing` unknown ids) and the lead state the rows describe."""
    rng = random.Random(seed)
    expected = copy.deepcopy(leads)
    rows: list[dict[str, str]] = []
    for i, lead_id in enumerate(leads):
        row = dict.fromkeys(COLUMNS, "")
        row["id"] = lead_id
        row["email"] = leads[lead_id]["email"]
        lead = expected[lead_id]
        if rng.random() < 0.7:
            row["firstName"] = lead["firstName"] = f"Renamed, {i}"
        if rng.random() < 0.7:
            row["jobTitle"] = lead["jobTitle"] = rng.choice(["CEO", "CRO", 'VP "Sales"'])
        if rng.random() < 0.5:
            tags = rng.sample(["vip", "enterprise", "smb", "churn-risk"], k=rng.randint(1, 3))
            row["tags"] = json.dumps(tags) if i % 2 else ";".join(tags)
            lead["tags"] = tags
        if rng.random() < 0.5:
            row["customFields.tier"] = lead["customFields"]["tier"] = f"gold\n{i}"
        if rng.random() < 0.4 or all(row[c] == "" for c in COLUMNS[2:]):
            extra = {"revenue": f"${i}M", "employees": i}
            row["customFields"] = json.dumps(extra)
            lead["customFields"].update(extra)
        rows.append(row)
    for n in range(missing):
        ghost = {**dict.fromkeys(COLUMNS, ""), "id": f"ffff{n:020x}", "jobTitle": "Ghost"}
        rows.insert(rng.randrange(len(rows)), ghost)
    write_csv(path, COLUMNS, rows)
    return rows, expected


def strip_times(leads: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {k: {f: v for f, v in lead.items() if f != "updatedAt"} for k, lead in leads.items()}


async def test_thousand_rows_end_in_exactly_the_state_the_rows_describe(tmp_path: Path) -> None:
    leads = make_leads(1000)
    rows, expected = write_updates(tmp_path / "updates.csv", leads, missing=5)
    report = tmp_path / "report.csv"
    async with Sandbox(leads, api_key=KEY) as sandbox:
        async with BulkUpdater(api_key=KEY, base_url=sandbox.url, rate=0, concurrency=32) as up:
            summary = await up.run(Source(str(tmp_path / "updates.csv")), report=report)
        state = sandbox.state
    assert strip_times(state.leads) == strip_times(expected)
    assert summary.counts[Status.UPDATED] == 1000
    assert summary.counts[Status.NOT_FOUND] == 5
    assert summary.rows == 1005
    assert state.bad_requests == []
    assert state.stray == []
    lines = read_report(report)
    assert [int(line["row"]) for line in lines] == list(range(1, 1006))
    assert [line["id"] for line in lines] == [row["id"] for row in rows]
    not_found = [line for line in lines if line["status"] == "not_found"]
    assert len(not_found) == 5
    assert all(line["error_code"] == "NOT_FOUND" for line in not_found)
    assert all(line["id"].startswith("ffff") for line in not_found)
    assert all(line["email"] == leads[line["id"]]["email"] for line in lines if line["email"])


async def test_job_at_the_server_rate_meets_no_429() -> None:
    leads = make_leads(100)
    # The server on its own loop, but in this process: one request of tolerance for the moments
    # the two loops fight over the GIL (the exact window is `make bench`'s, in two processes).
    with SandboxThread(leads, api_key=KEY, rate=50, burst=1) as sandbox:
        async with BulkUpdater(api_key=KEY, base_url=sandbox.url, rate=50, concurrency=16) as up:
            summary = await up.run([{"id": i, "city": "Oslo"} for i in leads])
        assert sandbox.state.rate_limited == 0
    assert summary.rate_limited == 0
    assert summary.counts[Status.UPDATED] == 100
    assert summary.achieved_rate <= 50


async def test_heavy_mixed_faults_and_a_tight_server_limit_still_update_every_row(
    tmp_path: Path,
) -> None:
    leads = make_leads(1000)
    _, expected = write_updates(tmp_path / "updates.csv", leads, seed=11)
    faults = FaultPlan(rate=0.1, kinds=("503", "500", "drop", "slow"), slow_seconds=0.6, seed=3)
    async with Sandbox(leads, api_key=KEY, rate=200, faults=faults) as sandbox:
        async with BulkUpdater(
            api_key=KEY,
            base_url=sandbox.url,
            rate=400,
            concurrency=32,
            timeout=0.3,
            max_attempts=10,
            backoff_base=0.01,
            backoff_max=0.05,
            max_pause=0.25,
        ) as updater:
            summary = await updater.run(
                Source(str(tmp_path / "updates.csv")), report=tmp_path / "r.csv"
            )
        state = sandbox.state
    assert summary.counts[Status.UPDATED] == 1000, summary
    assert summary.all_updated
    assert summary.stopped is None
    assert strip_times(state.leads) == strip_times(expected)
    assert set(state.faults) == {"503", "500", "drop", "slow"}
    assert state.rate_limited > 0
    assert summary.rate_limited == state.rate_limited
    assert summary.retries >= sum(state.faults.values())
    lines = read_report(tmp_path / "r.csv")
    assert sum(int(line["attempts"]) for line in lines) == summary.requests
    assert state.bad_requests == []


@pytest.mark.parametrize("retry_after", ["seconds", "date", "none"])
async def test_every_retry_after_form_is_understood(retry_after: str) -> None:
    leads = make_leads(150)
    async with Sandbox(leads, api_key=KEY, rate=60, retry_after=retry_after) as sandbox:  # type: ignore[arg-type]
        async with BulkUpdater(
            api_key=KEY,
            base_url=sandbox.url,
            rate=300,
            concurrency=16,
            backoff_base=0.05,
            max_pause=0.2,
        ) as updater:
            summary = await updater.run([{"id": i, "city": "Oslo"} for i in leads])
        state = sandbox.state
    assert summary.counts[Status.UPDATED] == 150
    assert state.rate_limited > 0
    assert summary.rate_limited == state.rate_limited
    assert all(lead["city"] == "Oslo" for lead in state.leads.values())


# --- jobs that stop


async def test_refused_key_stops_a_2000_row_job_within_a_few_dozen_requests(
    tmp_path: Path,
) -> None:
    leads = make_leads(2000)
    async with Sandbox(leads, api_key=KEY) as sandbox:
        async with BulkUpdater(
            api_key="sk_wrong", base_url=sandbox.url, rate=0, concurrency=16
        ) as updater:
            summary = await updater.run(
                [{"id": i, "city": "Oslo"} for i in leads], report=tmp_path / "r.csv"
            )
        requests = sandbox.state.requests
    assert summary.stopped is StopReason.KEY_REFUSED
    assert "refused the key" in (summary.stop_message or "")
    assert requests <= 16  # at most the requests in flight when the first 401 came
    assert summary.counts[Status.ABORTED] == 2000
    assert summary.duration_s < 10
    lines = read_report(tmp_path / "r.csv")
    assert len(lines) == 2000
    assert [int(line["row"]) for line in lines] == list(range(1, 2001))
    refused = [line for line in lines if line["http_status"] == "401"]
    assert refused
    assert all("refused the key" in line["message"] for line in refused)


async def test_an_api_that_is_down_stops_the_job(tmp_path: Path) -> None:
    leads = make_leads(500)
    faults = FaultPlan(rate=1.0, kinds=("503",))
    async with Sandbox(leads, api_key=KEY, faults=faults) as sandbox:
        async with BulkUpdater(
            api_key=KEY,
            base_url=sandbox.url,
            rate=0,
            concurrency=8,
            streak_limit=25,
            backoff_base=0.001,
            backoff_max=0.002,
        ) as updater:
            summary = await updater.run([{"id": i, "city": "Oslo"} for i in leads])
        requests = sandbox.state.requests
    assert summary.stopped is StopReason.API_DOWN
    assert requests < 25 + 8 * 2
    assert summary.counts[Status.ABORTED] + summary.counts[Status.FAILED] == 500


# --- per-lead order


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
        Sandbox(leads, api_key=KEY) as sb,
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

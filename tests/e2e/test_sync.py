"""Sync mode end to end: nightly runs of one export against the real sandbox, with a state file.

Night 1 sends everything; night 2, the same file, sends only the rows whose leads were not found;
night 3, with 5% of the rows changed, sends exactly those (and the not-found ones again).
"""

from __future__ import annotations

import random
from collections.abc import Collection
from pathlib import Path
from typing import Any

from bulk_updater import BulkUpdater, Source, Status
from bulk_updater.sandbox import Sandbox
from tests.conftest import integrity, make_leads, read_report, remembered, write_csv

KEY = "sk_test_sync"
HEADER = ("id", "email", "jobTitle", "tags", "customFields.tier")
MISSING = [f"ffff{n:020x}" for n in range(5)]


def export(path: Path, ids: list[str], changed: Collection[str] = ()) -> Path:
    """The nightly export: one row per lead (and the missing ones), `changed` leads renamed."""
    rows = [
        {
            "id": lead,
            "email": f"{lead}@example.com",
            "jobTitle": f"Changed {n}" if lead in changed else f"Title {n}",
            "tags": "vip;q3",
            "customFields.tier": f"t{n % 7}",
        }
        for n, lead in enumerate([*ids, *MISSING])
    ]
    return write_csv(path, HEADER, rows)


async def run_night(sb: Sandbox, source: Path, state: Path, **options: Any) -> dict[Status, int]:
    async with BulkUpdater(
        api_key=KEY, base_url=sb.url, rate=0, skip_unchanged=True, state=state, **options
    ) as updater:
        summary = await updater.run(Source(source), report=source.with_suffix(".report.csv"))
    return summary.counts


async def test_three_nights(tmp_path: Path) -> None:
    leads = make_leads(400)
    ids = list(leads)
    state = tmp_path / "state.sqlite3"
    async with Sandbox(leads, api_key=KEY) as sb:
        counts = await run_night(sb, export(tmp_path / "night1.csv", ids), state)
        assert (counts[Status.UPDATED], counts[Status.NOT_FOUND]) == (400, 5)
        assert sum(sb.state.patches_by_lead.values()) == 405

        sb.state.patches_by_lead.clear()
        counts = await run_night(sb, export(tmp_path / "night2.csv", ids), state)
        assert (counts[Status.UNCHANGED], counts[Status.NOT_FOUND], counts[Status.UPDATED]) == (
            400,
            5,
            0,
        )
        assert set(sb.state.patches_by_lead) == set(MISSING)

        changed = set(random.Random(3).sample(ids, 20))  # 5%
        sb.state.patches_by_lead.clear()
        counts = await run_night(sb, export(tmp_path / "night3.csv", ids, changed), state)
        assert (counts[Status.UPDATED], counts[Status.UNCHANGED]) == (20, 380)
        assert set(sb.state.patches_by_lead) == changed | set(MISSING)
        assert all(n == 1 for n in sb.state.patches_by_lead.values())
        for n, lead in enumerate(ids):
            title = f"Changed {n}" if lead in changed else f"Title {n}"
            assert sb.state.leads[lead]["jobTitle"] == title
    report = read_report(tmp_path / "night3.report.csv")
    assert len(report) == 405
    assert {r["status"] for r in report} == {"updated", "unchanged", "not_found"}
    assert len(remembered(state)) == 400
    assert integrity(state) == "ok"


async def test_the_last_row_wins_against_the_sandbox(tmp_path: Path) -> None:
    leads = make_leads(3)
    a, b, _ = leads
    state = tmp_path / "state.sqlite3"
    async with Sandbox(leads, api_key=KEY) as sb:
        first = write_csv(tmp_path / "first.csv", ("id", "jobTitle"), [(a, "x"), (b, "x")])
        await run_night(sb, first, state)
        sb.state.patches_by_lead.clear()
        rows = [(a, "x"), (a, "y"), (b, "x"), (a, "x"), (b, "x")]
        again = write_csv(tmp_path / "again.csv", ("id", "jobTitle"), rows)
        counts = await run_night(sb, again, state, concurrency=4)
        assert sb.state.patches_by_lead == {a: 2}
        assert counts[Status.UNCHANGED] == 3
        assert sb.state.leads[a]["jobTitle"] == "x"
        assert sb.state.max_in_flight_per_lead == 1
    assert remembered(state)[a] == {"jobTitle": "x"}


async def test_resume_then_skip_unchanged_against_the_sandbox(tmp_path: Path) -> None:
    """A cron line with both: resume finishes tonight's report, skip-unchanged spares the rest."""
    leads = make_leads(50)
    ids = list(leads)
    state = tmp_path / "state.sqlite3"
    source = export(tmp_path / "night.csv", ids)
    async with Sandbox(leads, api_key=KEY) as sb:
        await run_night(sb, source, state)
        sb.state.patches_by_lead.clear()
        async with BulkUpdater(
            api_key=KEY, base_url=sb.url, rate=0, skip_unchanged=True, state=state
        ) as updater:
            summary = await updater.run(
                Source(source), report=source.with_suffix(".report.csv"), resume=True
            )
        assert summary.counts[Status.SKIPPED] == 55  # every row is final in the report
        assert sum(sb.state.patches_by_lead.values()) == 0
        report = tmp_path / "other.report.csv"
        async with BulkUpdater(
            api_key=KEY, base_url=sb.url, rate=0, skip_unchanged=True, state=state
        ) as updater:
            summary = await updater.run(Source(source), report=report, resume=True)
        assert summary.counts[Status.UNCHANGED] == 50  # a new report: nothing to resume
        assert set(sb.state.patches_by_lead) == set(MISSING)


async def test_rows_matched_by_email_are_compared_by_the_lead_they_resolve_to(
    tmp_path: Path,
) -> None:
    """`--match email` with `--skip-unchanged`: the search still runs each night (the state file
    knows leads, not emails), but a row whose lead holds its values is not sent again."""
    leads = make_leads(30)
    rows = [(lead["email"].upper(), f"Title {n}") for n, lead in enumerate(leads.values())]
    state = tmp_path / "state.sqlite3"
    async with Sandbox(leads, api_key=KEY) as sb:
        night = write_csv(tmp_path / "night.csv", ("email", "jobTitle"), rows)
        counts = await run_night(sb, night, state)
        assert counts[Status.UPDATED] == 30
        sb.state.patches_by_lead.clear()
        searched = sb.state.search_requests
        rows[4] = (rows[4][0], "Changed")
        again = write_csv(tmp_path / "again.csv", ("email", "jobTitle"), rows)
        counts = await run_night(sb, again, state)
        assert (counts[Status.UNCHANGED], counts[Status.UPDATED]) == (29, 1)
        assert sb.state.patches_by_lead == {f"{4:024x}": 1}
        assert sb.state.search_requests - searched == 30
        assert sb.state.leads[f"{4:024x}"]["jobTitle"] == "Changed"
    assert len(remembered(state)) == 30

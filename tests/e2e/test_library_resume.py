"""`run(rows, report=..., resume=True)` over rows with no fingerprint (a list, a generator): each
finished row read again must be of the lead the report names for it, or the run is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bulk_updater import BulkUpdater, InputChangedError, Status
from bulk_updater.sandbox import DEFAULT_SANDBOX_KEY, Sandbox
from tests.conftest import make_leads

LEADS = make_leads(4)
IDS = list(LEADS)


@pytest.mark.parametrize("match", ["id", "email"])
async def test_rows_given_in_another_order_are_refused(match: str, tmp_path: Path) -> None:
    """The same query read again gives a new row first: the finished row 1 is another lead's."""
    key = "id" if match == "id" else "email"
    first, new = ({key: LEADS[IDS[i]]["_id" if match == "id" else "email"]} for i in (1, 3))
    report = tmp_path / "report.csv"
    async with (
        Sandbox(LEADS) as sb,
        BulkUpdater(api_key=DEFAULT_SANDBOX_KEY, base_url=sb.url, rate=0, match=match) as updater,
    ):
        done = await updater.run([first | {"companyName": "Acme"}], report=report)
        assert done.counts[Status.UPDATED] == 1
        before = report.read_bytes()
        rows: list[dict[str, Any]] = [
            new | {"companyName": "Globex"},
            first | {"companyName": "Acme"},
        ]
        with pytest.raises(InputChangedError, match="another lead than row 1's"):
            await updater.run(rows, report=report, resume=True)
    assert sb.state.leads[IDS[3]]["companyName"] == "Acme"  # Globex was never skipped as sent
    assert report.read_bytes() == before


async def test_the_same_rows_in_the_same_order_resume(tmp_path: Path) -> None:
    report = tmp_path / "report.csv"
    rows = [{"id": lead, "companyName": "Globex"} for lead in IDS]
    async with Sandbox(LEADS) as sb:
        async with BulkUpdater(
            api_key=DEFAULT_SANDBOX_KEY, base_url=sb.url, rate=0, limit=2
        ) as updater:
            await updater.run(iter(rows), report=report)
        assert sorted(sb.state.applied_by_lead) == IDS[:2]
        async with BulkUpdater(api_key=DEFAULT_SANDBOX_KEY, base_url=sb.url, rate=0) as updater:
            summary = await updater.run(iter(rows), report=report, resume=True)
    assert (summary.counts[Status.SKIPPED], summary.counts[Status.UPDATED]) == (2, 2)
    assert sb.state.applied_by_lead == dict.fromkeys(IDS, 1)  # each lead once, over both runs

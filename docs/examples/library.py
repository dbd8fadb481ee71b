"""The library's two ways to run a job: `stream()` yields outcomes, `run()` writes a report.

Run it from the clone's folder (it reads `samples/updates.csv`); the key and the API's address
come from `SENDKIT_API_KEY`, `SENDKIT_BASE_URL` and `SENDKIT_WORKSPACE_ID` unless given to
`BulkUpdater`.
"""

import asyncio
from typing import Any

from bulk_updater import BulkUpdater, LeadUpdate, Outcome, Source, Status


async def main() -> int:
    rows: list[dict[str, Any] | LeadUpdate] = [
        {"id": "15e851c739c4a57aea5c329f", "jobTitle": "COO", "tags": ["vip"], "ref": "crm-1"},
        {"id": "eafe77a99c190794de2f35d5", "customFields": {"revenue": "$50M"}},
        LeadUpdate(id="bb37b2145a52f1c55e78901f", city="Oslo"),
    ]

    async def log(outcome: Outcome) -> None:  # a plain function works too
        if outcome.status is not Status.UPDATED:
            print(outcome.row, outcome.id, outcome.status, outcome.message)

    async with BulkUpdater(rate=10, concurrency=8) as updater:
        async with updater.stream(rows) as outcomes:  # leaving the block ends the job
            async for outcome in outcomes:  # outcomes as rows finish
                print(outcome.row, outcome.status, outcome.ref)
        source = Source("samples/updates.csv")  # checked whole here: InputError if it is bad
        summary = await updater.run(source, report="updates.report.csv", on_outcome=log)
    print(summary.counts, summary.all_updated, summary.exit_code)
    return summary.exit_code


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))

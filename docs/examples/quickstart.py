"""Three leads updated, and the outcome of each: the library in a dozen lines.

The key and the API's address come from `SENDKIT_API_KEY` and `SENDKIT_BASE_URL`; against the
sandbox (`bulk-updater sandbox --leads samples/leads.json`) these leads exist.
"""

import asyncio
from typing import Any

from bulk_updater import BulkUpdater, LeadUpdate


async def main() -> int:
    rows: list[dict[str, Any] | LeadUpdate] = [
        {"id": "3c1f33c9df3f71ffa532a3df", "jobTitle": "CRO", "tags": ["vip"]},
        {"id": "1df779718796889585136f03", "customFields": {"revenue": "$50M"}},
        LeadUpdate(id="54fcaaefb10934a80be9bc7c", city="Oslo"),
    ]
    async with BulkUpdater(rate=10) as updater:
        summary = await updater.run(rows, report="quickstart.report.csv")
    print(summary.counts)  # {'updated': 3, 'not_found': 0, ...}
    return summary.exit_code  # 0, as the command line's


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))

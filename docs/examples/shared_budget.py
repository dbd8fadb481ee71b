"""A job on the rate budget shared through Redis, as a service pushing updates would run it.

Every job of one API key given the same Redis (here `BULK_UPDATER_REDIS_URL`) takes its start
slots from one schedule, so together they keep the key's 60 requests a second: this one, a cron
job with `--redis` and someone's spreadsheet run at the command line. Needs the `[redis]` extra.
"""

import asyncio
import os

from bulk_updater import BulkUpdater, Summary


async def push(rows: list[dict[str, str]]) -> Summary:  # in the service
    async with BulkUpdater(rate=60, redis_url=os.environ["BULK_UPDATER_REDIS_URL"]) as updater:
        return await updater.run(rows)


async def main() -> int:
    summary = await push([
        {"id": "1912cd555b8bdbfc3ae0d723", "jobTitle": "Partner Manager"},
        {"id": "3c1f33c9df3f71ffa532a3df", "customFields.region": "EMEA"},
    ])  # fmt: skip
    print(summary.counts, summary.settled_why)
    return summary.exit_code


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))

"""The test suite's faults job as a child process: bulk-updater as a library, against a URL.

    python bench/faults_child.py INPUT.csv --base-url URL --rate 400 --out summary.json

The settings are those of `tests/e2e/test_jobs.py`'s job with heavy mixed faults (short timeout
and backoffs, which have no command-line flags): 32 workers, `--timeout 0.3`, 10 attempts,
backoff from 0.01 to 0.05 s, pauses of at most 0.25 s. `--rate` is the ceiling (or `auto`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os

from bulk_updater import BulkUpdater, Source


async def main(args: argparse.Namespace) -> dict[str, object]:
    rate: float | str = args.rate if args.rate == "auto" else float(args.rate)
    async with BulkUpdater(
        api_key=os.environ["SENDKIT_API_KEY"],
        base_url=args.base_url,
        rate=rate,  # type: ignore[arg-type]
        concurrency=32,
        timeout=0.3,
        max_attempts=10,
        backoff_base=0.01,
        backoff_max=0.05,
        max_pause=0.25,
    ) as updater:
        summary = await updater.run(Source(args.input))
    return summary.model_dump(mode="json")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("input")
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--rate", default="auto")
    parser.add_argument("--out", required=True)
    arguments = parser.parse_args()
    with open(arguments.out, "w", encoding="utf-8") as file:
        json.dump(asyncio.run(main(arguments)), file)

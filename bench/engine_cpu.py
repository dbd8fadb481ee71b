"""The engine's own CPU per row, in process: no HTTP, so no aiohttp in the figure.

    python bench/engine_cpu.py [--rows 20000] [--rate 0] [--latency 0] [--objects] [--repeat 3]

Runs `BulkUpdater.run()` (the library, as the CLI does: report written, uvloop) on a CSV like
the bench's, with a sender that answers 200 at no cost, after `--latency` seconds if given;
prints the process CPU (`time.process_time()`) per row of the run alone, start-up excluded.
`--objects` gives it `LeadUpdate`s instead of the CSV: the send side without the reading of
cells. For A/B comparisons on a shared machine: run the two versions alternately, several times.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the checkout this script is in, whatever is installed

from bulk_updater import BulkUpdater, LeadUpdate, Reply, Source  # noqa: E402
from harness import write_csv  # noqa: E402

OK = Reply(200)


class FreeSender:
    """Answers 200 to every PATCH, after `latency` seconds (0: at once, with no wait)."""

    def __init__(self, latency: float) -> None:
        self.latency = latency

    async def send(self, update: LeadUpdate) -> Reply:
        if self.latency:
            await asyncio.sleep(self.latency)
        return OK


async def one_run(args: argparse.Namespace, rows: Iterable[Any], report: Path) -> float:
    """CPU seconds per row of one job."""
    sender = FreeSender(args.latency)
    async with BulkUpdater(sender=sender, api_key="k" * 32, rate=args.rate, concurrency=64) as up:
        started = time.process_time()
        summary = await up.run(rows, report=report)
        spent = time.process_time() - started
    if summary.counts["updated"] != args.rows:
        raise SystemExit(f"expected {args.rows} rows updated: {summary.counts}")
    return spent / args.rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per answer")
    parser.add_argument("--objects", action="store_true", help="LeadUpdates, not the CSV")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    import uvloop

    figures = []
    with tempfile.TemporaryDirectory(prefix="engine-cpu-") as tmp:
        csv_path = write_csv(Path(tmp) / "in.csv", args.rows)
        for n in range(args.repeat):
            rows: Iterable[Any] = (
                [LeadUpdate(id=f"{i:024x}", jobTitle="CTO") for i in range(args.rows)]
                if args.objects
                else Source(csv_path)
            )
            report = Path(tmp) / f"run{n}.report.csv"
            figures.append(uvloop.run(one_run(args, rows, report)) * 1e6)
    shown = " ".join(f"{f:.1f}" for f in figures)
    print(f"{statistics.median(figures):.1f} us a row (median; runs: {shown})")


if __name__ == "__main__":
    main()

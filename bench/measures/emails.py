"""Matching by email at scale: peak RSS of a job over 1M distinct emails, in a child process.

The API is a stand-in inside the child that answers every search and update at once, so what is
measured is the engine's own memory for remembering what each email resolved to (target: flat,
under 100 MB, with every email searched once).
"""

from __future__ import annotations

import subprocess
import sys
from typing import Final

from harness import progress
from results import Context, Result, Section, Table, Target, verdict

TARGET_MB: Final = 100.0
_PROBE: Final = """
import asyncio, sys, time
from bulk_updater import BulkUpdater, Reply
from bulk_updater.answers import Page


class Api:
    async def search(self, text, cursor):
        n = int(text[4 : text.index("@")])
        return Reply(200, page=Page(((f"{n:024x}", text),), None))

    async def send(self, update):
        return Reply(200)


async def main(n):
    rows = ({"email": f"user{i}@x.example", "city": "x"} for i in range(n))
    started = time.perf_counter()
    async with BulkUpdater(sender=Api(), rate=0, concurrency=64) as updater:
        summary = await updater.run(rows)
    took = time.perf_counter() - started
    peak = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:")).split()[1]
    print(summary.counts["updated"], summary.searches, took, int(peak) / 1024)


asyncio.run(main(int(sys.argv[1])))
"""


def measure(ctx: Context) -> Result:
    emails = 100_000 if ctx.quick else 1_000_000
    progress(f"emails: a job over {emails:,} distinct emails")
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(emails)], capture_output=True, text=True, check=True
    )
    updated, searches, seconds, peak = done.stdout.split()
    peak_mb, rate = float(peak), int(updated) / float(seconds)
    ok = peak_mb < TARGET_MB and int(searches) == emails == int(updated)
    table = Table.of(
        "rows|searches|updated|seconds|rows/s|peak RSS MB",
        [
            (
                f"{emails:,}",
                searches,
                updated,
                f"{float(seconds):.0f}",
                f"{rate:,.0f}",
                f"{peak_mb:.1f}",
            )
        ],
    )
    title = f"Matching by email: {emails:,} distinct emails, each searched once"
    return Result(
        sections=[Section(title, [table])],
        targets=[
            Target(
                f"{emails:,} distinct emails: peak RSS < {TARGET_MB:.0f} MB, one search each",
                f"{peak_mb:.1f} MB, {searches} searches",
                ok,
            )
        ],
        readme=[
            (
                f"a job over {emails // 1000}k distinct emails (stand-in API in process)",
                f"{int(searches):,} searches, peak RSS {peak_mb:.0f} MB, {rate:,.0f} rows/s",
                f"< {TARGET_MB:.0f} MB, one search an email",
                verdict(ok),
            )
        ],
        data={
            "emails": emails,
            "searches": int(searches),
            "seconds": float(seconds),
            "peak_mb": peak_mb,
        },
    )

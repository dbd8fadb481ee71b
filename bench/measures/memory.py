"""Peak RSS of the engine (its own VmHWM, `harness.HighWater`) at two sizes: it must stay flat."""

from __future__ import annotations

from typing import Final

from harness import CONCURRENCY, progress, run_engine
from results import Context, Result, Section, Table, Target, verdict
from servers import FastServer

TARGET_RSS_GROWTH: Final = 1.25
TARGET_RSS_MB: Final = 100.0


def measure(ctx: Context) -> Result:
    small, big = ctx.memory_sizes
    runs = {}
    with FastServer() as server:
        startup = run_engine(server, ctx.csv(1), 1, ctx.tmp)
        for rows in (small, big):
            progress(f"memory: {rows} rows")
            csv_path = ctx.csv(rows, seed=rows)
            runs[rows] = run_engine(server, csv_path, rows, ctx.tmp)
            csv_path.unlink()
    rss_small, rss_big = runs[small].maxrss_mb, runs[big].maxrss_mb
    growth = rss_big / rss_small
    table = Table.of(
        "rows|peak RSS MB|rows/s|wall s",
        [
            ("1 (start-up)", f"{startup.maxrss_mb:.1f}", "", ""),
            *[
                (f"{n:,}", f"{r.maxrss_mb:.1f}", f"{r.rate:,.0f}", f"{r.wall_s:.1f}")
                for n, r in runs.items()
            ],
        ],
    )
    section = Section(
        f"Peak RSS of the engine (VmHWM of its own process; --rate 0 --concurrency {CONCURRENCY})",
        [table, f"{big:,} / {small:,} rows: {growth:.3f}x"],
    )
    flat, lean = growth <= TARGET_RSS_GROWTH, rss_big < TARGET_RSS_MB
    return Result(
        sections=[section],
        targets=[
            Target(f"RSS {big:,} <= {TARGET_RSS_GROWTH}x RSS {small:,}", f"{growth:.3f}x", flat),
            Target(f"RSS {big:,} < {TARGET_RSS_MB:.0f} MB", f"{rss_big:.1f} MB", lean),
        ],
        readme=[
            (
                f"Peak RSS {small // 1000}k / {big // 1000}k rows",
                f"{rss_small:.0f} MB / {rss_big:.0f} MB ({growth:.2f}x)",
                f"<= {TARGET_RSS_GROWTH}x, < {TARGET_RSS_MB:.0f} MB",
                verdict(flat and lean),
            )
        ],
        data={
            "startup": startup.as_json(),
            "runs": {str(n): r.as_json() for n, r in runs.items()},
            "rss_growth": growth,
        },
    )

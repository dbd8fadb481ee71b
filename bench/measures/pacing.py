"""Rate accuracy: `--rate 50` against an endpoint that answers 429 beyond 50 per sliding second
(+ a burst of 5). No 429 may come back, and the rate achieved must be close to the one asked for.
"""

from __future__ import annotations

from typing import Final

from harness import CONCURRENCY, progress, run_engine
from results import Context, Result, Section, Table, Target, verdict
from servers import FastServer

PACE_RATE: Final = 50
PACE_BURST: Final = 5
TARGET_PACE: Final = 47.5


def measure(ctx: Context) -> Result:
    rows = ctx.pace_rows
    with FastServer("--rate", str(PACE_RATE), "--burst", str(PACE_BURST)) as server:
        progress(f"pacing: {rows} rows at --rate {PACE_RATE}")
        run = run_engine(server, ctx.csv(rows, seed=50), rows, ctx.tmp, rate=PACE_RATE)
    summary = run.summary
    data = {
        "rows": rows,
        "server_429": summary["server"]["rate_limited"],
        "summary_429": summary["rate_limited"],
        "requests": summary["requests"],
        "duration_s": summary["duration_s"],
        "achieved_rate": summary["requests"] / summary["duration_s"],
        "server_arrival_rate": summary["server"]["arrival_rate"],
        "server_max_window": summary["server"]["max_window"],
        "counts": {k: v for k, v in summary["counts"].items() if v},
    }
    table = Table.of(
        "429s (server)|429s (summary)|requests|duration s|achieved req/s|"
        "server-side arrival req/s|max arrivals in any 1 s",
        [
            (
                data["server_429"],
                data["summary_429"],
                data["requests"],
                f"{data['duration_s']:.2f}",
                f"{data['achieved_rate']:.2f}",
                f"{data['server_arrival_rate']:.2f}",
                data["server_max_window"],
            )
        ],
    )
    section = Section(
        f"Rate accuracy: --rate {PACE_RATE} --concurrency {CONCURRENCY}, {rows} rows, server "
        f"allows {PACE_RATE} per sliding second + {PACE_BURST} burst, else 429",
        [table],
    )
    no_429, fast = data["server_429"] == 0, data["achieved_rate"] >= TARGET_PACE
    return Result(
        sections=[section],
        targets=[
            Target("pacing: no 429", f"{data['server_429']}", no_429),
            Target(f"pacing: >= {TARGET_PACE} req/s", f"{data['achieved_rate']:.2f}", fast),
        ],
        readme=[
            (
                f"--rate {PACE_RATE} vs strict {PACE_RATE}/s window",
                f"{data['server_429']} x 429, {data['achieved_rate']:.1f} req/s",
                f"0 x 429, >= {TARGET_PACE}",
                verdict(no_429 and fast),
            )
        ],
        data=data,
    )

"""A million rows: the whole job against nginx, its final sort, and a resume that sends nothing.

The figures the engine must keep as it grows: 1M rows at `--rate 0` (rows/s and peak RSS), the
final sort of a 1M-line report, and `--resume` over that finished report (0 requests).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Final

from harness import CONCURRENCY, PY, _check_child, _env, progress, run_child, write_csv
from results import Context, Result, Section, Table, Target, verdict
from servers import FastServer, Nginx, NginxInstall

TARGET_MB: Final = 100.0


def _run(url: str, source: Path, report: Path, tmp: Path, *extra: str) -> tuple[dict, float]:
    summary = tmp / "scale.summary.json"
    argv = [
        PY,
        "-m",
        "bulk_updater",
        "run",
        str(source),
        "-q",
        "--base-url",
        url,
        "--rate",
        "0",
        "--concurrency",
        str(CONCURRENCY),
        "--report",
        str(report),
        "--summary-json",
        str(summary),
        *extra,
    ]
    child = run_child(argv, _env(), tmp / "scale.log", 1800)
    _check_child(child, f"bulk-updater {' '.join(extra)}", (0, 1))
    return json.loads(summary.read_text()), child.maxrss_mb


def measure(ctx: Context) -> Result:
    rows = 100_000 if ctx.quick else 1_000_000
    progress(f"scale: writing {rows:,} rows")
    source = write_csv(ctx.tmp / "scale.csv", rows, seed=11)
    report = ctx.tmp / "scale.report.csv"
    server = Nginx(ctx.nginx, ctx.tmp) if isinstance(ctx.nginx, NginxInstall) else FastServer()
    with server:
        progress(f"scale: {rows:,} rows against {server.name}")
        first, rss = _run(server.url, source, report, ctx.tmp)
        from bulk_updater.report import sort_report  # in this process: the sort alone

        started = time.perf_counter()
        sort_report(report, jsonl=False)
        sort_s = time.perf_counter() - started
        progress("scale: --resume over the finished report")
        again, resume_rss = _run(server.url, source, report, ctx.tmp, "--resume")
    rate = rows / first["duration_s"]
    lean, resumed = rss < TARGET_MB, again["requests"] == 0 and again["counts"]["skipped"] == rows
    table = Table.of(
        "step|seconds|rows/s|peak RSS MB|requests",
        [
            (
                f"{rows:,} rows, --rate 0",
                f"{first['duration_s']:.0f}",
                f"{rate:,.0f}",
                f"{rss:.0f}",
                f"{first['requests']:,}",
            ),
            ("final sort of the report", f"{sort_s:.1f}", "", "", ""),
            (
                "--resume over the finished report",
                f"{again['duration_s']:.0f}",
                "",
                f"{resume_rss:.0f}",
                f"{again['requests']:,}",
            ),
        ],
    )
    return Result(
        sections=[Section(f"{rows:,} rows against {server.name}", [table])],
        targets=[
            Target(f"{rows:,} rows: peak RSS < {TARGET_MB:.0f} MB", f"{rss:.0f} MB", lean),
            Target(
                "--resume over a finished report sends nothing", f"{again['requests']}", resumed
            ),
        ],
        readme=[
            (
                f"{rows // 1000}k rows at --rate 0 against {server.name}",
                f"{first['duration_s']:.0f} s ({rate:,.0f} rows/s), peak RSS {rss:.0f} MB",
                f"< {TARGET_MB:.0f} MB",
                verdict(lean),
            ),
            (
                f"the final sort of {rows // 1000}k lines; --resume over the finished report",
                f"{sort_s:.1f} s; {again['duration_s']:.0f} s at {resume_rss:.0f} MB, "
                f"{again['requests']} requests",
                "0 requests",
                verdict(resumed),
            ),
        ],
        data={
            "rows": rows,
            "first": first,
            "sort_s": sort_s,
            "resume": again,
            "rss_mb": rss,
            "resume_rss_mb": resume_rss,
        },
    )

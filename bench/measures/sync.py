"""Sync mode (`--skip-unchanged`): a rerun of unchanged rows against the run that sent them, peak
RSS with a million leads remembered, and the state file's size per lead.

Both runs are `--rate 0 --concurrency 64` against fast_server. The million leads are written
straight into a state file made by the engine's own `StateFile` (sending them would take an hour);
the run then reads 100,000 rows of the same export, 5% of them changed, so it looks leads up in
a file of a million and writes the changes back.
"""

from __future__ import annotations

import contextlib
import csv
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from bulk_updater.state import StateFile
from bulk_updater.state.fields import encode
from harness import BenchError, Run, progress, run_engine, write_csv
from results import Context, Result, Section, Table, Target, verdict
from servers import FastServer

TARGET_RATIO: Final = 0.5
TARGET_RSS_MB: Final = 150.0
CHANGED_EVERY: Final = 20  # 5% of the rows of the memory run are changed
SEED: Final = 11


def measure(ctx: Context) -> Result:
    rerun_rows = 5_000 if ctx.quick else 50_000
    remembered = 100_000 if ctx.quick else 1_000_000
    read_rows = 10_000 if ctx.quick else 100_000
    with FastServer() as server:
        plain, first, second, rerun_state = _rerun(server, ctx, rerun_rows)
        big_state = ctx.tmp / "million.sqlite3"
        progress(f"sync: {remembered:,} leads written into a state file")
        _populate(big_state, write_csv(ctx.tmp / "million.csv", remembered, SEED))
        big_size = _size(big_state)
        progress(f"sync: {read_rows:,} rows against {remembered:,} leads remembered")
        changed = len(range(0, read_rows, CHANGED_EVERY))
        read = run_engine(
            server,
            write_csv(ctx.tmp / "read.csv", read_rows, SEED),  # the million's first rows
            read_rows,
            ctx.tmp,
            args=("--skip-unchanged", "--state", str(big_state)),
            sent=changed,
        )
    _check_counts(read, read_rows - changed)
    figures = {
        "plain": plain.as_json(),
        "first": first.as_json(),
        "rerun": second.as_json(),
        "read": read.as_json(),
        "ratio": second.duration_s / first.duration_s,
        "first_over_plain": first.duration_s / plain.duration_s,
        "bytes_per_lead": rerun_state / rerun_rows,
        "bytes_per_lead_remembered": big_size / remembered,
        "sizes": (rerun_rows, remembered, read_rows, changed),
    }
    section = Section(
        "Sync mode: --skip-unchanged --state, --rate 0 --concurrency 64 against fast_server",
        _body([("plain", plain), ("first", first), ("rerun", second), ("read", read)], figures),
    )
    fast, lean = figures["ratio"] <= TARGET_RATIO, read.maxrss_mb < TARGET_RSS_MB
    return Result(
        sections=[section],
        targets=[
            Target(
                f"rerun of {rerun_rows:,} unchanged <= {TARGET_RATIO}x the first run",
                f"{figures['ratio']:.3f}x",
                fast,
            ),
            Target(
                f"peak RSS with {remembered:,} leads remembered < {TARGET_RSS_MB:.0f} MB",
                f"{read.maxrss_mb:.1f} MB",
                lean,
            ),
        ],
        readme=_readme(figures, first, second, read, fast, lean),
        data={k: v for k, v in figures.items() if k != "sizes"},
    )


def _body(runs: list[tuple[str, Run]], figures: dict[str, Any]) -> list[str | Table]:
    rerun_rows, remembered, read_rows, changed = figures["sizes"]
    sizes = [
        ("written by the first run", rerun_rows, figures["bytes_per_lead"]),
        ("written directly", remembered, figures["bytes_per_lead_remembered"]),
    ]
    return [
        Table.of(
            "run|rows|sent|unchanged|duration s|rows/s|wall s|CPU s|peak RSS MB",
            [_row(label, run) for label, run in runs],
        ),
        f"plain = without --skip-unchanged; first = a fresh state, every row sent; rerun = the "
        f"same {rerun_rows:,} rows, all unchanged; read = {read_rows:,} rows against "
        f"{remembered:,} leads remembered, {changed:,} changed",
        f"rerun / first (summary duration): {figures['ratio']:.3f}x; first / plain: "
        f"{figures['first_over_plain']:.3f}x",
        Table.of(
            "state file|leads|bytes|bytes per lead",
            [(what, f"{n:,}", f"{n * per:,.0f}", f"{per:.0f}") for what, n, per in sizes],
        ),
    ]


def _readme(
    figures: dict[str, Any], first: Run, second: Run, read: Run, fast: bool, lean: bool
) -> list[tuple[str, str, str, str]]:
    rerun_rows, remembered, read_rows, _ = figures["sizes"]
    return [
        (
            f"rerun of {rerun_rows // 1000}k unchanged rows / the run that sent them",
            f"{second.duration_s:.2f} s / {first.duration_s:.2f} s = **{figures['ratio']:.2f}x**",
            f"<= {TARGET_RATIO}x",
            verdict(fast),
        ),
        (
            f"peak RSS, {read_rows // 1000}k rows against {remembered:,} leads remembered",
            f"{read.maxrss_mb:.0f} MB",
            f"< {TARGET_RSS_MB:.0f} MB",
            verdict(lean),
        ),
        (
            "state file per lead",
            f"{figures['bytes_per_lead']:.0f} bytes ({rerun_rows:,} leads), "
            f"{figures['bytes_per_lead_remembered']:.0f} bytes ({remembered:,})",
            "printed",
            "",
        ),
    ]


def _rerun(server: FastServer, ctx: Context, rows: int) -> tuple[Run, Run, Run, int]:
    state = ctx.tmp / "rerun.sqlite3"
    source = ctx.csv(rows, seed=SEED + 1)
    options = ("--skip-unchanged", "--state", str(state))
    progress(f"sync: {rows:,} rows, without --skip-unchanged")
    plain = run_engine(server, source, rows, ctx.tmp)
    progress(f"sync: {rows:,} rows, first run")
    first = run_engine(server, source, rows, ctx.tmp, args=options)
    size = _size(state)
    progress(f"sync: {rows:,} rows, rerun")
    second = run_engine(server, source, rows, ctx.tmp, args=options, sent=0)
    _check_counts(second, rows)
    return plain, first, second, size


def _check_counts(run: Run, unchanged: int) -> None:
    if run.summary["counts"]["unchanged"] != unchanged:
        raise BenchError(f"expected {unchanged} rows unchanged: {run.summary['counts']}")


def _row(label: str, run: Run) -> tuple[str, ...]:
    counts = run.summary["counts"]
    return (
        label,
        f"{run.rows:,}",
        f"{run.summary['requests']:,}",
        f"{counts['unchanged']:,}",
        f"{run.duration_s:.2f}",
        f"{run.rate:,.0f}",
        f"{run.wall_s:.2f}",
        f"{run.cpu_s:.2f}",
        f"{run.maxrss_mb:.1f}",
    )


def _populate(state: Path, csv_path: Path) -> None:
    """Every lead of the export as a run that sent it would remember it, 5% with an old title."""
    StateFile(state).close()  # the schema, as the engine makes it
    with contextlib.closing(sqlite3.connect(state)) as db, open(csv_path, newline="") as file:
        db.executemany("INSERT OR REPLACE INTO leads VALUES (?, ?)", _leads(csv.reader(file)))
        db.commit()
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    csv_path.unlink()


def _leads(records: Iterator[list[str]]) -> Iterator[tuple[str, bytes]]:
    header = next(records)
    for n, cells in enumerate(records):
        record = dict(zip(header, cells, strict=True))
        fields: dict[str, object] = {
            name: record[name] for name in ("firstName", "jobTitle", "companyName") if record[name]
        }
        if record["tags"]:
            fields["tags"] = record["tags"].split(";")
        fields["customFields.revenue"] = record["customFields.revenue"]
        if n % CHANGED_EVERY == 0:
            fields["jobTitle"] = "Old title"
        yield record["id"], encode(fields)


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists())

"""Reading an `.xlsx` of 100k rows: rows per second and peak RSS, in a child process.

The workbook is written with openpyxl's write-only mode, then given the `<dimension>` Excel
itself writes (without it openpyxl parses the whole sheet once before the first row, which no
real export would make it do).
"""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Final

from harness import progress
from results import Context, Result, Section, Table, Target, verdict

TARGET_RSS_MB: Final = 100.0
_PROBE: Final = """
import sys, time
from bulk_updater import Source
started = time.perf_counter()
rows = sum(1 for _ in Source(sys.argv[1], ignore_unknown_columns=True))
elapsed = time.perf_counter() - started
peak = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:")).split()[1]
print(rows, elapsed, int(peak) / 1024)
"""


def write_workbook(path: Path, rows: int) -> Path:
    import datetime as dt

    import openpyxl

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("Leads")
    sheet.append(
        ["ID", "Email", "First Name", "Phone Number", "Score", "Signed Up", "VIP", "Owner"]
    )
    for n in range(rows):
        sheet.append(
            [
                f"{n:024x}",
                f"lead{n}@example.com",
                f"First{n}",
                4155550000 + n,
                n / 7,
                dt.date(2025, 1 + n % 12, 1 + n % 28),
                n % 2 == 0,
                "Ann",
            ]
        )
    raw = path.with_suffix(".raw.xlsx")
    book.save(raw)
    with zipfile.ZipFile(raw) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename.startswith("xl/worksheets/sheet"):
                dimension = f'<dimension ref="A1:H{rows + 1}"/>'.encode()
                data = re.sub(
                    rb"(<sheetViews|<sheetFormatPr|<cols|<sheetData)",
                    dimension + rb"\1",
                    data,
                    count=1,
                )
            dst.writestr(item, data)
    raw.unlink()
    return path


def measure(ctx: Context) -> Result:
    rows = 10_000 if ctx.quick else 100_000
    progress(f"xlsx: writing {rows:,} rows")
    path = write_workbook(ctx.tmp / "export.xlsx", rows)
    progress("xlsx: reading")
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(path)], capture_output=True, text=True, check=True
    )
    read, seconds, peak = done.stdout.split()
    rate, peak_mb = int(read) / float(seconds), float(peak)
    lean = peak_mb < TARGET_RSS_MB
    table = Table.of(
        "rows|seconds|rows/s|peak RSS MB",
        [(f"{int(read):,}", f"{float(seconds):.1f}", f"{rate:,.0f}", f"{peak_mb:.1f}")],
    )
    return Result(
        sections=[
            Section(
                f"Reading a {rows:,}-row .xlsx (openpyxl, read-only, streaming)",
                [table, f"file size {path.stat().st_size / 1e6:.1f} MB"],
            )
        ],
        targets=[
            Target(
                f".xlsx of {rows:,} rows: peak RSS < {TARGET_RSS_MB:.0f} MB",
                f"{peak_mb:.1f} MB",
                lean,
            )
        ],
        readme=[
            (
                f"reading a {rows // 1000}k-row .xlsx (all rows converted)",
                f"{rate:,.0f} rows/s, peak RSS {peak_mb:.0f} MB",
                f"< {TARGET_RSS_MB:.0f} MB",
                verdict(lean),
            )
        ],
        data={"rows": int(read), "seconds": float(seconds), "rows_per_s": rate, "peak_mb": peak_mb},
    )

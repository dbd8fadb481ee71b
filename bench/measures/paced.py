"""The figure users meet: the CPU of a job at `--rate 100` against the sandbox answering in
50 ms, as a share of one core (SendKit allows tens of requests a second per key), start-up
excluded; and the same for `bench/bare_loop.py --rate 100`, what aiohttp alone costs there.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Final

from harness import BENCH, CONCURRENCY, PY, BenchError, _env, _options, progress, run_child
from results import Context, Result, Section, Table, Target, verdict
from sandboxes import SandboxProcess, write_leads

PACED_RATE: Final = 100  # requests/s: above what SendKit allows a key
PACED_LATENCY_MS: Final = 50
PACED_ROWS: Final = 2_000  # 20 s at the rate
TARGET_PACED_CORE: Final = 0.05  # of one core, start-up excluded


def measure(ctx: Context) -> Result:
    """CPU of the engine at `--rate 100` against the sandbox with 50 ms answers, and of the bare
    aiohttp loop at the same rate against the same sandbox: the floor, aiohttp's own cost."""
    rows = max(300, PACED_ROWS // 10) if ctx.quick else PACED_ROWS
    csv_path, one_row = ctx.csv(rows, seed=5), ctx.csv(1, seed=5)
    latency = ["--latency-ms", str(PACED_LATENCY_MS), "--rate", str(PACED_RATE * 10)]
    with SandboxProcess(write_leads(csv_path), *latency) as sandbox:
        progress(f"paced: {rows} rows at --rate {PACED_RATE}, {PACED_LATENCY_MS} ms answers")
        startup, _ = _paced_run(sandbox.url, one_row, ctx, rate=PACED_RATE)
        job, summary = _paced_run(sandbox.url, csv_path, ctx, rate=PACED_RATE)
        bare_startup, _ = _paced_bare(sandbox.url, one_row, ctx)
        bare, bare_result = _paced_bare(sandbox.url, csv_path, ctx)
    if summary["counts"]["updated"] != rows:
        raise BenchError(f"paced: expected {rows} rows updated: {summary['counts']}")
    duration = summary["duration_s"]
    share = (job.cpu_s - startup.cpu_s) / duration
    bare_duration = bare_result["duration_s"]
    bare_share = (bare.cpu_s - bare_startup.cpu_s) / bare_duration
    ok = share <= TARGET_PACED_CORE
    what = f"--rate {PACED_RATE}, {rows:,} rows, sandbox answering in {PACED_LATENCY_MS} ms"

    def line(client: str, child: Any, base: Any, seconds: float, part: float) -> tuple[str, ...]:
        return (client, f"{rows:,}", f"{seconds:.1f}", f"{rows / seconds:.1f}",
                f"{child.cpu_s:.2f}", f"{base.cpu_s:.2f}", f"{part:.1%}",
                f"{(child.cpu_s - base.cpu_s) / rows * 1e6:.0f}")  # fmt: skip

    table = Table.of(
        "client|rows|duration s|achieved rows/s|CPU s (job)|CPU s (1-row start-up)|"
        "share of one core|CPU µs per row",
        [line("engine", job, startup, duration, share),
         line("bare aiohttp loop", bare, bare_startup, bare_duration, bare_share)],
    )  # fmt: skip
    note = (
        "bare aiohttp loop = bench/bare_loop.py --rate --uvloop: one PATCH per start, no "
        "reading, validating or report: what aiohttp alone costs at this rate on the engine's "
        "loop, the floor under the engine"
    )
    name = f"CPU at --rate {PACED_RATE} <= {TARGET_PACED_CORE:.0%} of a core"
    wanted = f"<= {TARGET_PACED_CORE:.0%}"
    data = {"rows": rows, "duration_s": duration, "cpu_s": job.cpu_s}
    bare_data = {"bare_cpu_s": bare.cpu_s, "bare_startup_cpu_s": bare_startup.cpu_s,
                 "bare_duration_s": bare_duration, "bare_core_share": bare_share}  # fmt: skip
    readme = f"**{share:.1%}** of a core (the bare aiohttp loop: {bare_share:.1%})"
    return Result(
        sections=[Section(f"CPU of a paced job: {what}", [table, note])],
        targets=[Target(name, f"{share:.1%}", ok)],
        readme=[(f"CPU of the engine, {what}", readme, wanted, verdict(ok))],
        data=data | {"startup_cpu_s": startup.cpu_s, "core_share": share} | bare_data,
    )


def _paced_run(url: str, csv_path: Path, ctx: Context, rate: float) -> tuple[Any, dict[str, Any]]:
    """One `bulk-updater run` child: (its `Child`, its summary)."""
    tag = f"paced-{time.monotonic_ns()}"
    summary_path = ctx.tmp / f"{tag}.summary.json"
    argv = [PY, "-m", "bulk_updater", "run", str(csv_path), "-q"]
    argv += _options(base_url=url, rate=rate, report=ctx.tmp / f"{tag}.report.csv",
                     summary_json=summary_path)  # fmt: skip
    child = run_child(argv, _env(), ctx.tmp / f"{tag}.log", timeout=600)
    if child.returncode != 0:
        raise BenchError(f"paced: bulk-updater exited {child.returncode}: {child.log[-2000:]}")
    return child, json.loads(summary_path.read_text())


def _paced_bare(url: str, csv_path: Path, ctx: Context) -> tuple[Any, dict[str, Any]]:
    """One `bench/bare_loop.py --rate` child at the paced rate: (its `Child`, its result)."""
    tag = f"paced-bare-{time.monotonic_ns()}"
    out = ctx.tmp / f"{tag}.json"
    argv = [PY, str(BENCH / "bare_loop.py"), str(csv_path)]
    argv += _options(base_url=url, concurrency=CONCURRENCY, rate=PACED_RATE, out=out)
    argv.append("--uvloop")  # the engine's loop: what is left is aiohttp's own cost
    child = run_child(argv, _env(), ctx.tmp / f"{tag}.log", timeout=600)
    if child.returncode != 0:
        raise BenchError(f"paced: bare_loop exited {child.returncode}: {child.log[-2000:]}")
    return child, json.loads(out.read_text())

"""`make bench`: how fast, how lean and how well paced bulk-updater is, in one report.

    python bench/bench.py [--rows 20000] [--rounds 5] [--quick] [--only NAME,...]

Every client runs in a child process against a server in a process of its own on a free loopback
port: `bench/fast_server.py`, a minimal endpoint that checks the requests, and nginx when it is
installed (`tools/ensure-nginx`). The measures are listed in `measures/__init__.py`; `--only`
runs some of them (and the ones they read from). The layout:

    bench.py       this entry point: arguments, which measures, in which order
    harness.py     child processes, CPU and RSS from wait4(), CSV inputs, engine and bare-loop runs
    servers.py     fast_server and nginx as children (nginx's config, start, checks, counters)
    results.py     what a measure is given and hands back (tables, targets, data)
    report.py      the printed report, the README Markdown, bench/out/results.json
    measures/      one module per measure, and the registry

Prints tables and PASS/FAIL per target, writes bench/out/results.json and a Markdown table for the
README. Exits 0 whatever the verdicts; 1 when a measure could not run.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import sys
import tempfile
import time
from pathlib import Path

from harness import BenchError, progress, stop_all
from measures import MEASURES, Measure
from report import machine, render
from results import Context, Result, Section, Target
from servers import find_nginx


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    names = ", ".join(m.name for m in MEASURES)
    parser = argparse.ArgumentParser(description="bulk-updater benchmarks")
    parser.add_argument("--rows", type=int, default=20_000, help="rows per throughput run")
    parser.add_argument("--rounds", type=int, default=5, help="throughput rounds (>= 3)")
    parser.add_argument("--quick", action="store_true", help="small sizes, to try the script")
    parser.add_argument("--only", metavar="NAME,...", help=f"run only these measures: {names}")
    parser.add_argument("--nginx-workers", type=int, default=1, help="nginx worker_processes")
    args = parser.parse_args(argv)
    try:
        args.plan = plan(args.only.split(",") if args.only else [m.name for m in MEASURES])
    except KeyError as exc:
        parser.error(f"no measure {exc.args[0]!r}; there are: {names}")
    return args


def plan(names: list[str]) -> list[Measure]:
    """The measures to run, in the order to run them: each after the ones it needs."""
    by_name = {m.name: m for m in MEASURES}
    order: list[Measure] = []

    def add(name: str) -> None:
        measure = by_name[name.strip()]
        for need in measure.needs:
            add(need)
        if measure not in order:
            order.append(measure)

    for name in names:
        add(name)
    return order


def _context(args: argparse.Namespace, tmp: Path) -> Context:
    quick = args.quick
    return Context(
        tmp=tmp,
        quick=quick,
        rows=2_000 if quick else args.rows,
        rounds=1 if quick else max(3, args.rounds),
        memory_sizes=(1_000, 10_000) if quick else (10_000, 100_000),
        pace_rows=100 if quick else 500,
        probe_s=1.0 if quick else 2.0,
        limiter_s=1.5 if quick else 3.0,
        host=machine(),  # before the runs: the load average says whether the machine is idle
        nginx=find_nginx(),
        nginx_workers=args.nginx_workers,
    )


def run(ctx: Context, order: list[Measure]) -> bool:
    """Run `order` into `ctx.results`; False when a measure could not run (its needers skip)."""
    ok = True
    for measure in order:
        missing = [n for n in measure.needs if "error" in ctx.results[n].data]
        try:
            if missing:
                raise BenchError(f"skipped: {', '.join(missing)} could not run")
            ctx.results[measure.name] = measure.run(ctx)
        except BenchError as exc:
            print(f"bench: error: {measure.name}: {exc}", file=sys.stderr)
            ctx.results[measure.name] = _failed(measure.name, str(exc))
            ok = False
    return ok


def _failed(name: str, error: str) -> Result:
    first = error.splitlines()[0] if error else "error"
    return Result(
        sections=[Section(f"{name}: DID NOT RUN", [first])],
        targets=[Target(f"{name} ran", first, False)],
        data={"error": error},
    )


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    # Every endpoint is on loopback: reached directly by every child, whatever proxy the
    # machine sets (where both spellings are set, the lowercase one is read).
    for name in ("NO_PROXY", "no_proxy"):
        os.environ[name] = ",".join(filter(None, (os.environ.get(name, ""), "127.0.0.1,localhost")))

    def on_term(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    started = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with tempfile.TemporaryDirectory(prefix="bulk-updater-bench-") as tmp:
        ctx = _context(args, Path(tmp))
        try:
            ok = run(ctx, args.plan)
        finally:
            stop_all()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    progress("done")
    summary = {
        "elapsed_s": round(time.perf_counter() - started, 1),
        "children_cpu_s": round(
            after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 2
        ),
    }
    ran = {m.name: ctx.results[m.name] for m in MEASURES if m.name in ctx.results}
    render(ctx.host, ctx.nginx, ran, summary, quick=ctx.quick)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

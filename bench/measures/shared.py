"""The rate budget shared through Redis: several `bulk-updater run` processes on one account
against the sandbox's strict window, and what a slot from Redis costs next to the local pacer.

- 3 processes, each `--rate 60 --redis URL`, against `--rate 60 --burst 5`: no 429, and at least
  50 requests/s together.
- 10 processes, the same: never more than 60 starts in any second, both as Redis records the
  starts (the limiter's promise) and as the sandbox sees the requests arrive.
- The cost of a slot: in process, `RedisLimiter` on loopback against `Pacer`, at a rate so
  high that no caller waits (one task in a loop: the latency; 64 tasks: the throughput; CPU per
  slot), then the engine itself against fast_server with and without `--redis`.

It needs redis-server (`tools/ensure-redis`, run by `make bench`) and the redis package (the dev
extra); without them it says so and measures nothing.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path
from typing import Any, Final

from budget import RedisChild, SandboxChild, StartLog, find_redis
from harness import (
    CHILD_TIMEOUT,
    CONCURRENCY,
    KEY,
    PY,
    ROOT,
    _env,
    loop_factory,
    progress,
    run_engine,
    stop,
    track,
)
from measures.limiters import max_in_window
from results import Context, Result, Section, Table, Target, verdict
from servers import FastServer

RATE: Final = 60
BURST: Final = 5
TARGET_TOGETHER: Final = 50.0
NAMES: Final = ("shared: 3 processes: no 429", "shared: 3 processes: >= 50 req/s together",
                "shared: 10 processes: <= 60 starts in any 1 s (Redis)",
                "shared: 10 processes: <= 60 arrivals in any 1 s (sandbox)")  # fmt: skip


def measure(ctx: Context) -> Result:
    title = f"Shared budget: N processes x --rate {RATE} --redis, sandbox {RATE}/s + {BURST} burst"
    binary = find_redis()
    try:
        import redis  # noqa: F401
    except ImportError:
        return Result.not_measured(title, list(NAMES), "the redis package is not installed")
    if binary is None:
        return Result.not_measured(
            title, list(NAMES), "redis-server is missing (tools/ensure-redis)"
        )
    with RedisChild(binary, ctx.tmp) as server:
        three = _processes(ctx, server, 3, 60 if ctx.quick else 300)
        ten = _processes(ctx, server, 10, 15 if ctx.quick else 60)
        costs = _slot_costs(ctx, server)
        engine = _engine_costs(ctx, server)
    return _result(title, three, ten, costs, engine)


# --- several processes ------------------------------------------------------------------------


def _processes(ctx: Context, server: RedisChild, count: int, rows: int) -> dict[str, Any]:
    """`count` CLI processes of `rows` rows each, started together, on one account."""
    from bulk_updater.account import account_name
    from bulk_updater.limits.redis_budget import budget_keys

    progress(f"shared budget: {count} processes x {rows} rows at --rate {RATE} --redis")
    work = ctx.tmp / f"shared-{count}"
    work.mkdir()
    inputs = [ctx.csv(rows, seed=1000 * count + n) for n in range(count)]
    leads = work / "leads.json"
    leads.write_text(json.dumps([{"_id": i, "email": f"{i}@x.io"} for i in _ids(inputs)]))
    with SandboxChild(leads, RATE, BURST, KEY, work / "seen.json") as sandbox:
        keys = budget_keys(account_name(sandbox.url, None, KEY))
        with StartLog(server.url, keys) as starts:
            summaries = _run_together(inputs, sandbox.url, server.url, work)
        seen = sandbox.seen()
    arrivals = sorted(seen["arrivals"])
    span = arrivals[-1] - arrivals[0]
    return {
        "processes": count,
        "rows_each": rows,
        "requests": seen["requests"],
        "server_429": seen["rate_limited"],
        "summary_429": sum(s["rate_limited"] for s in summaries),
        "together_rate": (len(arrivals) - 1) / span if span else 0.0,
        "max_arrivals_1s": max_in_window(arrivals),
        "starts_recorded": len(starts.times),
        "max_starts_1s": max_in_window(sorted(starts.times)),
        "exit_codes": sorted({s["exit_code"] for s in summaries}),
        "sandbox_realtime": bool(seen.get("realtime")),
    }


def _ids(inputs: list[Path]) -> list[str]:
    return [line.split(",", 1)[0] for path in inputs for line in path.read_text().splitlines()[1:]]


def _run_together(inputs: list[Path], url: str, redis_url: str, work: Path) -> list[dict[str, Any]]:
    procs = []
    for n, csv_path in enumerate(inputs):
        argv = [PY, "-m", "bulk_updater", "run", str(csv_path), "-q", "--base-url", url,
                "--rate", str(RATE), "--redis", redis_url, "--concurrency", "8",
                "--report", str(work / f"{n}.report.csv"),
                "--summary-json", str(work / f"{n}.summary.json")]  # fmt: skip
        log = open(work / f"{n}.log", "wb")  # noqa: SIM115 - closed below
        procs.append(
            (track(subprocess.Popen(argv, env=_env(), stdout=log, stderr=log, cwd=ROOT)), log)
        )
    deadline = time.monotonic() + CHILD_TIMEOUT
    for proc, log in procs:
        try:
            proc.wait(max(1.0, deadline - time.monotonic()))
        finally:
            stop(proc)
            log.close()
    return [json.loads((work / f"{n}.summary.json").read_text()) for n in range(len(inputs))]


# --- the cost of a slot -----------------------------------------------------------------------


def _slot_costs(ctx: Context, server: RedisChild) -> list[dict[str, Any]]:
    from bulk_updater.limits import Pacer
    from bulk_updater.limits.shared import RedisLimiter

    progress("shared budget: the cost of a slot, in process")
    high = 1e9  # no caller ever waits: what is measured is the cost of asking
    scale = 1 if ctx.quick else 4

    async def both() -> list[dict[str, Any]]:
        local = await _cost("Pacer (local)", Pacer(high), 20_000 * scale, server)
        shared = RedisLimiter(
            server.url, rate=high, account=f"bench-{time.time_ns()}", connections=CONCURRENCY
        )
        return [local, await _cost("RedisLimiter (loopback)", shared, 2_000 * scale, server)]

    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(both())


async def _cost(name: str, limiter: Any, slots: int, server: RedisChild) -> dict[str, Any]:
    """One caller after the other (the latency), then 64 callers (throughput, CPU per slot)."""
    await limiter.open()
    limiter.begin()
    loop = asyncio.get_running_loop()
    started = loop.time()
    for _ in range(slots):
        await limiter.acquire()
    latency = (loop.time() - started) / slots

    async def caller(count: int) -> None:
        for _ in range(count):
            await limiter.acquire()

    cpu, redis_cpu, wall = time.process_time(), server.cpu(), loop.time()
    await asyncio.gather(*(caller(slots // CONCURRENCY) for _ in range(CONCURRENCY)))
    wall = loop.time() - wall
    cpu, redis_cpu = time.process_time() - cpu, server.cpu() - redis_cpu
    await limiter.close()
    done = slots // CONCURRENCY * CONCURRENCY
    return {
        "limiter": name,
        "latency_us": latency * 1e6,
        "slots_per_s": done / wall,
        "cpu_us_per_slot": cpu / done * 1e6,
        "redis_cpu_us_per_slot": redis_cpu / done * 1e6 if "Redis" in name else 0.0,
    }


def _engine_costs(ctx: Context, server: RedisChild) -> list[dict[str, Any]]:
    rows = 1_000 if ctx.quick else 5_000
    csv_path = ctx.csv(rows, seed=4242)
    runs = []
    with FastServer() as fast:
        for label, extra in (("local pacer", ()), ("--redis", ("--redis", server.url))):
            progress(f"shared budget: the engine, {rows} rows at --rate 100000, {label}")
            run = run_engine(fast, csv_path, rows, ctx.tmp, rate=100_000, args=tuple(extra))
            runs.append({"limiter": label, "rows_per_s": run.rate,
                         "cpu_us_per_row": run.cpu_s / rows * 1e6})  # fmt: skip
    return runs


# --- the result -------------------------------------------------------------------------------


def _result(
    title: str, three: dict[str, Any], ten: dict[str, Any], costs: list[Any], engine: list[Any]
) -> Result:
    table = Table.of(
        "processes|rows each|requests|429s (sandbox)|429s (summaries)|req/s together|"
        "max starts in 1 s (Redis)|max arrivals in 1 s (sandbox)",
        [(r["processes"], r["rows_each"], r["requests"], r["server_429"], r["summary_429"],
          f"{r['together_rate']:.1f}", r["max_starts_1s"], r["max_arrivals_1s"])
         for r in (three, ten)],
    )  # fmt: skip
    slots = Table.of(
        "limiter|one caller: us per slot|64 callers: slots/s|CPU us per slot (client)|"
        "CPU us per slot (redis-server)",
        [(c["limiter"], f"{c['latency_us']:.1f}", f"{c['slots_per_s']:,.0f}",
          f"{c['cpu_us_per_slot']:.1f}", f"{c['redis_cpu_us_per_slot']:.1f}") for c in costs],
    )  # fmt: skip
    local, shared = engine
    overhead = shared["cpu_us_per_row"] - local["cpu_us_per_row"]
    rows = Table.of(
        "engine (fast_server, --rate 100000)|rows/s|CPU us per row",
        [(e["limiter"], f"{e['rows_per_s']:,.0f}", f"{e['cpu_us_per_row']:.0f}") for e in engine],
    )
    no_429 = three["server_429"] == 0 and three["summary_429"] == 0
    fast = three["together_rate"] >= TARGET_TOGETHER
    starts_ok, arrivals_ok = ten["max_starts_1s"] <= RATE, ten["max_arrivals_1s"] <= RATE
    targets = [
        Target(NAMES[0], f"{three['server_429']}", no_429),
        Target(NAMES[1], f"{three['together_rate']:.1f}", fast),
        Target(NAMES[2], f"{ten['max_starts_1s']}", starts_ok),
        Target(NAMES[3], f"{ten['max_arrivals_1s']}", arrivals_ok),
    ]
    priority = (
        "the sandbox ran at a real-time priority, ahead of the clients (bench/budget.py says why)"
        if ten["sandbox_realtime"]
        else "the sandbox could not be given a real-time priority: its arrival times include "
        "its own waits for a core"
    )
    notes = [
        f"per-request overhead of the shared budget in the engine: {overhead:+.0f} us of CPU per "
        f"row ({local['rows_per_s']:,.0f} -> {shared['rows_per_s']:,.0f} rows/s on loopback)",
    ]
    readme = [
        (f"3 x `--rate {RATE} --redis` vs {RATE}/s + {BURST}",
         f"{three['server_429']} x 429, {three['together_rate']:.1f} req/s together",
         f"0 x 429, >= {TARGET_TOGETHER:.0f}", verdict(no_429 and fast)),
        (f"10 x `--rate {RATE} --redis`",
         f"at most {ten['max_starts_1s']} starts (Redis) / {ten['max_arrivals_1s']} arrivals "
         "(sandbox) in any second", f"<= {RATE}", verdict(starts_ok and arrivals_ok)),
        ("a slot from Redis vs the local pacer",
         f"{costs[1]['latency_us']:.0f} vs {costs[0]['latency_us']:.1f} us; {overhead:+.0f} us "
         "CPU per row in the engine", "", ""),
    ]  # fmt: skip
    return Result(
        sections=[
            Section(title, [table, priority]),
            Section("The cost of a slot", [slots, rows, *notes]),
        ],
        targets=targets,
        readme=readme,
        data={"three": three, "ten": ten, "slots": costs, "engine": engine},
    )

"""Finding an API's real limit: bulk-updater against the sandbox run as a process of its own.

- `hidden_limit`: the matrix of issue 25, a hidden 40/s limit of every shape the sandbox has
  (sliding and fixed seconds, a token bucket, a window with a bucket on top, `Retry-After` in
  whole seconds, as a date or absent, a limit that halves mid-job and comes back), 40 ms
  answers, 2,000 rows, `--concurrency 32`, at `--rate 400` and `--rate auto`: each line within
  1.2x the ideal time, at most 3% of the rows answered 429, settled within 5% under 40/s; with
  `--headers xrl`, at most one 429 (three where the limit halves). One line per case,
  PASS/FAIL each.
- `slow_api`: 400 ms answers and no limit, `--rate 50` with the default concurrency: 47.5/s.
- `faults`: the test suite's faults job (10% faults, 1,000 rows, `--rate 400`, short timeouts
  and backoffs: `bench/faults_child.py`) against 150/s, with rate-limit headers on every answer
  as SendKit reportedly sends them: within 1.3x of rows / 150 from the first request to the last
  (the sandbox's own arrival times). The same without headers, and told the exact limit, are
  shown beside it, not held to a target. Second line held to 1.3x: the command with the
  default backoff, `--timeout 1.5`, and 5% 503s, 2% 500s, 2% resets, 1% answers after 4 s
  (issue 25): its tail is a timeout and a retry, not a backoff.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from harness import BENCH, PY, BenchError, _env, _options, progress, run_child
from results import Context, Result, Section, Table, Target, verdict
from sandboxes import SandboxProcess, write_leads

LIMIT: Final = 40
LATENCY_MS: Final = 40
HIDDEN_ROWS: Final = 2_000
TARGET_TIME: Final = 1.2  # x the ideal time
TARGET_SETTLED: Final = 0.95  # x LIMIT: settled within 5% under it
TARGET_429_SHARE: Final = 0.03
TARGET_429_HEADERS: Final = 1
SLOW_MS: Final = 400
SLOW_RATE: Final = 50
TARGET_SLOW: Final = 47.5
FAULTS_LIMIT: Final = 150
FAULTS_ROWS: Final = 1_000
TARGET_FAULTS: Final = 1.3
#: The command's faults job (issue 25): 10% faults, of which 1 in 10 answers after 4 s.
SLOW_FAULTS: Final = ("--faults", "503,503,503,503,503,500,500,drop,drop,slow")
SLOW_FAULTS_OPTIONS: Final = {"rate": 400, "concurrency": 32, "timeout": 1.5, "max_attempts": 10}
CHILD_TIMEOUT: Final = 600.0


def run_cli(url: str, csv_path: Path, tmp: Path, **options: object) -> dict[str, Any]:
    """`bulk-updater run` on `csv_path` against `url`; its `--summary-json`, with wall time."""
    tag = f"adaptive-{time.monotonic_ns()}"
    report, summary = tmp / f"{tag}.report.csv", tmp / f"{tag}.summary.json"
    argv = [PY, "-m", "bulk_updater", "run", str(csv_path), "-q"]
    argv += _options(base_url=url, report=report, summary_json=summary, **options)
    child = run_child(argv, _env(), tmp / f"{tag}.log", CHILD_TIMEOUT)
    if child.returncode not in (0, 1):
        raise BenchError(f"bulk-updater exited {child.returncode}: {child.log[-2000:]}")
    data: dict[str, Any] = json.loads(summary.read_text())
    return data | {"wall_s": child.wall_s}


def _job(ctx: Context, rows: int, sandbox: list[str], **options: object) -> dict[str, Any]:
    csv_path = ctx.csv(rows, seed=40)
    with SandboxProcess(write_leads(csv_path), *sandbox) as server:
        summary = run_cli(server.url, csv_path, ctx.tmp, **options)
        stats = server.stats()
    if summary["counts"]["updated"] != rows:
        raise BenchError(f"expected {rows} rows updated: {summary['counts']}")
    return summary | {"server": stats}


def _rows(ctx: Context, rows: int) -> int:
    return max(200, rows // 10) if ctx.quick else rows


@dataclass(frozen=True)
class Shape:
    """One server of the matrix: a limit of `LIMIT` a second, shaped by `args` (sandbox
    options); `halving`: it drops to half for the middle of the job (`HALVE`, in seconds at
    2,000 rows, scaled with the rows)."""

    name: str
    args: tuple[str, ...]
    halving: bool = False


#: The servers of the matrix: the shapes real APIs have (issue 25).
SHAPES: Final = (
    Shape("sliding second, +5 burst", ("--burst", "5")),
    Shape("sliding second, no burst", ()),
    Shape("fixed second", ("--shape", "fixed")),
    Shape("token bucket of 5", ("--shape", "bucket", "--burst", "5")),
    Shape("window + bucket of 5", ("--shape", "window+bucket", "--burst", "5")),
    Shape("window + bucket, Retry-After date", ("--shape", "window+bucket", "--burst", "5",
                                                "--retry-after", "date")),
    Shape("sliding second, no Retry-After", ("--retry-after", "none")),
    Shape("halves at 15 s, back at 35 s", (), halving=True),
)  # fmt: skip
#: The shapes also run with `X-RateLimit-*` headers: at most one 429 even with no burst.
WITH_HEADERS: Final = ("sliding second, no burst", "window + bucket of 5", "token bucket of 5")
#: When the limit halves and comes back, at 2,000 rows.
HALVE: Final = (15.0, 35.0)


def _ideal(rows: int, halving: tuple[float, float] | None) -> float:
    """Seconds the job takes at exactly the limit in force (half of it while halved)."""
    if halving is None:
        return rows / LIMIT
    down, up = halving
    if rows <= down * LIMIT:
        return rows / LIMIT
    if rows <= down * LIMIT + (up - down) * LIMIT / 2:
        return down + (rows - down * LIMIT) / (LIMIT / 2)
    return up + (rows - down * LIMIT - (up - down) * LIMIT / 2) / LIMIT


def _case(
    ctx: Context, rows: int, shape: Shape, rate: str, headers: bool
) -> tuple[tuple[Any, ...], list[Target], tuple[str, str, str, str], dict[str, Any]]:
    """One line of the matrix: the job against `shape` at `--rate rate`, held to its targets."""
    halving = tuple(t * rows / HIDDEN_ROWS for t in HALVE) if shape.halving else None
    sandbox = ["--rate", str(LIMIT), "--latency-ms", str(LATENCY_MS), *shape.args]
    if halving is not None:
        sandbox += ["--halve-after", f"{halving[0]:g}", "--restore-after", f"{halving[1]:g}"]
    sandbox += ["--headers", "xrl"] if headers else []
    name = f"{shape.name}{', X-RateLimit-*' if headers else ''}, --rate {rate}"
    progress(f"hidden limit: {rows} rows, {name}")
    job = _job(ctx, rows, sandbox, rate=rate, concurrency=32)
    ideal = _ideal(rows, halving)  # type: ignore[arg-type]
    ratio, limited = job["duration_s"] / ideal, job["rate_limited"]
    most = (3 if shape.halving else TARGET_429_HEADERS) if headers else TARGET_429_SHARE * rows
    settled = job["settled_rate"] or 0.0
    ok = ratio <= TARGET_TIME and limited <= most and settled >= TARGET_SETTLED * LIMIT
    why = f"{settled}/s: {job['settled_why']}"
    line = (name, f"{ratio:.2f}x", limited, f"{limited / rows:.1%}", why, verdict(ok))
    targets = [
        Target(
            f"{name}: <= {TARGET_TIME}x ideal, <= {most:g} x 429, settled >= "
            f"{TARGET_SETTLED * LIMIT:g}/s",
            f"{ratio:.2f}x, {limited}, {settled}",
            ok,
        )
    ]
    readme = (
        f"hidden 40/s, {name}",
        f"**{ratio:.2f}x** ideal, {limited} x 429; settled at {why}",
        f"<= {TARGET_TIME}x, <= {most:g} 429",
        verdict(ok),
    )
    data = {k: job[k] for k in ("duration_s", "rate_limited", "requests", "server")}
    return line, targets, readme, data | {"ratio": ratio, "settled_rate": settled, "ok": ok}


def hidden_limit(ctx: Context) -> Result:
    """The matrix: every shape at `--rate 400` and `--rate auto`, some with headers too."""
    rows = _rows(ctx, HIDDEN_ROWS)
    cases = [(shape, rate, False) for shape in SHAPES for rate in ("400", "auto")]
    cases += [(s, rate, True) for s in SHAPES if s.name in WITH_HEADERS for rate in ("400", "auto")]
    lines, targets, readme, data = [], [], [], {}
    for shape, rate, headers in cases:
        line, held, said, figures = _case(ctx, rows, shape, rate, headers)
        lines.append(line)
        targets += held
        readme.append(said)
        data[line[0]] = figures
    table = Table.of("server and job|x ideal|429s|429s / rows|settled|verdict", lines)
    title = (
        f"A hidden {LIMIT}/s limit of every shape, {LATENCY_MS} ms answers, {rows:,} rows, "
        f"--concurrency 32: ideal {rows / LIMIT:.0f} s (more while halved)"
    )
    return Result([Section(title, [table])], targets, readme, data)


def slow_api(ctx: Context) -> Result:
    rows = _rows(ctx, HIDDEN_ROWS)
    progress(f"slow API: {rows} rows, {SLOW_MS} ms answers, --rate {SLOW_RATE}")
    job = _job(ctx, rows, ["--latency-ms", str(SLOW_MS)], rate=SLOW_RATE)
    achieved = job["requests"] / job["duration_s"]
    ok = achieved >= TARGET_SLOW
    table = Table.of(
        "requests|duration s|achieved req/s|old cap (8 / 0.4 s)",
        [(job["requests"], f"{job['duration_s']:.1f}", f"{achieved:.1f}", "20.0")],
    )
    title = f"A slow API: {SLOW_MS} ms answers, --rate {SLOW_RATE}, default concurrency"
    return Result(
        [Section(title, [table])],
        [Target(f"{SLOW_MS} ms answers, --rate {SLOW_RATE}: >= {TARGET_SLOW}/s",
                f"{achieved:.1f}", ok)],
        [(f"{SLOW_MS} ms answers, --rate {SLOW_RATE}, default concurrency",
          f"**{achieved:.1f}** req/s", f">= {TARGET_SLOW}", verdict(ok))],
        {"achieved_rate": achieved, "duration_s": job["duration_s"]},
    )  # fmt: skip


def _faults_job(ctx: Context, rate: str, headers: bool) -> dict[str, Any]:
    csv_path = ctx.csv(_rows(ctx, FAULTS_ROWS), seed=11)
    sandbox = ["--rate", str(FAULTS_LIMIT), "--fault-rate", "0.1", "--seed", "3"]
    sandbox += ["--faults", "503,500,drop,slow", "--slow-seconds", "0.6"]
    sandbox += ["--headers", "xrl"] if headers else []
    with SandboxProcess(write_leads(csv_path), *sandbox) as server:
        out = ctx.tmp / f"faults-{time.monotonic_ns()}.json"
        argv = [PY, str(BENCH / "faults_child.py"), str(csv_path), "--rate", rate]
        argv += ["--base-url", server.url, "--out", str(out)]
        child = run_child(argv, _env(), out.with_suffix(".log"), CHILD_TIMEOUT)
        if child.returncode != 0:
            raise BenchError(f"faults_child exited {child.returncode}: {child.log[-2000:]}")
        stats = server.stats()
    summary: dict[str, Any] = json.loads(out.read_text())
    return summary | {"server": stats, "span_s": stats["last_arrival"] - stats["first_arrival"]}


def _slow_faults_job(ctx: Context) -> dict[str, Any]:
    """`bulk-updater run` with `SLOW_FAULTS_OPTIONS` against 150/s stating its limit in
    headers, with `SLOW_FAULTS`: the span from the sandbox's first arrival to its last."""
    rows = _rows(ctx, FAULTS_ROWS)
    sandbox = ["--rate", str(FAULTS_LIMIT), "--headers", "xrl", "--fault-rate", "0.1"]
    sandbox += [*SLOW_FAULTS, "--slow-seconds", "4", "--seed", "3"]
    job = _job(ctx, rows, sandbox, **SLOW_FAULTS_OPTIONS)
    stats = job["server"]
    return job | {"span_s": stats["last_arrival"] - stats["first_arrival"]}


def faults(ctx: Context) -> Result:
    rows = _rows(ctx, FAULTS_ROWS)
    ideal = rows / FAULTS_LIMIT
    slow_name = "4 s answers, --timeout 1.5, default backoff (bulk-updater run), headers"
    cases = [
        ("--rate 400, X-RateLimit-* headers", "400", True),
        (slow_name, "400", True),
        ("--rate 400, no headers", "400", False),
        (f"--rate {FAULTS_LIMIT} (the exact limit), no headers", str(FAULTS_LIMIT), False),
    ]
    held = cases[0][0], slow_name
    table_rows, data = [], {}
    for name, rate, headers in cases:
        progress(f"faults job: {rows} rows, {name}")
        job = _slow_faults_job(ctx) if name == slow_name else _faults_job(ctx, rate, headers)
        ratio = job["span_s"] / ideal
        said = verdict(ratio <= TARGET_FAULTS) if name in held else "-"
        table_rows.append(
            (name, f"{job['span_s']:.2f}", f"{ratio:.2f}x", job["requests"],
             job["rate_limited"], f"{job['settled_rate']}/s: {job['settled_why']}", said)
        )  # fmt: skip
        data[name] = {"span_s": job["span_s"], "ratio": ratio, "requests": job["requests"]}
        data[name] |= {"rate_limited": job["rate_limited"], "server": job["server"]}
    table = Table.of(
        "job|first to last request s|x ideal|requests|429s|settled|verdict", table_rows
    )
    title = (
        f"The faults job: 10% faults (503, 500, drop, slow 0.6 s; or 5/2/2/1% with 4 s), "
        f"{rows:,} rows, 32 workers, 0.3 s timeout (1.5 s), against {FAULTS_LIMIT}/s: "
        f"ideal {ideal:.1f} s"
    )
    targets, readme = [], []
    for name in held:
        ratio = data[name]["ratio"]
        ok = ratio <= TARGET_FAULTS
        target = f"faults job, {name}: <= {TARGET_FAULTS}x ideal"
        targets.append(Target(target, f"{ratio:.2f}x", ok))
        readme.append(
            (f"faults job ({rows:,} rows, 10% faults, {FAULTS_LIMIT}/s), {name}",
             f"**{ratio:.2f}x** ideal, first to last request", f"<= {TARGET_FAULTS}x",
             verdict(ok))
        )  # fmt: skip
    return Result([Section(title, [table])], targets, readme, data)

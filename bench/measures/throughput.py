"""Throughput at `--rate 0 --concurrency 64`, and the CPU it costs: bulk-updater on the default
install and on the plain asyncio loop, against `bench/bare_loop.py` sending the same requests
through the same library (aiohttp's `ClientSession`).

Measured against `bench/fast_server.py` (which also checks that all three sent the same requests)
and against nginx (faster, but it cannot check). Each round runs the two engines around the bare
loop, swapped every round, so that drift on a shared machine hits both alike.

The figure users meet, the CPU of a paced job, is `paced.py`'s.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any, Final

from harness import (
    CONCURRENCY,
    BenchError,
    Endpoint,
    Run,
    progress,
    run_bare,
    run_engine,
)
from report import engine_build
from results import Context, Result, Section, Table, Target, verdict
from servers import FastServer, Nginx

# Against the bare loop on the same library: what the engine adds (reading, validating, pacing,
# retrying, reporting) may cost 15% of its speed at `--rate 0`.
TARGET_RATIO: Final = 0.85
NOISY_SPREAD: Final = 0.05  # engine/bare ratios further apart than this: the machine was busy


@dataclass(frozen=True)
class Rounds:
    """What one throughput measure ran against one server."""

    server: str  # "fast_server", "nginx"
    rows: int
    runs: list[tuple[Run, Run, Run]]  # (engine, engine-asyncio, bare) per round
    startup: dict[str, Run]  # one row each: the start-up cost, taken out of CPU per row

    def ratios(self, variant: int) -> list[float]:
        """engine/bare per round for variant 0 (default install) or 1 (plain asyncio)."""
        return [trio[variant].rate / trio[2].rate for trio in self.runs]

    def median(self, client: int, figure: str) -> float:
        """The median over the rounds of `figure` ("rate", "cpu_s", ...) of one client (0-2)."""
        return float(statistics.median(getattr(trio[client], figure) for trio in self.runs))


def fast_server(ctx: Context) -> Result:
    with FastServer() as server:
        rounds = _rounds(server, ctx)
    _check_same_requests(rounds)
    note = (
        "same requests: the server saw the same count, the same path+body checksum and the "
        "same headers from all three"
    )
    return _result(ctx, rounds, "bench/fast_server.py", note)


def nginx(ctx: Context) -> Result:
    names = [_target_name(v, "nginx") for v in (0, 1)]
    if isinstance(ctx.nginx, str):
        return Result.not_measured("Throughput against nginx", names, ctx.nginx)
    with Nginx(ctx.nginx, ctx.tmp, ctx.nginx_workers) as server:
        rounds = _rounds(server, ctx)
    note = (
        "nginx cannot check the requests (fast_server does): it counts them and the "
        "connections (stub_status), and every answer must be a 200"
    )
    against = f"nginx ({ctx.nginx.version}, worker_processes {ctx.nginx_workers})"
    return _result(ctx, rounds, against, note)


def _rounds(server: Endpoint, ctx: Context) -> Rounds:
    rows, tmp = ctx.rows, ctx.tmp
    csv_path, one_row = ctx.csv(rows), ctx.csv(1)
    startup = {
        "engine": run_engine(server, one_row, 1, tmp),
        "engine-asyncio": run_engine(server, one_row, 1, tmp, plain=True),
        "bare": run_bare(server, one_row, 1, tmp),
    }
    run_engine(server, csv_path, rows, tmp)  # warm the page cache and the server
    runs: list[tuple[Run, Run, Run]] = []
    for n in range(ctx.rounds):
        first_plain = n % 2 == 1
        progress(f"throughput against {server.name}, round {n + 1}/{ctx.rounds}")
        a = run_engine(server, csv_path, rows, tmp, plain=first_plain)
        bare = run_bare(server, csv_path, rows, tmp)
        b = run_engine(server, csv_path, rows, tmp, plain=not first_plain)
        default, plain = (b, a) if first_plain else (a, b)
        runs.append((default, plain, bare))
    return Rounds(server.name, rows, runs, startup)


def _check_same_requests(rounds: Rounds) -> None:
    checksums = {r.checksum for trio in rounds.runs for r in trio}
    headers = {tuple(r.headers) for trio in rounds.runs for r in trio}
    if len(checksums) != 1:
        raise BenchError("the engine and the bare loop did not send the same paths and bodies")
    if len(headers) != 1:
        raise BenchError(f"the engine and the bare loop sent different headers: {headers}")


def _target_name(variant: int, server: str) -> str:
    build = "default install" if variant == 0 else "plain asyncio"
    return f"throughput engine/bare ({build}) vs {server} >= {TARGET_RATIO}"


def _result(ctx: Context, rounds: Rounds, against: str, check_note: str) -> Result:
    medians = [statistics.median(rounds.ratios(v)) for v in (0, 1)]
    cpu_rows = _cpu_rows(rounds)
    marginal = {row[0]: float(row[4]) for row in cpu_rows}
    cpu_ratio = [marginal["bare"] / marginal[kind] for kind in ("engine", "engine-asyncio")]
    throughput = Section(
        f"Throughput against {against}, {rounds.rows:,} rows, --rate 0 --concurrency "
        f"{CONCURRENCY}, report written, validation on",
        [
            "rows/s: engine = rows / summary duration_s; bare = requests / first-to-last "
            "request; wall = process incl. start-up",
            _rounds_table(rounds),
            f"engine = default install ({engine_build(ctx.host)}); engine-asyncio = "
            "BULK_UPDATER_NO_UVLOOP=1; bare = bench/bare_loop.py (asyncio + json)",
            check_note,
            *_connections_note(rounds),
            *_spread_notes(rounds, ctx.host["loadavg"]),
        ],
    )
    cpu = Section(
        f"CPU against {rounds.server} (user+sys from wait4 on each child; medians of the "
        f"{len(rounds.runs)} rounds)",
        [
            Table.of(
                f"client|CPU s / {rounds.rows:,} rows|CPU s / 10k rows|start-up CPU s (1 row)|"
                "CPU s / 10k excl. start-up|client core busy|server core busy",
                cpu_rows,
            ),
            "CPU-based ratio (bare CPU per row / engine CPU per row, start-up excluded; less "
            f"sensitive to other load): engine {cpu_ratio[0]:.3f}, "
            f"engine-asyncio {cpu_ratio[1]:.3f}",
        ],
    )
    return Result(
        sections=[throughput, cpu],
        targets=[
            Target(_target_name(v, rounds.server), f"{medians[v]:.3f}", medians[v] >= TARGET_RATIO)
            for v in (0, 1)
        ],
        readme=_readme(ctx, rounds, medians, cpu_rows),
        data=_data(rounds, medians, cpu_rows, cpu_ratio),
    )


def _rounds_table(rounds: Rounds) -> Table:
    def row(label: str, figures: list[tuple[float, float]], ratios: list[float]) -> tuple[str, ...]:
        cells = [label]
        for rate, wall in figures:
            cells += [f"{rate:,.0f}", f"{wall:.2f}"]
        return (*cells, *(f"{x:.3f}" for x in ratios))

    rows = [
        row(
            str(n),
            [(r.rate, r.wall_s) for r in trio],
            [trio[v].rate / trio[2].rate for v in (0, 1)],
        )
        for n, trio in enumerate(rounds.runs, 1)
    ]
    medians = [(rounds.median(i, "rate"), rounds.median(i, "wall_s")) for i in range(3)]
    rows.append(row("median", medians, [statistics.median(rounds.ratios(v)) for v in (0, 1)]))
    return Table.of(
        "round|engine rows/s|wall s|engine-asyncio rows/s|wall s|bare req/s|wall s|"
        "engine/bare|asyncio/bare",
        rows,
    )


def _cpu_rows(rounds: Rounds) -> list[tuple[str, ...]]:
    """Per client: CPU per run and per 10k rows, start-up, CPU beyond start-up, cores busy."""
    out: list[tuple[str, ...]] = []
    for client, kind in enumerate(("engine", "engine-asyncio", "bare")):
        cpu = rounds.median(client, "cpu_s")
        base = rounds.startup[kind].cpu_s
        busy = statistics.median(t[client].cpu_s / t[client].wall_s for t in rounds.runs)
        server = statistics.median(t[client].server_cpu_s / t[client].wall_s for t in rounds.runs)
        out.append(
            (
                kind,
                f"{cpu:.2f}",
                f"{cpu / rounds.rows * 10_000:.2f}",
                f"{base:.2f}",
                f"{(cpu - base) / rounds.rows * 10_000:.2f}",
                f"{busy:.0%}",
                f"{server:.0%}",
            )
        )
    return out


def _connections_note(rounds: Rounds) -> list[str]:
    """Keep-alive at work: connections the server saw opened per run (when it counts them)."""
    counts = {r.connections for trio in rounds.runs for r in trio}
    known = sorted(n for n in counts if n is not None)
    if len(known) < len(counts):
        return []
    return [f"connections opened per run, all clients, all rounds: {known}"]


def _spread_notes(rounds: Rounds, loadavg: str) -> list[str]:
    ratios = rounds.ratios(0)
    notes = [f"engine/bare over the rounds: {min(ratios):.3f} .. {max(ratios):.3f}"]
    spread = max(ratios) - min(ratios)
    if spread > NOISY_SPREAD:
        notes.append(
            f"NOISY: the rounds disagree by {spread:.2f} (load average {loadavg} at start): "
            "quote the median, or rerun on an idle machine; see also the CPU-based ratio"
        )
    return notes


def _readme(
    ctx: Context, rounds: Rounds, medians: list[float], cpu_rows: list[tuple[str, ...]]
) -> list[tuple[str, str, str, str]]:
    wanted = f">= {TARGET_RATIO}x"
    return [
        (
            f"Throughput vs {rounds.server}, {rounds.rows:,} rows, --rate 0 -c {CONCURRENCY} "
            f"(default install: {engine_build(ctx.host)})",
            f"{rounds.median(0, 'rate'):,.0f} rows/s; {medians[0]:.2f}x bare aiohttp "
            f"({rounds.median(2, 'rate'):,.0f} req/s)",
            wanted,
            verdict(medians[0] >= TARGET_RATIO),
        ),
        (
            f"Throughput vs {rounds.server}, plain asyncio loop",
            f"{rounds.median(1, 'rate'):,.0f} rows/s; {medians[1]:.2f}x bare",
            wanted,
            verdict(medians[1] >= TARGET_RATIO),
        ),
        (
            f"CPU per 10k rows vs {rounds.server} (engine / asyncio / bare)",
            " / ".join(c[2] + " s" for c in cpu_rows),
            "",
            "",
        ),
    ]


def _data(
    rounds: Rounds, medians: list[float], cpu_rows: list[tuple[str, ...]], cpu_ratio: list[float]
) -> dict[str, Any]:
    return {
        "server": rounds.server,
        "rows": rounds.rows,
        "concurrency": CONCURRENCY,
        "rounds": [
            {
                "engine": default.as_json(),
                "engine_asyncio": plain.as_json(),
                "bare": bare.as_json(),
                "ratio": default.rate / bare.rate,
                "ratio_asyncio": plain.rate / bare.rate,
            }
            for default, plain, bare in rounds.runs
        ],
        "median_ratio": medians[0],
        "median_ratio_asyncio": medians[1],
        "startup": {k: v.as_json() for k, v in rounds.startup.items()},
        "headers": rounds.runs[0][0].headers,
        "cpu_per_10k_rows": {c[0]: float(c[2]) for c in cpu_rows},
        "cpu_per_10k_rows_excl_startup": {c[0]: float(c[4]) for c in cpu_rows},
        "cpu_ratio": {"engine": cpu_ratio[0], "engine_asyncio": cpu_ratio[1]},
        "fastest_client_rate": max(r.rate for trio in rounds.runs for r in trio),
    }

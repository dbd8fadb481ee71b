"""Child processes and what they cost: start, time, reap with `wait4()`, and the runs built on them.

Every measured client (bulk-updater, the bare loop) runs as a child process of its own; its CPU
(user + sys) and peak RSS come from `wait4()` on its pid, its rows/s from what it reports. The
servers it talks to are in `servers.py`; the measures that put the two together in `measures/`.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

BENCH: Final = Path(__file__).resolve().parent
ROOT: Final = BENCH.parent
OUT: Final = BENCH / "out"
PY: Final = sys.executable
KEY: Final = "sk_bench_0123456789abcdef"
CONCURRENCY: Final = 64
CHILD_TIMEOUT: Final = 180.0

_live: set[subprocess.Popen[Any]] = set()


class BenchError(Exception):
    """A step could not run (a child crashed, a server did not start, a count is wrong)."""


def say(text: str = "") -> None:
    print(text, flush=True)


def progress(text: str) -> None:
    print(f"  .. {text}", file=sys.stderr, flush=True)


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed (it is on the default install), for in-process measures."""
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


# --- processes ------------------------------------------------------------------------------


def track(proc: subprocess.Popen[Any]) -> subprocess.Popen[Any]:
    """Remember a long-lived child so that `stop_all()` ends it, whatever happens."""
    _live.add(proc)
    return proc


def stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    _live.discard(proc)


def stop_all() -> None:
    for proc in list(_live):
        stop(proc)


def cpu_seconds(pid: int, *, with_children: bool = False) -> float:
    """utime + stime of a live process from /proc/PID/stat; its live children's too if asked."""
    pids = [pid]
    if with_children:  # nginx: the master is our child, the workers that do the work are its own
        with contextlib.suppress(OSError):
            pids += [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    total = 0
    for one in pids:
        with contextlib.suppress(OSError), open(f"/proc/{one}/stat") as file:
            fields = file.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


@dataclass
class Child:
    """A finished child process and what the kernel says it used."""

    argv: list[str]
    returncode: int
    wall_s: float
    cpu_s: float
    maxrss_mb: float
    log: str


class HighWater:
    """A child's peak RSS, read from `/proc/PID/status` (`VmHWM`) every 20 ms while it runs.

    Not `ru_maxrss`: on Linux a child's `ru_maxrss` includes the RSS of the process it was forked
    from (the kernel keeps the old memory's high-water mark at exec), so after a measure that
    grew this bench process (a million rows written, a job run in process) every child would
    report at least that. `VmHWM` belongs to the child's own memory after exec. A peak in the
    last 20 ms of a child's life can be missed; where `/proc` cannot be read, None.
    """

    def __init__(self, pid: int) -> None:
        self.path = f"/proc/{pid}/status"
        self.kib: int | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            with open(self.path) as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        self.kib = max(self.kib or 0, int(line.split()[1]))
                        return
        except (OSError, ValueError):
            return

    def _run(self) -> None:
        while True:
            self._read()
            if self._done.wait(0.02):
                return

    def stop(self) -> float | None:
        """The peak in MB (None if it was never read)."""
        self._done.set()
        self._thread.join()
        return None if self.kib is None else self.kib / 1024


def run_child(argv: list[str], env: dict[str, str], log: Path, timeout: float) -> Child:
    """Run one child to completion; its own CPU comes from wait4() on its pid, its peak RSS from
    `HighWater` (ru_maxrss when /proc cannot tell)."""
    with open(log, "wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    track(proc)
    high = HighWater(proc.pid)
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)  # reaps it: Popen must not wait again
    finally:
        timer.cancel()
        peak = high.stop()
    wall = time.perf_counter() - started
    _live.discard(proc)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode == -signal.SIGKILL and wall >= timeout:
        raise BenchError(f"{' '.join(argv)} did not finish in {timeout:.0f} s; killed")
    return Child(
        argv=argv,
        returncode=proc.returncode,
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        maxrss_mb=peak if peak is not None else usage.ru_maxrss / 1024,  # KiB on Linux
        log=log.read_text(errors="replace").strip(),
    )


def _check_child(child: Child, what: str, ok_codes: tuple[int, ...] = (0,)) -> None:
    if child.returncode not in ok_codes:
        raise BenchError(
            f"{what} exited {child.returncode}: {' '.join(child.argv)}\n{child.log[-2000:]}"
        )


def _options(**options: object) -> list[str]:
    """Command-line options from keywords: `base_url=u` -> `--base-url u`."""
    return [item for k, v in options.items() for item in ("--" + k.replace("_", "-"), str(v))]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SENDKIT_", "BULK_UPDATER_"))}
    env["SENDKIT_API_KEY"] = KEY
    env.update(extra)
    return env


# --- input ----------------------------------------------------------------------------------

HEADER: Final = ("id", "email", "firstName", "jobTitle", "companyName", "tags")
TITLES: Final = ("Operations Manager", "VP Sales", "CTO", "Head of Growth", "Engineer, Platform")


def write_csv(path: Path, rows: int, seed: int = 7) -> Path:
    """`rows` valid updates with distinct ids: text fields, tags, a custom field."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow((*HEADER, "customFields.revenue"))
        for n in range(rows):
            writer.writerow(
                (
                    f"{rng.getrandbits(96):024x}",
                    f"user{n}@example.com",
                    f"Name{n}",
                    rng.choice(TITLES),
                    f"Company {n % 997}",
                    "vip;enterprise" if n % 3 else "",
                    str(rng.randint(1, 10_000_000)),
                )
            )
    return path


# --- runs -----------------------------------------------------------------------------------


class Endpoint(Protocol):
    """What a run needs of the server it sends to (`servers.FastServer`, `servers.Nginx`)."""

    name: str
    port: int

    @property
    def url(self) -> str: ...

    def cpu(self) -> float: ...

    def reset(self) -> None: ...

    def stats(self) -> dict[str, Any] | None:
        """Since `reset()`: `ok` (PATCHes answered 200), `connections`, and with fast_server
        `checksum` and `headers`; None when the server cannot count."""


@dataclass
class Run:
    kind: str  # "engine", "engine-asyncio", "bare"
    rows: int
    rate: float  # rows/s (engine: rows / summary duration_s; bare: requests / first-to-last)
    duration_s: float
    wall_s: float
    cpu_s: float
    maxrss_mb: float
    server_cpu_s: float
    checksum: int | None  # of paths and bodies, when the server can take it (fast_server)
    connections: int | None  # opened to the server during the run, when it counts them
    headers: list[str] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "rows_per_s": round(self.rate, 1),
            "duration_s": self.duration_s,
            "wall_s": round(self.wall_s, 3),
            "cpu_s": round(self.cpu_s, 3),
            "maxrss_mb": round(self.maxrss_mb, 1),
            "server_cpu_s": round(self.server_cpu_s, 3),
            "connections": self.connections,
        }


def _measured(
    server: Endpoint, argv: list[str], env: dict[str, str], log: Path
) -> tuple[Child, float, dict[str, Any] | None]:
    """Run a client child against `server`; (child, server CPU spent meanwhile, server stats)."""
    server.reset()
    before = server.cpu()
    child = run_child(argv, env, log, CHILD_TIMEOUT)
    return child, server.cpu() - before, server.stats()


def run_engine(
    server: Endpoint,
    csv_path: Path,
    rows: int,
    tmp: Path,
    *,
    plain: bool = False,
    rate: float = 0,
    args: tuple[str, ...] = (),
    sent: int | None = None,
) -> Run:
    """bulk-updater on `csv_path`; `plain` sets BULK_UPDATER_NO_UVLOOP (the plain asyncio loop).

    `args` are more options; at `--rate 0` the run must update `sent` rows (default: all), and
    the server must see that many PATCHes.
    """
    kind = "engine-asyncio" if plain else "engine"
    tag = f"{kind}-{rows}-{time.monotonic_ns()}"
    report, summary_path = tmp / f"{tag}.report.csv", tmp / f"{tag}.summary.json"
    argv = [PY, "-m", "bulk_updater", "run", str(csv_path), "-q"]
    argv += _options(
        base_url=server.url,
        rate=rate,
        concurrency=CONCURRENCY,
        report=report,
        summary_json=summary_path,
    )
    argv += args
    env = _env(BULK_UPDATER_NO_UVLOOP="1") if plain else _env()
    child, server_cpu, stats = _measured(server, argv, env, tmp / f"{tag}.log")
    _check_child(child, f"bulk-updater ({kind}, {rows} rows)", (0, 1))
    summary = json.loads(summary_path.read_text())
    for suffix in ("", ".lock", ".meta.json"):
        with contextlib.suppress(FileNotFoundError):
            Path(f"{report}{suffix}").unlink()
    expected = rows if sent is None else sent
    served = expected if stats is None else stats["ok"]
    if rate == 0 and (summary["counts"]["updated"] != expected or served != expected):
        raise BenchError(
            f"bulk-updater ({kind}): {summary['counts']} and {server.name} saw {served} "
            f"good PATCHes; expected {expected} updated"
        )
    return Run(
        kind=kind,
        rows=rows,
        rate=rows / summary["duration_s"],
        duration_s=summary["duration_s"],
        wall_s=child.wall_s,
        cpu_s=child.cpu_s,
        maxrss_mb=child.maxrss_mb,
        server_cpu_s=server_cpu,
        checksum=None if stats is None else stats.get("checksum"),
        connections=None if stats is None else stats["connections"],
        headers=[] if stats is None else stats.get("headers", []),
        summary=summary | {"server": stats},
    )


def run_bare(server: Endpoint, csv_path: Path, rows: int, tmp: Path) -> Run:
    """bench/bare_loop.py on `csv_path`: the hand-written aiohttp loop the engine is held to."""
    tag = f"bare-{rows}-{time.monotonic_ns()}"
    out = tmp / f"{tag}.json"
    argv = [PY, str(BENCH / "bare_loop.py"), str(csv_path)]
    argv += _options(base_url=server.url, concurrency=CONCURRENCY, out=out)
    child, server_cpu, stats = _measured(server, argv, _env(), tmp / f"{tag}.log")
    _check_child(child, f"bare_loop ({rows} rows)")  # exits 1 unless every answer was a 200
    result = json.loads(out.read_text())
    served = rows if stats is None else stats["ok"]
    if result["requests"] != rows or served != rows:
        raise BenchError(f"bare_loop sent {result['requests']} requests, expected {rows}")
    return Run(
        kind="bare",
        rows=rows,
        rate=result["rate"],
        duration_s=result["duration_s"],
        wall_s=child.wall_s,
        cpu_s=child.cpu_s,
        maxrss_mb=child.maxrss_mb,
        server_cpu_s=server_cpu,
        checksum=None if stats is None else stats.get("checksum"),
        connections=None if stats is None else stats["connections"],
        headers=[] if stats is None else stats.get("headers", []),
    )

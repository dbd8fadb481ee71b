"""`make bench`: how fast, how lean and how well paced bulk-updater is, in one report.

    python bench/bench.py [--rows 20000] [--rounds 5] [--quick]

Every measurement runs in a child process against `bench/fast_server.py`, a minimal HTTP endpoint
in a process of its own, on a free loopback port:

1. the endpoint alone, under load generators cheaper than any client (a raw asyncio socket
   client, pipelined and not; `wrk` when installed), so we know it is not the bottleneck;
2. throughput at `--rate 0 --concurrency 64`: bulk-updater (uvloop + orjson, and the plain asyncio
   loop) against `bench/bare_loop.py`, a hand-written aiohttp loop sending the same requests
   (the server checks: same count, same paths and bodies by checksum, same headers), in rounds;
3. CPU seconds (user + sys) per 10,000 rows, from `wait4()` on each child;
4. peak RSS of the engine at 10k and 100k rows;
5. rate accuracy: `--rate 50` against an endpoint that answers 429 beyond 50 per sliding second
   (+ a burst of 5);
6. in-process, the pacing alternatives: aiolimiter's `AsyncLimiter` two ways and our `Pacer`.

Prints tables and PASS/FAIL per target, writes bench/out/results.json and a Markdown table for the
README. Exits 0 whatever the verdicts; 1 when something crashed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import http.client
import json
import os
import platform
import random
import resource
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Final

BENCH: Final = Path(__file__).resolve().parent
ROOT: Final = BENCH.parent
OUT: Final = BENCH / "out"
PY: Final = sys.executable
KEY: Final = "sk_bench_0123456789abcdef"
CONCURRENCY: Final = 64
CHILD_TIMEOUT: Final = 180.0

TARGET_RATIO: Final = 0.95
TARGET_RSS_GROWTH: Final = 1.25
TARGET_RSS_MB: Final = 100.0
TARGET_PACE: Final = 47.5
PACE_RATE: Final = 50
PACE_BURST: Final = 5
NOISY_SPREAD: Final = 0.05  # engine/bare ratios further apart than this: the machine was busy
HEADROOM: Final = 3.0  # the endpoint must serve this many times what the fastest client sends

_live: set[subprocess.Popen[Any]] = set()


class BenchError(Exception):
    """A step could not run (a child crashed, a server did not start, a count is wrong)."""


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def _say(text: str = "") -> None:
    print(text, flush=True)


def _progress(text: str) -> None:
    print(f"  .. {text}", file=sys.stderr, flush=True)


# --- children -------------------------------------------------------------------------------


@dataclass
class Child:
    """A finished child process and what the kernel says it used."""

    argv: list[str]
    returncode: int
    wall_s: float
    cpu_s: float
    maxrss_mb: float
    log: str


def run_child(argv: list[str], env: dict[str, str], log: Path, timeout: float) -> Child:
    """Run one child to completion; its own CPU and peak RSS come from wait4() on its pid."""
    with open(log, "wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    _live.add(proc)
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)  # reaps it: Popen must not wait again
    finally:
        timer.cancel()
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
        maxrss_mb=usage.ru_maxrss / 1024,  # KiB on Linux
        log=log.read_text(errors="replace").strip(),
    )


def _stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    _live.discard(proc)


def _cpu_ticks(pid: int) -> float:
    """utime + stime of a live process in seconds, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as file:
        fields = file.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Server:
    """bench/fast_server.py in its own process on a free port; stopped on exit, whatever happens."""

    def __init__(self, *args: str) -> None:
        self.args = args
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0

    def __enter__(self) -> Server:
        self.proc = subprocess.Popen(
            [PY, str(BENCH / "fast_server.py"), "--port", "0", *self.args],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        _live.add(self.proc)
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 15)
        line = self.proc.stdout.readline() if ready else ""
        if not line.startswith("listening "):
            _stop(self.proc)
            raise BenchError(f"fast_server did not start (said {line.strip()!r})")
        self.port = int(line.split()[2])
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            _stop(self.proc)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _call(self, method: str, path: str) -> dict[str, Any]:
        if self.proc is None or self.proc.poll() is not None:
            raise BenchError("fast_server died")
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path)
            data: dict[str, Any] = json.loads(conn.getresponse().read())
        finally:
            conn.close()
        return data

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "/stats")

    def reset(self) -> None:
        self._call("POST", "/reset")

    def cpu(self) -> float:
        assert self.proc is not None
        return _cpu_ticks(self.proc.pid)


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


# --- 1. the endpoint alone ------------------------------------------------------------------


def _sample_request(port: int) -> bytes:
    body = (
        b'{"firstName":"Name1","companyName":"Company 1","jobTitle":"VP Sales",'
        b'"tags":["vip","enterprise"],"customFields":{"revenue":"4242424"}}'
    )
    return (
        b"PATCH /v1/leads/00000000000000000000abcd HTTP/1.1\r\n"
        + f"Host: 127.0.0.1:{port}\r\n".encode()
        + f"X-Api-Key: {KEY}\r\n".encode()
        + b"Content-Type: application/json\r\nUser-Agent: bulk-updater/bench\r\n"
        b"Accept: application/json\r\nAccept-Encoding: gzip, deflate\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )


class _Load(asyncio.Protocol):
    """One connection that keeps `depth` requests outstanding; answers are counted by size."""

    def __init__(self, request: bytes, depth: int, answer_len: int, totals: list[int]) -> None:
        self.request = request
        self.depth = depth
        self.answer_len = answer_len
        self.totals = totals
        self.received = 0
        self.done = 0
        self.head = b""
        self.transport: asyncio.Transport | None = None
        self.running = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self.request * self.depth)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if len(self.head) < 12:
            self.head += data[:12]
        self.received += len(data)
        done = self.received // self.answer_len
        new = done - self.done
        if new:
            self.done = done
            self.totals[0] += new
            if self.running and self.transport is not None:
                self.transport.write(self.request * new)


async def _hammer(port: int, connections: int, depth: int, seconds: float) -> float:
    """Requests per second the endpoint answers to a client that costs next to nothing."""
    loop = asyncio.get_running_loop()
    request = _sample_request(port)
    answer_len = len(b'{"success":true,"data":{}}') + len(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 26\r\n\r\n"
    )
    totals = [0]
    conns = []
    for _ in range(connections):
        _, proto = await loop.create_connection(
            lambda: _Load(request, depth, answer_len, totals), "127.0.0.1", port
        )
        conns.append(proto)
    await asyncio.sleep(0.3)  # warm up
    before, started = totals[0], time.perf_counter()
    await asyncio.sleep(seconds)
    count, elapsed = totals[0] - before, time.perf_counter() - started
    for proto in conns:
        proto.running = False
        if proto.transport is not None:
            proto.transport.close()
    if any(not p.head.startswith(b"HTTP/1.1 200") for p in conns):
        raise BenchError("fast_server gave an unexpected answer to the load generator")
    return count / elapsed


def _wrk(server: Server, seconds: int, tmp: Path) -> float | None:
    """`wrk -t1 -c64` (keep-alive, not pipelined) when installed; None when it is not."""
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    script = tmp / "patch.lua"
    body = json.dumps({"firstName": "Name1", "tags": ["vip"], "customFields": {"r": "1"}})
    script.write_text(
        'wrk.method = "PATCH"\n'
        f"wrk.body = {json.dumps(body)}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["X-Api-Key"] = "{KEY}"\n'
    )
    url = f"{server.url}/v1/leads/00000000000000000000abcd"
    result = subprocess.run(
        [wrk, "-t1", f"-c{CONCURRENCY}", f"-d{seconds}s", "-s", str(script), url],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=False,
    )
    for line in result.stdout.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split()[1])
    _progress(f"wrk gave no rate (exit {result.returncode}): {result.stderr.strip()[:200]}")
    return None


def bench_endpoint(tmp: Path, seconds: float) -> dict[str, Any]:
    with Server() as server:
        results: dict[str, Any] = {}
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            results["raw_pipelined"] = runner.run(_hammer(server.port, 8, 32, seconds))
            results["raw_keepalive_64"] = runner.run(_hammer(server.port, CONCURRENCY, 1, seconds))
        results["wrk_keepalive_64"] = _wrk(server, max(1, round(seconds)), tmp)
        stats = server.stats()
        if stats["patches"] != stats["ok"]:
            raise BenchError("fast_server answered something else than 200 under load")
    return results


# --- 2-4. throughput, CPU, memory -----------------------------------------------------------


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
    checksum: int
    headers: list[str] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


def _options(**options: object) -> list[str]:
    """Command-line options from keywords: `base_url=u` -> `--base-url u`."""
    return [item for k, v in options.items() for item in ("--" + k.replace("_", "-"), str(v))]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SENDKIT_", "BULK_UPDATER_"))}
    env["SENDKIT_API_KEY"] = KEY
    env.update(extra)
    return env


def _check_child(child: Child, what: str, ok_codes: tuple[int, ...] = (0,)) -> None:
    if child.returncode not in ok_codes:
        raise BenchError(
            f"{what} exited {child.returncode}: {' '.join(child.argv)}\n{child.log[-2000:]}"
        )


def run_engine(
    server: Server,
    csv_path: Path,
    rows: int,
    tmp: Path,
    *,
    plain: bool = False,
    rate: float = 0,
) -> Run:
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
    env = _env(BULK_UPDATER_NO_UVLOOP="1") if plain else _env()
    server.reset()
    server_cpu = server.cpu()
    child = run_child(argv, env, tmp / f"{tag}.log", CHILD_TIMEOUT)
    server_cpu = server.cpu() - server_cpu
    _check_child(child, f"bulk-updater ({kind}, {rows} rows)", (0, 1))
    summary = json.loads(summary_path.read_text())
    stats = server.stats()
    for suffix in ("", ".lock", ".meta.json"):
        with contextlib.suppress(FileNotFoundError):
            Path(f"{report}{suffix}").unlink()
    if rate == 0 and (summary["counts"]["updated"] != rows or stats["ok"] != rows):
        raise BenchError(
            f"bulk-updater ({kind}): {summary['counts']} and the server saw {stats['ok']} "
            f"good PATCHes; expected {rows} updated"
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
        checksum=stats["checksum"],
        headers=stats["headers"],
        summary=summary | {"server": stats},
    )


def run_bare(server: Server, csv_path: Path, rows: int, tmp: Path) -> Run:
    tag = f"bare-{rows}-{time.monotonic_ns()}"
    out = tmp / f"{tag}.json"
    argv = [PY, str(BENCH / "bare_loop.py"), str(csv_path)]
    argv += _options(base_url=server.url, concurrency=CONCURRENCY, out=out)
    server.reset()
    server_cpu = server.cpu()
    child = run_child(argv, _env(), tmp / f"{tag}.log", CHILD_TIMEOUT)
    server_cpu = server.cpu() - server_cpu
    _check_child(child, f"bare_loop ({rows} rows)")
    result = json.loads(out.read_text())
    stats = server.stats()
    if result["requests"] != rows or stats["ok"] != rows:
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
        checksum=stats["checksum"],
        headers=stats["headers"],
    )


def bench_throughput(tmp: Path, rows: int, rounds: int) -> dict[str, Any]:
    csv_path = write_csv(tmp / f"rows-{rows}.csv", rows)
    one_row = write_csv(tmp / "rows-1.csv", 1)
    runs: list[tuple[Run, Run, Run]] = []
    with Server() as server:
        # Start-up cost of each process (imports, interpreter): one row each, for CPU per row.
        startup = {
            "engine": run_engine(server, one_row, 1, tmp),
            "engine-asyncio": run_engine(server, one_row, 1, tmp, plain=True),
            "bare": run_bare(server, one_row, 1, tmp),
        }
        run_engine(server, csv_path, rows, tmp)  # warm the page cache and the server
        for n in range(rounds):
            # Bare in the middle, the engines swapped every round, so drift hits both alike.
            first, last = (False, True) if n % 2 == 0 else (True, False)
            _progress(f"throughput round {n + 1}/{rounds}")
            a = run_engine(server, csv_path, rows, tmp, plain=first)
            bare = run_bare(server, csv_path, rows, tmp)
            b = run_engine(server, csv_path, rows, tmp, plain=last)
            uv, plain = (b, a) if first else (a, b)
            runs.append((uv, plain, bare))
    checksums = {r.checksum for trio in runs for r in trio}
    headers = {tuple(r.headers) for trio in runs for r in trio}
    if len(checksums) != 1:
        raise BenchError("the engine and the bare loop did not send the same paths and bodies")
    if len(headers) != 1:
        raise BenchError(f"the engine and the bare loop sent different headers: {headers}")
    return {"rows": rows, "runs": runs, "startup": startup, "headers": sorted(headers)[0]}


def bench_memory(tmp: Path, sizes: tuple[int, int]) -> dict[int, Run]:
    out: dict[int, Run] = {}
    with Server() as server:
        for rows in sizes:
            _progress(f"memory: {rows} rows")
            csv_path = write_csv(tmp / f"rows-{rows}.csv", rows, seed=rows)
            out[rows] = run_engine(server, csv_path, rows, tmp)
            csv_path.unlink()
    return out


# --- 5. rate accuracy -----------------------------------------------------------------------


def bench_pacing(tmp: Path, rows: int) -> dict[str, Any]:
    csv_path = write_csv(tmp / f"pace-{rows}.csv", rows, seed=50)
    with Server("--rate", str(PACE_RATE), "--burst", str(PACE_BURST)) as server:
        _progress(f"pacing: {rows} rows at --rate {PACE_RATE}")
        run = run_engine(server, csv_path, rows, tmp, rate=PACE_RATE)
    summary = run.summary
    return {
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


# --- 6. pacing alternatives, in process -----------------------------------------------------


async def _acquisitions(
    acquire: Callable[[], Awaitable[Any]], tasks: int, seconds: float
) -> list[float]:
    """Times (from the start) at which `tasks` tasks, each acquiring in a loop, got through."""
    loop = asyncio.get_running_loop()
    stamps: list[float] = []
    start = loop.time()

    async def one() -> None:
        while True:
            await acquire()
            stamps.append(loop.time() - start)

    workers = [asyncio.create_task(one()) for _ in range(tasks)]
    await asyncio.sleep(seconds)
    for task in workers:
        task.cancel()
    await asyncio.gather(*workers, return_exceptions=True)
    return sorted(t for t in stamps if t < seconds)


def max_in_window(stamps: list[float], width: float = 1.0) -> int:
    """Most events in any half-open window [t, t + width) of the sorted `stamps`."""
    best = j = 0
    for i, t in enumerate(stamps):
        while j < len(stamps) and stamps[j] < t + width:
            j += 1
        best = max(best, j - i)
    return best


def bench_limiters(seconds: float, rate: int = PACE_RATE, tasks: int = CONCURRENCY) -> list[dict]:
    """Each limiter under `tasks` tasks acquiring in a loop; aiolimiter rows need the dev extra."""
    from bulk_updater.pacing import Pacer

    limiters: dict[str, Callable[[], Callable[[], Awaitable[Any]]]] = {}
    try:
        from aiolimiter import AsyncLimiter
    except ImportError:
        _progress("aiolimiter is not installed (pip install -e '.[dev]'): its rows are skipped")
    else:
        limiters[f"aiolimiter AsyncLimiter({rate}, 1)"] = lambda: AsyncLimiter(rate, 1).acquire
        limiters[f"aiolimiter AsyncLimiter(1, 1/{rate})"] = lambda: (
            AsyncLimiter(1, 1 / rate).acquire
        )
    limiters[f"bulk_updater Pacer({rate})"] = lambda: Pacer(rate).acquire

    async def measure(name: str) -> dict[str, Any]:
        stamps = await _acquisitions(limiters[name](), tasks, seconds)
        steady = [t for t in stamps if t >= 1.0]
        return {
            "limiter": name,
            "seconds": seconds,
            "acquired": len(stamps),
            "first_100ms": sum(1 for t in stamps if t < 0.1),
            "max_per_1s": max_in_window(stamps),
            "achieved_rate": len(stamps) / seconds,
            "steady_rate": len(steady) / (seconds - 1.0),
        }

    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return [runner.run(measure(name)) for name in limiters]


# --- report ---------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions = {}
    for name in (
        "bulk-updater",
        "aiohttp",
        "aiolimiter",
        "tenacity",
        "pydantic",
        "uvloop",
        "orjson",
    ):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return {
        "nproc": os.cpu_count(),
        "loadavg": " ".join(Path("/proc/loadavg").read_text().split()[:3])
        if Path("/proc/loadavg").exists()
        else "?",
        "cpu": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
    }


def table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    cells = [tuple(str(c) for c in header), *[tuple(str(c) for c in r) for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]

    def line(r: tuple[str, ...]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


def markdown(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _cols(spec: str) -> tuple[str, ...]:
    return tuple(spec.split("|"))


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def _median(values: Iterator[float] | list[float]) -> float:
    return statistics.median(list(values))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="bulk-updater benchmarks")
    parser.add_argument("--rows", type=int, default=20_000, help="rows per throughput run")
    parser.add_argument("--rounds", type=int, default=5, help="throughput rounds (>= 3)")
    parser.add_argument("--quick", action="store_true", help="small sizes, to try the script")
    args = parser.parse_args(argv)
    quick = args.quick
    rows = 2_000 if quick else args.rows
    rounds = 1 if quick else max(3, args.rounds)
    memory_sizes = (1_000, 10_000) if quick else (10_000, 100_000)
    pace_rows = 100 if quick else 500
    probe_s = 1.0 if quick else 2.0
    limiter_s = 1.5 if quick else 3.0

    def on_term(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    host = machine()  # before the runs: the load average says whether the machine is idle
    started = time.perf_counter()
    usage_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        with tempfile.TemporaryDirectory(prefix="bulk-updater-bench-") as tmp_name:
            tmp = Path(tmp_name)
            _progress("endpoint alone")
            endpoint = bench_endpoint(tmp, probe_s)
            throughput = bench_throughput(tmp, rows, rounds)
            memory = bench_memory(tmp, memory_sizes)
            pacing = bench_pacing(tmp, pace_rows)
            _progress("pacing alternatives, in process")
            limiters = bench_limiters(limiter_s)
    except BenchError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 1
    finally:
        for proc in list(_live):
            _stop(proc)
    elapsed = time.perf_counter() - started
    usage_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    children_cpu = (usage_after.ru_utime + usage_after.ru_stime) - (
        usage_before.ru_utime + usage_before.ru_stime
    )
    report(
        host,
        endpoint,
        throughput,
        memory,
        pacing,
        limiters,
        elapsed,
        children_cpu,
        quick=quick,
    )
    return 0


def report(
    host: dict[str, Any],
    endpoint: dict[str, Any],
    throughput: dict[str, Any],
    memory: dict[int, Run],
    pacing: dict[str, Any],
    limiters: list[dict[str, Any]],
    elapsed: float,
    children_cpu: float,
    *,
    quick: bool,
) -> None:
    runs: list[tuple[Run, Run, Run]] = throughput["runs"]
    rows = throughput["rows"]
    startup: dict[str, Run] = throughput["startup"]
    uvloop_name = "uvloop" if host["versions"]["uvloop"] else "asyncio (uvloop not installed)"
    orjson_name = "orjson" if host["versions"]["orjson"] else "json"

    _say(f"bulk-updater benchmarks{' (--quick: small sizes, not for the README)' if quick else ''}")
    _say(
        f"machine: {host['nproc']} CPU, {host['cpu']}; Python {host['python']}; "
        f"{host['platform']}; load average at start {host['loadavg']}"
    )
    _say("versions: " + ", ".join(f"{k} {v or '-'}" for k, v in host["versions"].items()))
    _say()

    # 1. endpoint
    fastest_client = max(r.rate for trio in runs for r in trio)
    probes = [
        ("raw asyncio client, 8 conns x 32 pipelined", endpoint["raw_pipelined"]),
        ("raw asyncio client, 64 conns, keep-alive", endpoint["raw_keepalive_64"]),
        ("wrk -t1 -c64, keep-alive", endpoint["wrk_keepalive_64"]),
    ]
    _say("1. The endpoint alone (bench/fast_server.py, one process)")
    _say(
        table(
            ("load generator", "req/s", "x fastest client"),
            [
                (
                    name,
                    "not installed" if v is None else f"{v:,.0f}",
                    "" if v is None else f"{v / fastest_client:.1f}x",
                )
                for name, v in probes
            ],
        )
    )
    keepalive = max(v for name, v in probes[1:] if v is not None)
    headroom_ok = keepalive >= HEADROOM * fastest_client
    _say()

    # 2-3. throughput and CPU
    ratio_uv = [uv.rate / bare.rate for uv, _, bare in runs]
    ratio_plain = [plain.rate / bare.rate for _, plain, bare in runs]
    _say(
        f"2. Throughput, {rows:,} rows, --rate 0 --concurrency {CONCURRENCY}, report written, "
        "validation on"
    )
    _say(
        "   rows/s: engine = rows / summary duration_s; bare = requests / first-to-last request;"
        " wall = process incl. start-up"
    )
    trows = []
    for n, (uv, plain, bare) in enumerate(runs, 1):
        trows.append(
            (
                n,
                f"{uv.rate:,.0f}",
                f"{uv.wall_s:.2f}",
                f"{plain.rate:,.0f}",
                f"{plain.wall_s:.2f}",
                f"{bare.rate:,.0f}",
                f"{bare.wall_s:.2f}",
                f"{uv.rate / bare.rate:.3f}",
                f"{plain.rate / bare.rate:.3f}",
            )
        )
    trows.append(
        (
            "median",
            f"{_median(r[0].rate for r in runs):,.0f}",
            f"{_median(r[0].wall_s for r in runs):.2f}",
            f"{_median(r[1].rate for r in runs):,.0f}",
            f"{_median(r[1].wall_s for r in runs):.2f}",
            f"{_median(r[2].rate for r in runs):,.0f}",
            f"{_median(r[2].wall_s for r in runs):.2f}",
            f"{_median(ratio_uv):.3f}",
            f"{_median(ratio_plain):.3f}",
        )
    )
    _say(
        table(
            _cols(
                "round|engine rows/s|wall s|engine-asyncio rows/s|wall s|bare req/s|wall s|"
                "engine/bare|asyncio/bare"
            ),
            trows,
        )
    )
    _say(
        f"   engine = {uvloop_name} + {orjson_name}; engine-asyncio = BULK_UPDATER_NO_UVLOOP=1; "
        "bare = bench/bare_loop.py (asyncio + json)"
    )
    _say(
        "   same requests: the server saw the same count, the same path+body checksum and the "
        "same headers from all three"
    )
    spread = max(ratio_uv) - min(ratio_uv)
    _say(f"   engine/bare over the rounds: {min(ratio_uv):.3f} .. {max(ratio_uv):.3f}")
    if spread > NOISY_SPREAD:
        _say(
            f"   NOISY: the rounds disagree by {spread:.2f} (load average {host['loadavg']} at "
            "start): quote the median, or rerun on an idle machine; see also the CPU-based ratio"
        )
    _say()

    def cpu_row(name: str, pick: Callable[[tuple[Run, Run, Run]], Run], base: Run) -> tuple:
        cpu = _median(pick(t).cpu_s for t in runs)
        server = _median(pick(t).server_cpu_s / pick(t).wall_s for t in runs)
        marginal = (cpu - base.cpu_s) / rows * 10_000
        return (
            name,
            f"{cpu:.2f}",
            f"{cpu / rows * 10_000:.2f}",
            f"{base.cpu_s:.2f}",
            f"{marginal:.2f}",
            f"{_median(pick(t).cpu_s / pick(t).wall_s for t in runs):.0%}",
            f"{server:.0%}",
        )

    cpu_rows = [
        cpu_row("engine", lambda t: t[0], startup["engine"]),
        cpu_row("engine-asyncio", lambda t: t[1], startup["engine-asyncio"]),
        cpu_row("bare", lambda t: t[2], startup["bare"]),
    ]
    marginal = {row[0]: float(row[4]) for row in cpu_rows}
    cpu_ratio = marginal["bare"] / marginal["engine"]
    cpu_ratio_plain = marginal["bare"] / marginal["engine-asyncio"]
    _say(f"3. CPU (user+sys from wait4 on each child; medians of the {len(runs)} rounds)")
    _say(
        table(
            _cols(
                f"client|CPU s / {rows:,} rows|CPU s / 10k rows|start-up CPU s (1 row)|"
                "CPU s / 10k excl. start-up|client core busy|server core busy"
            ),
            cpu_rows,
        )
    )
    _say(
        f"   CPU-based ratio (bare CPU per row / engine CPU per row, start-up excluded; less "
        f"sensitive to other load): engine {cpu_ratio:.3f}, engine-asyncio {cpu_ratio_plain:.3f}"
    )
    _say()

    # 4. memory
    small, big = sorted(memory)
    rss_small, rss_big = memory[small].maxrss_mb, memory[big].maxrss_mb
    rss_growth = rss_big / rss_small
    _say("4. Peak RSS of the engine (ru_maxrss of its own process; --rate 0 --concurrency 64)")
    _say(
        table(
            ("rows", "peak RSS MB", "rows/s", "wall s"),
            [
                ("1 (start-up)", f"{startup['engine'].maxrss_mb:.1f}", "", ""),
                *[
                    (
                        f"{n:,}",
                        f"{memory[n].maxrss_mb:.1f}",
                        f"{memory[n].rate:,.0f}",
                        f"{memory[n].wall_s:.1f}",
                    )
                    for n in (small, big)
                ],
            ],
        )
    )
    _say(f"   {big:,} / {small:,} rows: {rss_growth:.3f}x")
    _say()

    # 5. pacing
    _say(
        f"5. Rate accuracy: --rate {PACE_RATE} --concurrency {CONCURRENCY}, {pacing['rows']} rows, "
        f"server allows {PACE_RATE} per sliding second + {PACE_BURST} burst, else 429"
    )
    _say(
        table(
            _cols(
                "429s (server)|429s (summary)|requests|duration s|achieved req/s|"
                "server-side arrival req/s|max arrivals in any 1 s"
            ),
            [
                (
                    pacing["server_429"],
                    pacing["summary_429"],
                    pacing["requests"],
                    f"{pacing['duration_s']:.2f}",
                    f"{pacing['achieved_rate']:.2f}",
                    f"{pacing['server_arrival_rate']:.2f}",
                    pacing["server_max_window"],
                )
            ],
        )
    )
    _say()

    # 6. limiters
    loop_name = "uvloop" if host["versions"]["uvloop"] else "asyncio"
    _say(
        f"6. Pacing alternatives in process ({loop_name} loop, {CONCURRENCY} tasks acquiring in a "
        f"loop for {limiters[0]['seconds']:.1f} s, rate {PACE_RATE}; no HTTP)"
    )
    _say(
        table(
            _cols("limiter|acquired|first 100 ms|max in any 1 s|achieved /s|after 1 s /s"),
            [
                (
                    r["limiter"],
                    r["acquired"],
                    r["first_100ms"],
                    r["max_per_1s"],
                    f"{r['achieved_rate']:.2f}",
                    f"{r['steady_rate']:.2f}",
                )
                for r in limiters
            ],
        )
    )
    _say()

    # targets
    med_uv, med_plain = _median(ratio_uv), _median(ratio_plain)
    targets = [
        (
            f"throughput engine/bare (uvloop+orjson) >= {TARGET_RATIO}",
            f"{med_uv:.3f}",
            med_uv >= TARGET_RATIO,
        ),
        (
            f"throughput engine/bare (plain asyncio) >= {TARGET_RATIO}",
            f"{med_plain:.3f}",
            med_plain >= TARGET_RATIO,
        ),
        (
            f"RSS {big:,} <= {TARGET_RSS_GROWTH}x RSS {small:,}",
            f"{rss_growth:.3f}x",
            rss_growth <= TARGET_RSS_GROWTH,
        ),
        (f"RSS {big:,} < {TARGET_RSS_MB:.0f} MB", f"{rss_big:.1f} MB", rss_big < TARGET_RSS_MB),
        ("pacing: no 429", f"{pacing['server_429']}", pacing["server_429"] == 0),
        (
            f"pacing: >= {TARGET_PACE} req/s",
            f"{pacing['achieved_rate']:.2f}",
            pacing["achieved_rate"] >= TARGET_PACE,
        ),
        (
            f"endpoint >= {HEADROOM:.0f}x fastest client (keep-alive)",
            f"{keepalive / fastest_client:.1f}x",
            headroom_ok,
        ),
    ]
    _say("Targets")
    _say(table(("target", "measured", "verdict"), [(n, m, verdict(ok)) for n, m, ok in targets]))
    _say()

    md_rows = [
        (
            f"Throughput, {rows:,} rows, --rate 0 -c {CONCURRENCY} (uvloop+orjson)",
            f"{_median(r[0].rate for r in runs):,.0f} rows/s; {med_uv:.2f}x bare aiohttp "
            f"({_median(r[2].rate for r in runs):,.0f} req/s)",
            f">= {TARGET_RATIO}x",
            verdict(med_uv >= TARGET_RATIO),
        ),
        (
            "Throughput, plain asyncio loop",
            f"{_median(r[1].rate for r in runs):,.0f} rows/s; {med_plain:.2f}x bare",
            f">= {TARGET_RATIO}x",
            verdict(med_plain >= TARGET_RATIO),
        ),
        (
            "CPU per 10k rows (engine / asyncio / bare)",
            " / ".join(c[2] + " s" for c in cpu_rows),
            "",
            "",
        ),
        (
            f"Peak RSS {small // 1000}k / {big // 1000}k rows",
            f"{rss_small:.0f} MB / {rss_big:.0f} MB ({rss_growth:.2f}x)",
            f"<= {TARGET_RSS_GROWTH}x, < {TARGET_RSS_MB:.0f} MB",
            verdict(rss_growth <= TARGET_RSS_GROWTH and rss_big < TARGET_RSS_MB),
        ),
        (
            f"--rate {PACE_RATE} vs strict {PACE_RATE}/s window",
            f"{pacing['server_429']} x 429, {pacing['achieved_rate']:.1f} req/s",
            f"0 x 429, >= {TARGET_PACE}",
            verdict(pacing["server_429"] == 0 and pacing["achieved_rate"] >= TARGET_PACE),
        ),
    ]
    _say("Markdown for the README")
    _say()
    _say(
        f"Machine: {host['nproc']} CPU ({host['cpu']}), Python {host['python']}, "
        f"aiohttp {host['versions']['aiohttp']}; client and endpoint on loopback."
    )
    _say()
    _say(markdown(("measure", "result", "target", ""), md_rows))
    _say()

    results = {
        "machine": host,
        "quick": quick,
        "elapsed_s": round(elapsed, 1),
        "children_cpu_s": round(children_cpu, 2),
        "endpoint_req_per_s": endpoint,
        "throughput": {
            "rows": rows,
            "concurrency": CONCURRENCY,
            "rounds": [
                {
                    "engine": _run_json(uv),
                    "engine_asyncio": _run_json(plain),
                    "bare": _run_json(bare),
                    "ratio": uv.rate / bare.rate,
                    "ratio_asyncio": plain.rate / bare.rate,
                }
                for uv, plain, bare in runs
            ],
            "median_ratio": med_uv,
            "median_ratio_asyncio": med_plain,
            "startup": {k: _run_json(v) for k, v in startup.items()},
            "headers": list(throughput["headers"]),
        },
        "cpu_per_10k_rows": {c[0]: float(c[2]) for c in cpu_rows},
        "cpu_per_10k_rows_excl_startup": marginal,
        "cpu_ratio": {"engine": cpu_ratio, "engine_asyncio": cpu_ratio_plain},
        "memory": {str(n): _run_json(r) for n, r in memory.items()},
        "rss_growth": rss_growth,
        "pacing": pacing,
        "limiters": limiters,
        "targets": [{"target": n, "measured": m, "pass": ok} for n, m, ok in targets],
    }
    OUT.mkdir(exist_ok=True)
    (OUT / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    _say(
        f"results: {OUT / 'results.json'}; took {elapsed:.0f} s, children {children_cpu:.0f} CPU s"
    )


def _run_json(run: Run) -> dict[str, Any]:
    return {
        "rows": run.rows,
        "rows_per_s": round(run.rate, 1),
        "duration_s": run.duration_s,
        "wall_s": round(run.wall_s, 3),
        "cpu_s": round(run.cpu_s, 3),
        "maxrss_mb": round(run.maxrss_mb, 1),
        "server_cpu_s": round(run.server_cpu_s, 3),
    }


if __name__ == "__main__":
    sys.exit(main())

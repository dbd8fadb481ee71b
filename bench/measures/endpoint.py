"""The endpoints alone, under load generators cheaper than any client (a raw asyncio socket
client, pipelined and not; `wrk` when installed), so we know the server is not the bottleneck:
keep-alive, it must answer `HEADROOM` times what the fastest client sent it in the throughput runs.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Final

from harness import CONCURRENCY, KEY, BenchError, Endpoint, loop_factory, progress
from results import Context, Result, Section, Table, Target
from servers import FastServer, Nginx

HEADROOM: Final = 3.0
PATCH_BODY: Final = (
    b'{"firstName":"Name1","companyName":"Company 1","jobTitle":"VP Sales",'
    b'"tags":["vip","enterprise"],"customFields":{"revenue":"4242424"}}'
)
# The measure that gives the fastest client against each server.
THROUGHPUT_OF: Final = {"fast_server": "throughput", "nginx": "throughput-nginx"}


def measure(ctx: Context) -> Result:
    servers: list[tuple[str, AbstractContextManager[Any]]] = [("fast_server", FastServer())]
    if not isinstance(ctx.nginx, str):
        servers.append(("nginx", Nginx(ctx.nginx, ctx.tmp, ctx.nginx_workers)))
    rows, targets, data = [], [], {}
    for name, server in servers:
        progress(f"{name} alone")
        with server as endpoint:
            probes = _probes(endpoint, ctx.tmp, ctx.probe_s)
        data[name] = probes
        throughput = ctx.results.get(THROUGHPUT_OF[name])
        fastest = throughput.data.get("fastest_client_rate") if throughput else None
        for label, rate in probes.items():
            ratio = "" if rate is None or fastest is None else f"{rate / fastest:.1f}x"
            rows.append((name, label, "not installed" if rate is None else f"{rate:,.0f}", ratio))
        keepalive = max(rate for label, rate in probes.items() if "pipelined" not in label and rate)
        if fastest is not None:
            targets.append(
                Target(
                    f"endpoint {name} >= {HEADROOM:.0f}x fastest client (keep-alive)",
                    f"{keepalive / fastest:.1f}x",
                    keepalive >= HEADROOM * fastest,
                )
            )
    title = "The endpoints alone (bench/fast_server.py, one process"
    if not isinstance(ctx.nginx, str):
        title += f"; nginx, worker_processes {ctx.nginx_workers}"
    table = Table.of("server|load generator|req/s|x fastest client", rows)
    return Result(sections=[Section(title + ")", [table])], targets=targets, data=data)


def _probes(server: Endpoint, tmp: Path, seconds: float) -> dict[str, float | None]:
    request = _request(server.port)
    answer = _answer_length(server.port, request)
    server.reset()
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        results: dict[str, float | None] = {
            "raw asyncio client, 8 conns x 32 pipelined": runner.run(
                _hammer(server.port, (request, answer), 8, 32, seconds)
            ),
            f"raw asyncio client, {CONCURRENCY} conns, keep-alive": runner.run(
                _hammer(server.port, (request, answer), CONCURRENCY, 1, seconds)
            ),
        }
    results[f"wrk -t1 -c{CONCURRENCY}, keep-alive"] = _wrk(server.url, max(1, round(seconds)), tmp)
    stats = server.stats()
    if stats is not None and "patches" in stats and stats["patches"] != stats["ok"]:
        raise BenchError(f"{server.name} answered something else than 200 under load")
    return results


def _request(port: int) -> bytes:
    return (
        b"PATCH /v1/leads/00000000000000000000abcd HTTP/1.1\r\n"
        + f"Host: 127.0.0.1:{port}\r\n".encode()
        + f"X-Api-Key: {KEY}\r\n".encode()
        + b"Content-Type: application/json\r\nUser-Agent: bulk-updater/bench\r\n"
        b"Accept: application/json\r\nAccept-Encoding: gzip, deflate\r\n"
        + f"Content-Length: {len(PATCH_BODY)}\r\n\r\n".encode()
        + PATCH_BODY
    )


def _answer_length(port: int, request: bytes) -> int:
    """Bytes in one answer (same for every answer: no chunking, a fixed-width Date)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data or len(data) < _full_length(data):
            chunk = sock.recv(65536)
            if not chunk:
                raise BenchError("the endpoint closed the connection on a plain PATCH")
            data += chunk
    if not data.startswith(b"HTTP/1.1 200"):
        raise BenchError(f"the endpoint answered {data[:40]!r} to a plain PATCH")
    return _full_length(data)


def _full_length(data: bytes) -> int:
    end = data.find(b"\r\n\r\n")
    for line in data[:end].lower().split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return end + 4 + int(line.split(b":", 1)[1])
    raise BenchError("the endpoint answered without a Content-Length")


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


async def _hammer(
    port: int, exchange: tuple[bytes, int], connections: int, depth: int, seconds: float
) -> float:
    """Requests per second the endpoint answers to a client that costs next to nothing.

    `exchange` is the request and the length of its answer, by which answers are counted.
    """
    loop = asyncio.get_running_loop()
    request, answer_len = exchange
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
        raise BenchError("the endpoint gave an unexpected answer to the load generator")
    return count / elapsed


def _wrk(url: str, seconds: int, tmp: Path) -> float | None:
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
    result = subprocess.run(
        [wrk, "-t1", f"-c{CONCURRENCY}", f"-d{seconds}s", "-s", str(script), url + "/v1/leads/x"],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=False,
    )
    for line in result.stdout.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split()[1])
    progress(f"wrk gave no rate (exit {result.returncode}): {result.stderr.strip()[:200]}")
    return None

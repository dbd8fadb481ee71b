"""A minimal, fast HTTP/1.1 endpoint for the benchmarks: `PATCH /v1/leads/{id}` -> 200.

Run as its own process so that it has a core of its own:

    python bench/fast_server.py [--port 0] [--rate 50 --burst 5]

It prints `listening <host> <port>` on stdout once it accepts connections. It is an asyncio
`Protocol` (on uvloop when installed) that parses requests incrementally: partial reads,
pipelined requests and `Content-Length` bodies; connections are kept alive.

- `PATCH /v1/leads/{id}`: `200 {"success":true,"data":{}}`; with `--rate R`, a strict limit of
  `R + burst` accepted requests in any sliding one-second window, `429` with `Retry-After: 1`
  beyond it (rejected requests do not use up the window).
- `GET /stats`: the counters as JSON; among them `checksum`, an order-independent sum of the
  CRC-32 of every PATCH's path and body, so two clients can be shown to send the same requests.
- `POST /reset`: zeroes the counters.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import signal
import sys
import time
import zlib
from typing import Any, Final, cast

_MAX_HEAD: Final = 64 * 1024
_OK_BODY: Final = b'{"success":true,"data":{}}'
_OK: Final = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    b"Content-Length: " + str(len(_OK_BODY)).encode() + b"\r\n\r\n" + _OK_BODY
)
_LIMITED_BODY: Final = (
    b'{"success":false,"error":{"code":"RATE_LIMITED","message":"Too many requests"}}'
)
_LIMITED: Final = (
    b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
    b"Content-Length: " + str(len(_LIMITED_BODY)).encode() + b"\r\n\r\n" + _LIMITED_BODY
)
_PATCH_PREFIX: Final = b"PATCH /v1/leads/"


def _response(status: str, body: bytes, *, close: bool = False) -> bytes:
    extra = b"Connection: close\r\n" if close else b""
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n".encode()
        + extra
        + b"Content-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


class Stats:
    """Counters shared by every connection (one process, one thread)."""

    def __init__(self, rate: float, burst: int) -> None:
        self.limit = int(rate) + burst if rate > 0 else 0
        self.rate = rate
        self.burst = burst
        self.reset()

    def reset(self) -> None:
        self.requests = 0  # every request, stats included
        self.patches = 0
        self.ok = 0
        self.rate_limited = 0
        self.checksum = 0
        self.first_patch: float | None = None
        self.last_patch: float | None = None
        self.max_window = 0  # most PATCH arrivals seen in any sliding second (rate mode only)
        self.accepted: collections.deque[float] = collections.deque()
        self.arrivals: collections.deque[float] = collections.deque()
        self.headers: list[str] = []
        self.connections = 0

    def as_json(self) -> bytes:
        span = (
            self.last_patch - self.first_patch
            if self.first_patch is not None and self.last_patch is not None
            else 0.0
        )
        data: dict[str, Any] = {
            "requests": self.requests,
            "patches": self.patches,
            "ok": self.ok,
            "rate_limited": self.rate_limited,
            "checksum": self.checksum,
            "span_s": round(span, 6),
            "arrival_rate": round((self.patches - 1) / span, 3) if span > 0 else None,
            "max_window": self.max_window if self.limit else None,
            "limit": {"rate": self.rate, "burst": self.burst} if self.limit else None,
            "headers": self.headers,
            "connections": self.connections,
        }
        return json.dumps(data).encode()


class HttpProtocol(asyncio.Protocol):
    """One connection: buffer what arrives, answer every complete request, keep the rest."""

    def __init__(self, stats: Stats) -> None:
        self.stats = stats
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.stats.connections += 1

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        out: list[bytes] = []
        start = 0
        close = False
        while True:
            end = buffer.find(b"\r\n\r\n", start)
            if end < 0:
                if len(buffer) - start > _MAX_HEAD:
                    out.append(_response("431 Request Header Fields Too Large", b"{}", close=True))
                    close = True
                break
            head = bytes(buffer[start:end])
            length = _content_length(head)
            if length is None:
                out.append(_response("400 Bad Request", b'{"error":"bad request"}', close=True))
                close = True
                break
            body_end = end + 4 + length
            if len(buffer) < body_end:
                break  # the body is still on its way
            out.append(self.answer(head, buffer[end + 4 : body_end]))
            start = body_end
        if start:
            del buffer[:start]
        if out and self.transport is not None:
            self.transport.write(b"".join(out) if len(out) > 1 else out[0])
            if close:
                self.transport.close()

    def answer(self, head: bytes, body: bytearray) -> bytes:
        stats = self.stats
        stats.requests += 1
        line_end = head.find(b"\r\n")
        request_line = head if line_end < 0 else head[:line_end]
        if request_line.startswith(_PATCH_PREFIX):
            path = request_line.split(b" ", 2)[1]
            now = time.monotonic()
            stats.patches += 1
            if stats.first_patch is None:
                stats.first_patch = now
                stats.headers = _header_sample(head[line_end + 2 :])
            stats.last_patch = now
            stats.checksum += zlib.crc32(body, zlib.crc32(path))
            if stats.limit and not self.admit(now):
                stats.rate_limited += 1
                return _LIMITED
            stats.ok += 1
            return _OK
        if request_line.startswith(b"GET /stats "):
            return _response("200 OK", stats.as_json())
        if request_line.startswith(b"POST /reset "):
            stats.reset()
            return _response("200 OK", b"{}")
        return _response("404 Not Found", b'{"error":"no route"}')

    def admit(self, now: float) -> bool:
        """Sliding one-second window: at most `rate + burst` accepted requests in it."""
        stats = self.stats
        arrivals = stats.arrivals
        arrivals.append(now)
        while arrivals[0] <= now - 1.0:
            arrivals.popleft()
        stats.max_window = max(stats.max_window, len(arrivals))
        accepted = stats.accepted
        while accepted and accepted[0] <= now - 1.0:
            accepted.popleft()
        if len(accepted) >= stats.limit:
            return False
        accepted.append(now)
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


def _content_length(head: bytes) -> int | None:
    """The Content-Length of a request head (0 when absent); None when unusable or chunked."""
    lowered = head.lower()
    if b"\r\ntransfer-encoding:" in lowered:
        return None  # our clients send Content-Length; chunked bodies are not needed here
    at = lowered.find(b"\r\ncontent-length:")
    if at < 0:
        return 0
    value_end = lowered.find(b"\r\n", at + 2)
    value = lowered[at + 17 : value_end if value_end >= 0 else len(lowered)].strip()
    return int(value) if value.isdigit() else None


def _header_sample(block: bytes) -> list[str]:
    """The first PATCH's header lines (sorted, Content-Length left out), the key masked."""
    lines = []
    for raw in block.split(b"\r\n"):
        name, _, value = raw.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            continue
        if name.lower() in ("x-api-key", "authorization"):
            value = " ***"
        lines.append(f"{name.lower()}:{value}")
    return sorted(lines)


async def serve(host: str, port: int, rate: float, burst: int) -> None:
    loop = asyncio.get_running_loop()
    stats = Stats(rate, burst)
    server = await loop.create_server(lambda: HttpProtocol(stats), host, port, backlog=1024)
    bound = server.sockets[0].getsockname()
    print(f"listening {bound[0]} {bound[1]}", flush=True)
    done = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, done.set)
    async with server:
        await done.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--rate", type=float, default=0.0, help="429 beyond this per second")
    parser.add_argument("--burst", type=int, default=0, help="requests allowed over --rate")
    parser.add_argument("--no-uvloop", action="store_true", help="use the default asyncio loop")
    args = parser.parse_args(argv)
    factory = None
    if not args.no_uvloop:
        try:
            import uvloop

            factory = uvloop.new_event_loop
        except ImportError:
            pass
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(serve(args.host, args.port, args.rate, args.burst))
    return 0


if __name__ == "__main__":
    sys.exit(main())

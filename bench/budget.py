"""The children the shared-budget measure needs, each a process of its own on a free loopback port.

- `RedisChild`: a `redis-server` (from `tools/ensure-redis`) with no persistence.
- `SandboxChild`: the sandbox (`bulk-updater sandbox --rate R --burst N`) run by this file as a
  script, at a real-time priority where allowed (see `_ahead_of_the_clients`); on SIGTERM it
  writes what it saw (arrivals as epoch seconds, so that they compare with the start times
  Redis records, 429s, requests) to a JSON file.
- `StartLog`: a thread that keeps every start time the shared schedule records in Redis (the
  list there holds only the latest R).

    python bench/budget.py --leads FILE --rate 60 --burst 5 --key KEY --out FILE
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from harness import BENCH, PY, ROOT, BenchError, stop, track


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def find_redis() -> str | None:
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )


class RedisChild:
    """A redis-server of the bench's own: loopback, a free port, no persistence."""

    def __init__(self, binary: str, tmp: Path) -> None:
        self.binary = binary
        self.log = tmp / "redis-server.log"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def __enter__(self) -> RedisChild:
        import redis

        self.port = free_port()
        argv = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--logfile", str(self.log)]  # fmt: skip
        self.proc = track(subprocess.Popen(argv, cwd=self.log.parent))
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 15
        while True:  # the bench may poll: it is not a test
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    stop(self.proc)
                    raise BenchError(f"redis-server did not start (see {self.log})") from None
                time.sleep(0.02)
        client.close()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            stop(self.proc)

    def cpu(self) -> float:
        from harness import cpu_seconds

        assert self.proc is not None
        return cpu_seconds(self.proc.pid)


class SandboxChild:
    """This file run as the sandbox, in a process of its own; `seen()` once it is stopped."""

    def __init__(self, leads: Path, rate: float, burst: int, key: str, out: Path) -> None:
        self.argv = [PY, str(BENCH / "budget.py"), "--leads", str(leads), "--rate", str(rate),
                     "--burst", str(burst), "--key", key, "--out", str(out)]  # fmt: skip
        self.out = out
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def __enter__(self) -> SandboxChild:
        self.proc = track(subprocess.Popen(self.argv, stdout=subprocess.PIPE, text=True, cwd=ROOT))
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 30)
        line = self.proc.stdout.readline() if ready else ""
        if not line.startswith("listening "):
            stop(self.proc)
            raise BenchError(f"the sandbox did not start (said {line.strip()!r})")
        self.url = line.split()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            stop(self.proc)

    def seen(self) -> dict[str, Any]:
        """Stop it and read what it saw."""
        self.__exit__()
        if not self.out.exists():
            raise BenchError("the sandbox wrote no arrivals")
        data: dict[str, Any] = json.loads(self.out.read_text())
        return data


class StartLog:
    """Every start time the shared schedule records for one account, read every 0.2 s.

    A start granted too late for its process to act on is taken back (and made again later):
    it is left out once a later reading no longer holds it; so is one whose request left later
    than recorded, once its record moved (the `moved` list names the old times).
    """

    def __init__(self, redis_url: str, keys: tuple[str, str, str]) -> None:
        import redis

        self.client = redis.Redis.from_url(redis_url, decode_responses=True)
        _, self.key, self.moved = keys
        self.times: set[float] = set()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> StartLog:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(10)
        self._take()
        self.client.close()

    def _take(self) -> None:
        with self.client.pipeline(transaction=True) as both:  # one reading of the two lists
            both.lrange(self.key, 0, -1)
            both.lrange(self.moved, 0, -1)
            latest, moved = both.execute()
        now = {float(t) for t in latest}
        if now:  # a start seen before, newer than the oldest kept but gone, was taken back
            oldest = min(now)
            self.times -= {t for t in self.times if t >= oldest and t not in now}
        self.times -= {float(t) for t in moved} - now
        self.times |= now

    def _run(self) -> None:
        while not self._done.wait(0.2):  # at 60/s the list holds a second of starts
            self._take()


# --- the sandbox child ------------------------------------------------------------------------


async def _serve(args: argparse.Namespace) -> dict[str, Any]:
    from bulk_updater.sandbox import Sandbox, load_leads

    sandbox = Sandbox(load_leads(args.leads), api_key=args.key, rate=args.rate, burst=args.burst)
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, done.set)
    async with sandbox:
        offset = time.time() - loop.time()  # arrivals are loop times
        print(f"listening {sandbox.url}", flush=True)
        await done.wait()
    state = sandbox.state
    return {
        "arrivals": [t + offset for t in state.arrivals],
        "rate_limited": state.rate_limited,
        "requests": state.requests,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="the sandbox, reporting its arrivals")
    parser.add_argument("--leads", required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--burst", type=int, default=0)
    parser.add_argument("--key", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    priority = _ahead_of_the_clients()
    seen = asyncio.run(_serve(args)) | {"realtime": priority}
    Path(args.out).write_text(json.dumps(seen))


def _ahead_of_the_clients() -> bool:
    """Run ahead of every client process (a real-time priority), when the system allows it.

    The sandbox stands for the API, on machines of its own; here it shares two cores with ten
    clients starting up. Left to wait for a core, it reads a request's arrival time when it next
    runs, not when the request arrived: a few requests then look bunched (61-62 in a second,
    measured, with starts Redis never let exceed 60). Its own work is small, so it starves none.
    """
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
    except (AttributeError, OSError):  # not Linux, or not allowed: measured as it is
        return False
    return True


if __name__ == "__main__":
    main()

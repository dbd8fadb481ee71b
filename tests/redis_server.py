"""A `redis-server` of the tests' own, and the starts a shared budget records in it.

A module of its own, beside `tests/conftest.py` (which holds the `redis_url` fixture): tests
import these from here (`from tests.redis_server import RedisServer`).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

import pytest


class RedisServer:
    """A `redis-server` of the tests' own on a free loopback port, with no persistence.

    `with RedisServer() as server:` starts it and stops it; `stop()` in between kills it (a
    Redis lost mid-run) and `start()` brings it back on the same port. `password` starts it
    with `--requirepass`; `url` then carries the password.
    """

    READY_TIMEOUT = 20.0

    def __init__(self, password: str | None = None) -> None:
        self.password = password
        self.port = 0
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self.log: list[str] = []

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not Path(binary).exists():
            pytest.fail("redis-server is missing: run tools/ensure-redis (make test does)")
        for _ in range(5):  # a free port may be taken by someone else before Redis binds it
            self.port = self.port or _free_port()
            if self._launch(binary):
                return
            self.port = 0
        pytest.fail("redis-server did not start:\n" + "".join(self.log[-20:]))

    def _launch(self, binary: str) -> bool:
        argv = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--daemonize", "no", "--logfile", ""]  # fmt: skip
        if self.password:
            argv += ["--requirepass", self.password]
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd="/tmp"
        )
        ready = threading.Event()
        # Reading its log is how to know it is ready (an event, not a timer); the thread keeps
        # draining it so that Redis never blocks on a full pipe.
        reader = threading.Thread(target=self._drain, args=(proc, ready), daemon=True)
        reader.start()
        self._proc, self._reader = proc, reader
        if ready.wait(self.READY_TIMEOUT) and proc.poll() is None:
            return True
        self.stop()
        return False

    def _drain(self, proc: subprocess.Popen[str], ready: threading.Event) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.log.append(line)
            if "Ready to accept connections" in line:
                ready.set()
        ready.set()  # it exited: start() looks at why

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()
            proc.wait(10)
            if self._reader is not None:
                self._reader.join(10)  # it reads to the end of the pipe, then the pipe can close
            assert proc.stdout is not None
            proc.stdout.close()

    def flush(self) -> None:
        import redis

        with redis.Redis.from_url(self.url) as client:
            client.flushall()

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def merge_starts(times: set[float], latest: Iterable[str], moved: Iterable[str] = ()) -> None:
    """Add a reading of a budget's latest starts (Redis keeps R of them) to `times`.

    A start granted too late for its process to act on is taken back and made again, and one
    that left later than recorded has its record moved: `moved` lists the old times of both, so
    they are left out (a taken-back start seen before that a later reading no longer holds,
    though newer than its oldest, is left out too).
    """
    now = {float(t) for t in latest}
    if now:
        oldest = min(now)
        times -= {t for t in times if t >= oldest and t not in now}
    times -= {float(t) for t in moved} - now
    times |= now


class RecordedStarts:
    """The start times a shared budget's schedule records in Redis, gathered by `take()`.

    The list in Redis keeps only the latest R starts, so `take()` must run at least once per R
    starts: at every request a sandbox sees, say (`SandboxThread.wait_until`'s condition).
    """

    def __init__(self, redis_url: str, base_url: str, api_key: str) -> None:
        import redis

        from bulk_updater.account import account_name
        from bulk_updater.limits.redis_budget import budget_keys

        self.client = redis.Redis.from_url(redis_url, decode_responses=True)
        _, self.key, self.moved = budget_keys(account_name(base_url, None, api_key))
        self.times: set[float] = set()

    def take(self) -> None:
        with self.client.pipeline(transaction=True) as both:  # one reading of the two lists
            both.lrange(self.key, 0, -1)
            both.lrange(self.moved, 0, -1)
            latest, moved = both.execute()
        merge_starts(self.times, latest, moved)

    def close(self) -> None:
        self.client.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port

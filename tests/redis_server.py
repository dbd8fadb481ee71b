"""A `redis-server` of the tests' own, and the starts a shared budget records in it.

A module of its own, beside `tests/conftest.py` (which holds the `redis_url` fixture): tests
import these from here (`from tests.redis_server import RedisServer`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

from tests.servers import ServerProcess


class RedisServer(ServerProcess):
    """A `redis-server` of the tests' own on a free loopback port, with no persistence.

    `with RedisServer() as server:` starts it and stops it; `stop()` in between kills it (a
    Redis lost mid-run) and `start()` brings it back on the same port. `password` starts it
    with `--requirepass`; `url` then carries the password.
    """

    PROGRAM = "redis-server"
    INSTALLER = "tools/ensure-redis"
    READY = "Ready to accept connections"

    def __init__(self, password: str | None = None) -> None:
        super().__init__()
        self.password = password

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def argv(self, binary: str) -> list[str]:
        argv = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--daemonize", "no", "--logfile", ""]  # fmt: skip
        if self.password:
            argv += ["--requirepass", self.password]
        return argv

    def folder(self) -> Path:
        return Path("/tmp")

    def flush(self) -> None:
        import redis

        with redis.Redis.from_url(self.url) as client:
            client.flushall()


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
        #: The schedule's first slot, as granted: a start that left late has its record moved
        #: to when it left, and a late first start would shorten the span `average` divides by.
        self.first_slot = math.inf

    def take(self) -> None:
        with self.client.pipeline(transaction=True) as both:  # one reading of the two lists
            both.lrange(self.key, 0, -1)
            both.lrange(self.moved, 0, -1)
            latest, moved = both.execute()
        merge_starts(self.times, latest, moved)
        self.first_slot = min([self.first_slot, *map(float, latest), *map(float, moved)])

    def average(self) -> float:
        """Starts a second over the schedule's span: from its first slot to the last start."""
        return (len(self.times) - 1) / (max(self.times) - self.first_slot)

    def close(self) -> None:
        self.client.close()

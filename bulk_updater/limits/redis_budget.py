"""The Redis side of a shared budget: the connection, the script, and what failures mean.

redis-py is imported only when a job asks for a shared budget (it is the `[redis]` extra). Each
limiter has one client: connections made at `open()`, each call of the script under a deadline
of our own, and every failure told in words that show the URL without its password.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from importlib import resources
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final

from ..errors import ConfigError
from ..settings import RedisClock
from ..urls import hide_password, scrub
from .guard import SLACK
from .pacer import LATE_GAP

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

log = logging.getLogger("bulk_updater")

SCRIPT: Final = resources.files(__package__).joinpath("schedule.lua").read_text(encoding="utf-8")
KEY_PREFIX: Final = "bulk-updater"
#: How long an account's keys outlive their last use: a day keeps a learned rate for the next
#: night's job, and an account no job uses any more leaves nothing behind for long.
KEY_TTL_MS: Final = 86_400_000
#: A Redis answers in a millisecond or two; one that takes this long (to connect, or to answer)
#: is gone.
SOCKET_TIMEOUT: Final = 2.0
#: Fresh connections tried after a failed call (a proxy that dropped an idle connection) before
#: the job stops.
RETRIES: Final = 2
#: The most connections made ahead of the first slot (one per worker, up to this; more are
#: made when the requests in flight grow).
MAX_WARM: Final = 16
#: How long connecting and the first call may take: a host busy starting several jobs at once
#: may be slow to run them, and nothing waits on a job that has not started.
OPEN_TIMEOUT: Final = 10.0
#: The values the script replaces when they are bad (it names them in its reply), in words.
REPAIRED: Final = {
    "until": "a pause ending more than an hour from now",
    "next": "a next start more than an hour away",
    "paused_at": "a pause set in the future",
    "limit": "a rate in force that is not finite, below 0.01/s or held far too long",
    "shared_rate": "a shared rate that is not a positive number",
    "starts": (
        "starts recorded in the future (with --redis-clock local, another host's clock is "
        "ahead: use --redis-clock redis, or sync the hosts' clocks)"
    ),
    "start_text": "a recorded start that is not a time",
    "epoch": "a pause count that is not a whole number",
    "streak": "a run of 429s that is not a whole number",
    "granted": "a count of starts that is not a whole number",
}


def budget_keys(account: str) -> tuple[str, str, str]:
    """The Redis keys of an account's budget: its hash, its list of latest starts, and the
    starts lately moved to when they really left (so that a reader of the starts can tell a
    moved one from a new one).

    The braces are a Redis Cluster hash tag: the keys live in one slot, as a script needs.
    """
    base = f"{KEY_PREFIX}:{{{account}}}"
    return base, f"{base}:starts", f"{base}:moved"


def _redis() -> ModuleType:
    """redis-py, imported when a job asks for a shared budget (it is an optional extra)."""
    try:
        import redis.asyncio
    except ImportError:
        raise ConfigError(
            "sharing the rate budget through Redis needs the redis package: "
            "pip install 'bulk-updater[redis]'"
        ) from None
    return redis


class BudgetStore:
    """One account's budget in one Redis: `call()` runs the script there.

    `errors` are the exceptions a call may raise when Redis fails; `at_start()` and `lost()`
    say what they mean.
    """

    def __init__(
        self,
        url: str,
        account: str,
        *,
        clock: RedisClock,
        connections: int,
        max_pause: float = float("inf"),
    ) -> None:
        """`max_pause`: the longest wait the script may tell this job of (its `--max-pause`)."""
        self._redis = _redis()
        self.url = url
        self.shown_url = hide_password(url)
        self.keys = budget_keys(account)
        self.clock = clock
        self.max_pause = max_pause
        self.errors: tuple[type[Exception], ...] = (self._redis.RedisError, TimeoutError)
        self._connections = max(1, min(connections, MAX_WARM))
        self.job = secrets.token_hex(8)  # this job, to the script (whose rate is in force)
        self._client: Redis | None = None
        self._script: AsyncScript | None = None
        self._said: set[str] = set()  # the replaced values already warned of

    @property
    def is_open(self) -> bool:
        return self._script is not None

    async def open(self, label: str, rate: float) -> list[Any] | None:
        """Connect and run the script once (its answer; None when already open); `ConfigError`
        saying why when that fails."""
        if self._client is not None:
            return None
        redis = self._redis
        try:
            client = redis.asyncio.Redis.from_url(
                self.url,
                decode_responses=True,
                socket_timeout=None,  # the deadline is ours: see `call`
                socket_connect_timeout=SOCKET_TIMEOUT,
                retry=redis.asyncio.retry.Retry(
                    redis.backoff.ExponentialBackoff(cap=0.5, base=0.05), RETRIES
                ),
                client_name="bulk-updater",
            )
            # redis-py passes the URL's query to each connection it makes, and only then finds
            # an option no connection takes (`?x=1`); one made now, unconnected, finds it here.
            client.connection_pool.make_connection()
        except (ValueError, TypeError, redis.RedisError) as exc:
            raise ConfigError(self._unusable(exc)) from None
        self._client = client
        self._script = client.register_script(SCRIPT)
        try:
            async with asyncio.timeout(OPEN_TIMEOUT):
                hello = await self.call("hello", rate, label, within=OPEN_TIMEOUT)
                # One connection per worker, made now: connecting while the first wave of slots
                # is handed out would delay some of those calls by milliseconds, bunching starts.
                await asyncio.gather(*(client.ping() for _ in range(self._connections)))
        except self.errors as exc:
            await self.close()
            raise ConfigError(self.at_start(exc)) from None
        return hello

    async def close(self) -> None:
        client, self._client, self._script = self._client, None, None
        if client is not None:
            await client.aclose()

    async def call(
        self, op: str, rate: float, arg: str = "", *, within: float | None = None
    ) -> list[Any]:
        """One run of the script (see schedule.lua for `op`, `arg` and the answer)."""
        if self._script is None:
            raise RuntimeError("RedisLimiter is not open: call `await limiter.open()` first")
        now = "" if self.clock == "redis" else f"{time.time():.6f}"
        most = repr(self.max_pause) if self.max_pause < float("inf") else ""
        args: list[str | int] = [
            op,
            now,
            repr(float(rate)),
            arg,
            repr(SLACK),
            KEY_TTL_MS,
            self.job,
            most,
            repr(LATE_GAP),
        ]
        # Not redis-py's socket timeout: it wraps each send in `asyncio.wait_for`, which on
        # Python 3.11 can swallow a cancellation, and a worker the job cancels must end.
        async with asyncio.timeout(SOCKET_TIMEOUT if within is None else within):
            reply: list[Any] = await self._script(keys=list(self.keys), args=args)
        if len(reply) > 8 and reply[8]:
            self._repaired(str(reply[8]).split())
        return reply

    def _repaired(self, names: list[str]) -> None:
        """Warn, once for each, of the bad values the script found in the keys and replaced."""
        for name in names:
            if name not in self._said:
                self._said.add(name)
                log.warning(
                    "the shared budget in Redis (%s*) held %s: replaced (said once)",
                    self.keys[0],
                    REPAIRED.get(name, name),
                )

    def at_start(self, exc: Exception) -> str:
        """Why a job cannot start: unreachable, a refused password, a script Redis refuses."""
        redis = self._redis
        where, reason = f"Redis at {self.shown_url}", self._reason(exc, OPEN_TIMEOUT)
        if isinstance(exc, redis.AuthenticationError | redis.exceptions.NoPermissionError):
            return f"{where} refused the connection ({reason}); check the password in the URL"
        if isinstance(exc, redis.ResponseError):
            return (
                f"{where} cannot run the shared schedule ({reason}); if it refuses TIME in "
                "scripts, use the local clock (--redis-clock local; see the README)"
            )
        return f"{where} is unreachable ({reason}); start it or fix the Redis URL"

    def _unusable(self, exc: Exception) -> str:
        """Why the URL cannot be used: it does not parse, or its query holds an option that no
        connection takes (redis-py says so with a `TypeError`) or a value the option does not
        take (a `RedisError`: `rediss://...?ssl_cert_reqs=bogus`)."""
        if not isinstance(exc, ValueError):
            hint = "fix or remove the options after its ?, which redis-py gives each connection"
        else:
            hint = "a / ? # or @ in its password must be percent-encoded (%2F %3F %23 %40)"
        return f"the Redis URL {self.shown_url} cannot be used ({self._reason(exc)}); {hint}"

    def lost(self, exc: Exception) -> str:
        """Why a running job stops."""
        refused = isinstance(exc, self._redis.ResponseError)  # READONLY, OOM, ...
        what = "refused the shared schedule" if refused else "is unreachable"
        return f"Redis at {self.shown_url} {what} ({self._reason(exc)}); rerun with --resume"

    def _reason(self, exc: Exception, seconds: float | None = None) -> str:
        """What redis-py said, with the password (should it echo it) taken out."""
        text = str(exc).strip()
        if not text:
            timed_out = isinstance(exc, TimeoutError)
            within = SOCKET_TIMEOUT if seconds is None else seconds
            text = f"no answer within {within:g}s" if timed_out else type(exc).__name__
        return scrub(text, self.url)

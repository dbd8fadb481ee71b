"""Rate limiters: what every request passes through before it starts, and what it learns after.

The workers see only the `Limiter` protocol: wait for a start slot (`acquire`), report each
answer (`observe`), pause every caller after a 429 (`pause`), stop, and say what the rate is
(`describe`); `open()` and `close()` around the jobs. The implementations:

| module | owns |
| --- | --- |
| `pacer.py` | `Pacer`: the fixed-rate slot schedule, the shared 429 pause (`--rate 0`) |
| `guard.py` | `StartGuard`: at most R actual starts in any sliding second, whatever the schedule |
| `limiter.py` | `AdaptiveLimiter`, the default: a schedule steered by what the answers say |
| `adaptive.py` | `RateController`: the rate learned from 429s (CUBIC), pure, time passed in |
| `hints.py` | the summary's hint after repeated cuts (`--rate auto`, `--redis`) |
| `headers.py` | `X-RateLimit-*` and IETF `RateLimit` headers read, the `Remaining`/`Reset` budget |
| `flight.py` | requests in flight that follow latency (Little's law) |
| `holds.py` | `Holds`: every wait of the whole job, capped at `--max-pause`, counted |
| `shared.py` | `RedisLimiter`: the schedule of `pacer.py` in Redis, shared by an account's jobs |
| `store.py` | the Redis side of `shared.py`: connection, script, errors in words |
| `account_state.py` | what the script's answers say of the account, and what holds a job for it |
| `status.py` | `RateStatus`, what `describe()` says |

A new limiter is a new class here; nothing else changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from ..answers import Reply
from ..settings import Settings
from .adaptive import RateController
from .holds import Holds
from .limiter import AdaptiveLimiter
from .pacer import LimiterDown, Pacer, PausePolicy, Stopped
from .status import RateStatus

__all__ = [
    "AdaptiveLimiter",
    "Departures",
    "Holds",
    "Limiter",
    "LimiterDown",
    "Pacer",
    "PausePolicy",
    "RateController",
    "RateStatus",
    "Stopped",
    "departure_hook",
    "limiter_for",
]


class Limiter(Protocol):
    """What the workers use for every request; one job at a time."""

    async def open(self) -> None:
        """Before the first job: connect to whatever the limiter keeps its state in.

        Raises `ConfigError` when that cannot be done, so that no request is sent.
        """

    async def close(self) -> None:
        """After the last job: let go of what `open()` took."""

    def begin(self) -> None:
        """A job starts: forget an earlier job's `stop()`."""

    async def acquire(self) -> None:
        """Wait for the next start slot; raise `Stopped` once `stop()` was called.

        Raises `LimiterDown` (a `Stopped`) when no slot can be had any more: the job stops.
        """

    def observe(self, reply: Reply | None, latency: float) -> None:
        """Learn from the end of one request: its answer (None: no answer came) and latency.

        Called exactly once for every `acquire()` that returned, whatever became of the request
        (a limiter may count requests in flight by it).
        """

    def pause(self, reply: Reply) -> float:
        """A 429 for the whole job: hold every caller as long as it calls for.

        Returns the seconds this answer added to the pause (0 when a longer one was running),
        so the job can tell how long it has spent paused.
        """

    @property
    def holds(self) -> Holds:
        """Every wait that holds the job (pauses, a budget of the headers, a shared pause):
        capped at `--max-pause`, counted toward `--give-up-after` (the deliverer asks)."""

    def stop(self) -> None:
        """Refuse every later `acquire()` and wake every waiter."""

    async def sleep(self, seconds: float) -> None:
        """A backoff sleep that ends early, raising `Stopped`, when the job stops."""

    def describe(self) -> RateStatus:
        """The rate allowed now, the rate settled at and why (progress line, summary)."""


@runtime_checkable
class Departures(Protocol):
    """A limiter that wants to hear as each request leaves (`on_departure`; None: it does not):
    the client calls it as it writes the request, in the task that acquired the start."""

    @property
    def on_departure(self) -> Callable[[], None] | None: ...


def departure_hook(limiter: Limiter) -> Callable[[], None] | None:
    """What the client must call as each request of `limiter`'s leaves, if anything."""
    return limiter.on_departure if isinstance(limiter, Departures) else None


def limiter_for(settings: Settings) -> Limiter:
    """The limiter a job's settings call for (the one place that chooses).

    `--rate 0` asks for no limit: the bare pacer, the fast path, nothing to learn. Any other
    rate (a ceiling, or `auto`) adapts to what the API says; with `redis_url` on a schedule
    shared through Redis (its module, and redis-py, imported only then).
    """
    if settings.rate == 0:
        return Pacer.of(settings)
    if settings.redis_url:
        from .shared import RedisLimiter

        return AdaptiveLimiter.of(settings, schedule=RedisLimiter.of(settings))
    return AdaptiveLimiter.of(settings)

"""Rate limiters: what every request passes through before it starts, and what it learns after.

The workers see only the `Limiter` protocol: wait for a start slot (`acquire`), report each
answer (`observe`), pause every caller after a 429 (`pause`), stop. `Pacer` is the fixed-rate
implementation; `RedisLimiter` (`shared.py`) runs the same schedule in Redis, so that every job
of one API account shares its budget. A new limiter (adaptive, say) is a new class here;
nothing else changes.
"""

from __future__ import annotations

from typing import Protocol

from ..answers import Reply
from ..settings import Settings
from .pacer import LimiterDown, Pacer, PausePolicy, Stopped

__all__ = ["Limiter", "LimiterDown", "Pacer", "PausePolicy", "Stopped", "limiter_for"]


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
        """Learn from the end of one request: its answer (None: no answer came) and latency."""

    def pause(self, reply: Reply) -> float:
        """A 429 for the whole job: hold every caller as long as it calls for.

        Returns the seconds this answer added to the pause (0 when a longer one was running),
        so the job can tell how long it has spent paused.
        """

    def stop(self) -> None:
        """Refuse every later `acquire()` and wake every waiter."""

    async def sleep(self, seconds: float) -> None:
        """A backoff sleep that ends early, raising `Stopped`, when the job stops."""


def limiter_for(settings: Settings) -> Limiter:
    """The limiter a job's settings call for (the one place that chooses).

    With `redis_url`, the shared budget; its module (and redis-py) is imported only then.
    """
    if settings.redis_url:
        from .shared import RedisLimiter

        return RedisLimiter.of(settings)
    return Pacer.of(settings)

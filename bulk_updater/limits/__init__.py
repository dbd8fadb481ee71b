"""Rate limiters: what every request passes through before it starts, and what it learns after.

The workers see only the `Limiter` protocol: wait for a start slot (`acquire`), report each
answer (`observe`), pause every caller after a 429 (`pause`), stop, and say what the rate is
(`describe`). Two implementations:

| module | owns |
| --- | --- |
| `pacer.py` | `Pacer`: the fixed-rate slot schedule, the shared 429 pause (`--rate 0`) |
| `limiter.py` | `AdaptiveLimiter`, the default: a `Pacer` steered by what the answers say |
| `adaptive.py` | `RateController`: the rate learned from 429s (CUBIC), pure, time passed in |
| `headers.py` | `X-RateLimit-*` and IETF `RateLimit` headers read, the `Remaining`/`Reset` budget |
| `flight.py` | requests in flight that follow latency (Little's law) |
| `status.py` | `RateStatus`, what `describe()` says |

A new limiter (shared through Redis, say) is a new class here; nothing else changes.
"""

from __future__ import annotations

from typing import Protocol

from ..answers import Reply
from ..settings import Settings
from .adaptive import RateController
from .limiter import AdaptiveLimiter
from .pacer import Pacer, PausePolicy, Stopped
from .status import RateStatus

__all__ = [
    "AdaptiveLimiter",
    "Limiter",
    "Pacer",
    "PausePolicy",
    "RateController",
    "RateStatus",
    "Stopped",
    "limiter_for",
]


class Limiter(Protocol):
    """What the workers use for every request; one job at a time."""

    def begin(self) -> None:
        """A job starts: forget an earlier job's `stop()`."""

    async def acquire(self) -> None:
        """Wait for the next start slot; raise `Stopped` once `stop()` was called."""

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

    def stop(self) -> None:
        """Refuse every later `acquire()` and wake every waiter."""

    async def sleep(self, seconds: float) -> None:
        """A backoff sleep that ends early, raising `Stopped`, when the job stops."""

    def describe(self) -> RateStatus:
        """The rate allowed now, the rate settled at and why (progress line, summary)."""


def limiter_for(settings: Settings) -> Limiter:
    """The limiter a job's settings call for (the one place that chooses).

    `--rate 0` asks for no limit: the bare pacer, the fast path, nothing to learn. Any other
    rate (a ceiling, or `auto`) adapts to what the API says.
    """
    if settings.rate == 0:
        return Pacer.of(settings)
    return AdaptiveLimiter.of(settings)

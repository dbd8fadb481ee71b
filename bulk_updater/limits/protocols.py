"""What a limiter is to the rest of the package: two small protocols, kept together here.

`Pacing` is what a worker calls for each request: wait for a start slot, report the answer,
pause every caller after a 429, sleep a backoff. `Lifecycle` is what the engine drives around
the jobs: connect and let go, start and stop a job, say what the rate is. A `Limiter` is both.
The implementations (`Pacer`, `AdaptiveLimiter`) satisfy them by their shape; none names them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from ..answers import Reply
from .holds import Holds
from .status import RateStatus


class Pacing(Protocol):
    """What a worker uses for every request of a job."""

    async def acquire(self) -> None:
        """Wait for the next start slot; raise `Stopped` once the job was stopped.

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

    async def sleep(self, seconds: float) -> None:
        """A backoff sleep that ends early, raising `Stopped`, when the job stops."""


class Lifecycle(Protocol):
    """What the engine drives around the jobs: one job at a time, between `open` and `close`."""

    async def open(self) -> None:
        """Before the first job: connect to whatever the limiter keeps its state in.

        Raises `ConfigError` when that cannot be done, so that no request is sent.
        """

    async def close(self) -> None:
        """After the last job: let go of what `open()` took."""

    def begin(self) -> None:
        """A job starts: forget an earlier job's `stop()`."""

    def stop(self) -> None:
        """Refuse every later `acquire()` and wake every waiter."""

    def describe(self) -> RateStatus:
        """The rate allowed now, the rate settled at and why (progress line, summary)."""


class Limiter(Pacing, Lifecycle, Protocol):
    """A whole limiter: the pacing its workers use and the lifecycle the engine drives."""


@runtime_checkable
class Departures(Protocol):
    """A limiter that wants to hear as each request leaves (`on_departure`; None: it does not):
    the client calls it as it writes the request, in the task that acquired the start."""

    @property
    def on_departure(self) -> Callable[[], None] | None: ...


def departure_hook(limiter: Limiter) -> Callable[[], None] | None:
    """What the client must call as each request of `limiter`'s leaves, if anything."""
    return limiter.on_departure if isinstance(limiter, Departures) else None

"""The fixed-rate limiter: start slots on a schedule, and the shared pause after a 429.

`--rate R` promises at most R request starts in any sliding one-second window, retries included,
with no burst at start-up. aiolimiter's `AsyncLimiter(R, 1)` is a leaky bucket that lets a full
bucket go at once, and with a bucket of one it loses the timer's wake-up latency on every request
(the achieved rate drifts below R). So start times are handed out as slots on a schedule instead:
each caller reserves the next free slot, `interval` after the previous one, and sleeps until it.
Lateness of one wake-up never delays later slots, and an idle gap never builds up credit, so there
is no burst after idling or after a pause either; slot holders a stalled loop wakes late catch up
at twice the rate, never in a clump (`LATE_GAP`). Slots are spaced 1% wider than 1/R so that the
server, which sees arrival times with network jitter, also counts at most R per second. A guard
on the actual start times backs this up (`guard.py`): when a stalled loop wakes several late
slot holders at once, any start that would make R+1 in one second re-queues for a later slot.

The schedule is GCRA, the generic cell rate algorithm
(https://en.wikipedia.org/wiki/Generic_cell_rate_algorithm), with no burst tolerance: the next
free slot is its theoretical arrival time, as in aiometer's `meters.py`.

`set_rate()` changes the rate from the next slot on (the adaptive limiter steers it): callers
holding a slot handed out at the old rate wake and queue again, so that neither a faster nor a
slower rate waits for the old schedule, and the guard counts the last second's starts against
the new rate.

A 429 calls `pause()`: every caller waits until the pause ends, including those already holding a
slot, and the schedule restarts from the end of the pause, never earlier than one interval after
the last slot used (a pause shorter than the gap must not move the schedule backwards). How long
to pause is `PausePolicy`'s decision: `Retry-After`, capped, or a growing backoff without it.
"""

from __future__ import annotations

import asyncio
import math
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from ..settings import Settings
from .adaptive import START_RATE
from .guard import SLACK, TICK, StartGuard
from .holds import Holds
from .status import RateStatus
from .wakeups import Wakeups

if TYPE_CHECKING:
    from ..client import Reply

#: The least spacing of actual starts, in intervals: late slot holders catch up at twice the
#: rate.
LATE_GAP: Final = 0.5

#: Statuses that do not end a run of 429s: the server did not take a request since.
NOT_ANSWERED: Final = frozenset({401, 403, 408, 429})

#: The least a `Retry-After` in whole seconds can say: "within a second".
WITHIN_A_SECOND: Final = 1.0

#: 429s right after a wait shortened from `Retry-After: 1` after which the header is honoured
#: in full for the rest of the job: the server means a whole second (a penalty box).
SHORTENED_REFUSED: Final = 1

#: What a 429's pause is for, on the progress line and in the message of a job that gives up.
TOO_MANY: Final = "429 Too Many Requests"


def answered(reply: Reply | None) -> bool:
    """Whether an answer says the API took the request (not a 429, a fault, a refused key, nor
    a 2xx that is not the API's answer): the time a job was held starts again from zero."""
    return (
        reply is not None
        and reply.status < 500
        and reply.status not in NOT_ANSWERED
        and not reply.malformed
    )


def _interval(rate: float) -> float:
    """Seconds between slots: at most R starts in any second is floor(R) for R >= 1 (2.5: 2)."""
    per_second = math.floor(rate) if rate >= 1 else rate
    return SLACK / per_second if rate else 0.0


class Stopped(Exception):
    """The job is stopping: no more requests may start."""


class LimiterDown(Stopped):
    """The limiter can hand out no more slots (a shared budget's store is gone): the job stops
    as an outage, with `message`, rather than go on with a budget it does not share."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class GivenUp(Stopped):
    """The job was held longer than `--give-up-after` with no request taken (`Holds.given_up`,
    whose `message` says so): it stops as an outage, the way a failure or a 429 over it does."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def give_up_if_held(holds: Holds) -> None:
    """Raise `GivenUp` once `holds` is over `--give-up-after`: a limiter calls it right after a
    hold, so a hold that no answer ends (the account's rate in force) still stops the job."""
    why = holds.given_up()
    if why is not None:
        raise GivenUp(why)


def equal_jitter(failures: int, base: float, cap: float) -> float:
    """Exponential backoff after the `failures`-th failure (1-based), with equal jitter: half the
    ceiling fixed, half random (https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/).
    """
    ceiling = min(cap, base * 2.0 ** min(failures - 1, 30))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


@dataclass(frozen=True, slots=True)
class PausePolicy:
    """How long a 429 pauses the job: `Retry-After`, at least a growing backoff; capped."""

    backoff_base: float
    backoff_max: float
    max_pause: float
    give_up_after: float = 600.0

    @classmethod
    def of(cls, settings: Settings) -> PausePolicy:
        return cls(
            settings.backoff_base, settings.backoff_max, settings.max_pause, settings.give_up_after
        )

    def holds(self) -> Holds:
        """A job's holds under this policy: capped at `max_pause`, given up after
        `give_up_after`."""
        return Holds(self.max_pause, self.give_up_after)

    def seconds(self, retry_after: float | None, streak: int, within: bool = True) -> float:
        """The pause for the `streak`-th 429 in a row (1-based): `Retry-After`, or for the
        first of a run, the backoff when it says one whole second and `within` (it is read as
        "within a second").

        The backoff that would apply without the header is also its floor: a `Retry-After` of
        now, 0 or a date in the past must not turn the job into a burst of 429s.
        """
        floor = equal_jitter(streak, self.backoff_base, self.backoff_max)
        if retry_after == WITHIN_A_SECOND and streak == 1 and within:
            # `Retry-After: 1`, in whole seconds rounded up, says "within a second": a sliding
            # window has room again a few ms on, a bucket after one refill. The first 429 of a
            # run waits the backoff only (the rate was cut); a second in a row waits it all.
            return min(floor, self.max_pause)
        return min(max(retry_after or 0.0, floor), self.max_pause)


@dataclass(slots=True)
class RetryAfterReading:
    """How a job reads `Retry-After: 1`: "within a second" (its first wait shortened, see
    `PausePolicy.seconds`) until `SHORTENED_REFUSED` pauses show the server meant a whole
    second: the request right after the shortened wait was refused too. From then on it is
    honoured in full, one 429 per event instead of two."""

    within: bool = True
    shortened: bool = False  # the latest pause was shortened
    refused_after: int = 0  # pauses that came right after a shortened one

    def seconds(
        self, policy: PausePolicy, retry_after: float | None, streak: int, new: bool
    ) -> float:
        """The pause for a 429 (`new`: none was running when it came, so its request started
        after the latest pause ended)."""
        if new:
            if streak > 1 and self.shortened:
                self.refused_after += 1
                self.within = self.refused_after < SHORTENED_REFUSED
            self.shortened = self.within and retry_after == WITHIN_A_SECOND and streak == 1
        return policy.seconds(retry_after, streak, self.within)


class Pacer:
    """Hands out request start times: at most `rate` per second (0 = no limit), paused on demand."""

    def __init__(self, rate: float, policy: PausePolicy | None = None) -> None:
        if rate < 0:
            raise ValueError("rate must be 0 (no limit) or more")
        self.rate = rate
        self.policy = policy or PausePolicy.of(Settings())
        self.holds = self.policy.holds()
        self.pauses = 0  # new pauses for 429s, for the summary's hint
        self._pause_streak = 0  # 429 pauses since the last answer that was not one
        self.reading = RetryAfterReading()
        self._interval = _interval(rate)
        self._next_slot = 0.0
        self._last_slot = -math.inf  # the slot of the latest start: a pause never restarts before
        self._resume_at = 0.0
        self._generation = 0  # bumped by every pause, so slot holders know to queue again
        self._stopped = False
        self._slot_waits = Wakeups()  # woken when slots handed out become invalid, or a stop
        self._backoffs = Wakeups()  # woken by a stop
        self._guard = StartGuard(rate)  # the hard limit on actual starts, whatever the schedule

    @classmethod
    def of(cls, settings: Settings) -> Pacer:
        """The pacer for a job's settings: their rate held fixed (`auto` has no number to hold,
        so it starts where the adaptive limiter starts)."""
        ceiling = settings.ceiling
        return cls(START_RATE if ceiling is None else ceiling, PausePolicy.of(settings))

    async def open(self) -> None:
        """Nothing to connect to: the schedule lives in this process."""

    async def close(self) -> None:
        """Nothing to let go of."""

    def begin(self) -> None:
        self._stopped = False

    @property
    def resumes_at(self) -> float:
        """Loop time at which the latest pause ends (in the past when none is running)."""
        return self._resume_at

    def set_rate(self, rate: float) -> None:
        """Hand out slots at `rate` (> 0) from now on; callers holding a slot queue again."""
        if not rate > 0:
            raise ValueError("set_rate() needs a rate above 0")
        self.rate = rate
        interval = _interval(rate)
        if interval == self._interval:
            return
        self._interval = interval
        self._guard.set_rate(rate)
        self._next_slot = max(self._resume_at, self._last_slot + interval)
        self._generation += 1
        self._slot_waits.wake()

    def describe(self) -> RateStatus:
        """A fixed rate: what it is, and a hint when 429s kept pausing it; a pause running."""
        holds = self.holds
        paused = holds.left(asyncio.get_running_loop().time())
        if not self.rate:
            return RateStatus(None, None, "no limit (--rate 0)", None, paused, holds.why)
        hint = None
        if self.pauses >= 3:
            hint = (
                f"{self.pauses} pauses for 429s at a fixed {self.rate:g}/s: "
                "--rate auto finds the API's limit by itself"
            )
        why = f"fixed at {self.rate:g}/s"
        return RateStatus(self.rate, self.rate, why, hint, paused, holds.why)

    def is_paused(self) -> bool:
        return asyncio.get_running_loop().time() < self._resume_at

    async def acquire(self) -> None:
        """Wait for the next start slot; raises `Stopped` once `stop()` was called."""
        loop = asyncio.get_running_loop()
        while True:
            if self._stopped:
                raise Stopped
            now = loop.time()
            generation = self._generation
            if self._resume_at - now > TICK:
                await self._wait(self._resume_at - now)
                continue
            if not self._interval:
                return
            slot = max(self._next_slot, now)
            self._next_slot = slot + self._interval
            if slot > now:
                await self._wait(slot - now)
            while (gap := self._too_close(loop.time())) and generation == self._generation:
                await self._wait(gap)  # late: a stall's backlog goes out spread, not in a clump
            if self._stopped:
                raise Stopped
            if generation != self._generation:
                continue  # a pause came while waiting: queue again behind it
            now = loop.time()
            free = self._guard.free_at(now)
            if free is not None:
                # Late (a stalled loop): starting now would put R+1 starts in one second.
                self._next_slot = max(self._next_slot, free + TICK)
                continue
            self._guard.start(now)
            self._last_slot = max(self._last_slot, slot)
            return

    def _too_close(self, now: float) -> float:
        """How long a start now must wait to be `LATE_GAP` intervals after the latest (0: it
        need not). Slot holders that a stalled loop wakes late go out at twice the rate, never
        all at once: an API with a small bucket under its per-second limit refuses a clump."""
        latest = self._guard.latest
        if latest is None or self._stopped:
            return 0.0
        gap = latest + LATE_GAP * self._interval - now
        return gap if gap > TICK else 0.0

    async def _wait(self, delay: float, wakeups: Wakeups | None = None) -> None:
        """Sleep, but wake at once when the job stops, or when `wakeups` (by default, a change
        of the schedule, which a stop is too) are woken."""
        if not self._stopped:
            await (wakeups or self._slot_waits).sleep(delay)

    def observe(self, reply: Reply | None, latency: float) -> None:
        """A fixed rate learns nothing, except that the server has stopped answering 429 (and
        so has taken a request: the time held starts again)."""
        if answered(reply):
            self._pause_streak = 0
            self.holds.answered()

    def pause(self, reply: Reply) -> float:
        """Pause every caller for the 429's `Retry-After`, or a backoff; the seconds added."""
        now = asyncio.get_running_loop().time()
        new = now >= self._resume_at
        seconds = self.reading.seconds(self.policy, reply.retry_after, self._pause_streak + 1, new)
        added = max(0.0, now + seconds - max(now, self._resume_at))
        if self.hold(seconds):
            self._pause_streak += 1
            self.pauses += 1
        self.holds.hold(now, seconds, TOO_MANY)
        return added

    def hold(self, seconds: float) -> bool:
        """Hold every caller for `seconds` from now; True if this started a new pause."""
        now = asyncio.get_running_loop().time()
        new = now >= self._resume_at
        until = now + seconds
        if until > self._resume_at:
            self._resume_at = until
            self._next_slot = max(until, self._last_slot + self._interval)
            self._generation += 1
        return new

    def stop(self) -> None:
        """Refuse every later `acquire()` and wake all waiters."""
        self._stopped = True
        self._slot_waits.wake()
        self._backoffs.wake()

    async def sleep(self, seconds: float) -> None:
        """A backoff sleep that ends early, raising `Stopped`, when the job stops."""
        await self._wait(seconds, self._backoffs)
        if self._stopped:
            raise Stopped

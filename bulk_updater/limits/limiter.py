"""`AdaptiveLimiter`: the default limiter, a `RateController` steering a `Pacer`'s schedule.

The pacer keeps its guarantees at whatever rate it is set to (no burst at start-up or after a
pause, at most R starts in any sliding second, slots `1.01/R` apart); this class decides R, and
adds two gates in front of it. Per request:

- `acquire()`: room in flight (`FlightCap`, unless `--concurrency` fixes the number of
  workers), then the headers' `Allowance` (never more starts than `Remaining` before `Reset`),
  then a slot on the pacer's schedule.
- `observe()`: the latency (its p90 sizes the room in flight), the rate-limit headers (the
  limit they state becomes the rate, `Remaining` and `Reset` the budget), and the answer: a
  success lets the controller grow the rate, which reaches the pacer when its whole part
  changes (the only part the schedule uses).
- `pause()`: a 429 for the whole job. The controller cuts the rate, then the pacer pauses every
  caller for `Retry-After`, which always wins; without one, for the reset the rate-limit headers
  give when they say nothing is left; at least for the backoff. Growth starts again when the
  pause ends.

Every wait of theirs is capped by `--max-pause` (`Allowance`, `Holds`). A budget held to longer
than that is overridden: a request goes, and if the API takes it while its answer still says
nothing is left, the headers are wrong and pace nothing more (`Remaining`, `Reset`, and the
limit whose window the resets implied), so a job against such an API finishes instead of
waiting a day per answer.

A limit the headers state is used as `quota / (window + 2 * p90 latency)`: the window less the
time requests spend in flight, so that `Remaining` stays above the requests already on their
way and the budget rarely has to hold a start back.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, Protocol, runtime_checkable

from ..settings import Settings
from .adaptive import Growth, RateController
from .flight import FlightCap, Latencies, needed
from .headers import Allowance, Complaints, WindowGuess, read_hint
from .hints import CutLevels, rate_hint
from .holds import Holds
from .pacer import Pacer, PausePolicy, Stopped, give_up_if_held
from .status import RateStatus

if TYPE_CHECKING:
    from ..answers import Reply

log = logging.getLogger("bulk_updater")

#: How many p90 latencies of the window a stated limit leaves to requests in flight.
LATENCY_MARGIN: Final = 1.0
#: Answers in a row that took a request while their headers stated a quota of 0, after which
#: the headers are ignored: one may be a glitch, a run of them is how the API answers.
BELIED: Final = 3
#: How long the rest of a job waits for the first request's answer: the headers of one answer
#: say the limit, so a job at `--rate 400` does not send a clump into a small bucket first.
FIRST_ANSWER_WAIT: Final = 1.0
#: What a hold of the headers' budget is for, on the progress line.
NOTHING_LEFT: Final = "rate-limit headers: 0 left"


class Schedule(Protocol):
    """What hands out the start slots at the rate this limiter sets: a `Pacer` in this process,
    or a `RedisLimiter` (`shared.py`) for a budget shared with every job of the account."""

    rate: float
    holds: Holds

    @property
    def resumes_at(self) -> float: ...
    async def open(self) -> None: ...
    async def close(self) -> None: ...
    def begin(self) -> None: ...
    async def acquire(self) -> None: ...
    def observe(self, reply: Reply | None, latency: float) -> None: ...
    def pause(self, reply: Reply) -> float: ...
    def set_rate(self, rate: float) -> None: ...
    def stop(self) -> None: ...
    async def sleep(self, seconds: float) -> None: ...


@runtime_checkable
class SharedSchedule(Schedule, Protocol):
    """A schedule shared by the jobs of an account, which can carry a learned rate to them."""

    def share_rate(self, rate: float) -> None: ...
    def shared_rate(self) -> float | None: ...
    def account_starts(self, now: float) -> float | None: ...
    def departed(self) -> None: ...
    @property
    def account_rate(self) -> float: ...


def _whole(rate: float) -> float:
    """The part of a rate the schedule uses: whole requests per second (tenths below 1)."""
    return math.floor(rate) if rate >= 1 else round(rate, 1)


class AdaptiveLimiter:
    """Paces requests at the rate the API accepts, below an optional ceiling (`--rate N`)."""

    def __init__(
        self,
        ceiling: float | None,
        *,
        policy: PausePolicy | None = None,
        concurrency: int | None = None,
        cap: int = 64,
        growth: Growth | None = None,
        schedule: Schedule | None = None,
    ) -> None:
        """`schedule`: where the slots come from (default: a `Pacer` of this process's own)."""
        self._shared = schedule if isinstance(schedule, SharedSchedule) else None
        measure = self._shared.account_starts if self._shared is not None else None
        self.controller = RateController(ceiling, growth=growth, measure=measure)
        self.pacer: Schedule = schedule or Pacer(self.controller.rate, policy)
        if schedule is not None:
            schedule.set_rate(self.controller.rate)
        self.ceiling = ceiling
        self._cap = cap
        # With a fixed concurrency the workers are the cap; else room follows the latency.
        self._flight = (
            FlightCap(needed(self.controller.rate, None, cap)) if not concurrency else None
        )
        self._latencies = Latencies()
        self.holds = self.pacer.holds  # one account of the job's waits, the schedule's own
        self._budget = Allowance()
        self._trusted = True  # False once the answers contradicted `Remaining: 0`
        self._belied = 0  # answers in a row taken while their headers said none would be
        self._heard = False  # whether the first request has been answered (or not)
        self._first_answer_after = -math.inf  # until then, no other request starts
        self._windows = WindowGuess()
        self._complain = Complaints(log)
        self._budget_changed = asyncio.Event()
        self._stopped = False
        self._refused: tuple[Reply, float] | None = None  # the latest 429 and its start
        self._levels = CutLevels()

    @classmethod
    def of(cls, settings: Settings, schedule: Schedule | None = None) -> AdaptiveLimiter:
        """The limiter for a job's settings: `rate` is the ceiling (`auto`: none)."""
        return cls(
            settings.ceiling,
            policy=PausePolicy.of(settings),
            concurrency=settings.concurrency,
            cap=settings.in_flight_cap,
            schedule=schedule,
        )

    async def open(self) -> None:
        """Open the schedule; a shared one may hand over the limit another job found."""
        await self.pacer.open()
        found = self._shared.shared_rate() if self._shared is not None else None
        if found is not None and self.controller.plateau is None:
            self.controller.seed(found, asyncio.get_running_loop().time())
            self._steer()

    async def close(self) -> None:
        await self.pacer.close()

    @property
    def on_departure(self) -> Callable[[], None] | None:
        """What the client calls as each request leaves: a shared schedule moves the record of
        a start that left late; None when no schedule needs to know (a `Pacer`'s own)."""
        return self._shared.departed if self._shared is not None else None

    @property
    def in_flight_limit(self) -> int | None:
        """The room in flight now (None: the workers are the limit)."""
        return self._flight.limit if self._flight is not None else None

    def begin(self) -> None:
        self._stopped = False
        self.pacer.begin()
        if self._flight is not None:
            self._flight.reset()

    async def acquire(self) -> None:
        flight = self._flight
        if flight is not None and not flight.take():
            await flight.enter()
        loop = asyncio.get_running_loop()
        try:
            while True:
                if self._stopped:
                    raise Stopped
                now = loop.time()
                if self._first_answer_after > now:  # one request goes first, then the rest
                    await self._wait_for_budget(self._first_answer_after - now)
                    continue
                closed_until = self._budget.closed_until(now, self.holds.max_pause)
                if closed_until is not None:
                    self.holds.hold(now, closed_until - now, NOTHING_LEFT)
                    give_up_if_held(self.holds)  # no answer ends this hold: check it here
                    await self._wait_for_budget(closed_until - now)
                    continue
                await self.pacer.acquire()
                if self._budget.closed_until(loop.time(), self.holds.max_pause) is None:
                    break  # an answer that came while waiting for the slot may have used it up
        except BaseException:
            if flight is not None:
                flight.leave()
            raise
        now = loop.time()
        self._budget.start(now)
        if not self._heard and self._first_answer_after == -math.inf:
            self._first_answer_after = now + FIRST_ANSWER_WAIT

    async def _wait_for_budget(self, delay: float) -> None:
        """Until the budget's reset, a new answer (a new budget) or a stop."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(delay, 0.0)):
                await self._budget_changed.wait()

    def _budget_news(self) -> None:
        self._budget_changed.set()
        self._budget_changed = asyncio.Event()

    def observe(self, reply: Reply | None, latency: float) -> None:
        if self._flight is not None:
            self._flight.leave()
        if not self._heard:
            self._heard, self._first_answer_after = True, -math.inf
            self._budget_news()
        self.pacer.observe(reply, latency)  # an answer the API took ends the time held
        if reply is None:
            return  # no answer (a timeout, a dropped connection): nothing about the limit
        now = asyncio.get_running_loop().time()
        started = now - latency
        self._latencies.add(latency)
        if reply.headers is not None:
            self._read(reply, started, now)
        status = reply.status
        if status == 429:
            self._refused = (reply, started)  # `pause()` decides whether it is the job's
            return
        if status < 500 and status != 408:  # the API took it (a fault says nothing of the rate)
            self.controller.accepted(now, started)
        self._steer()

    def _read(self, reply: Reply, started: float, now: float) -> None:
        """What the rate-limit headers say: the budget, and the limit as a rate."""
        hint = read_hint(reply.headers, time.time(), self._complain)
        if hint is None:
            return
        if reply.status < 300 and self._trusted:
            # A quota of 0 stated on an answer that took the request: a few in a row, whatever
            # the hold, and the headers are wrong (they would pace the job at one per reset).
            self._belied = self._belied + 1 if hint.none_allowed else 0
            if self._belied >= BELIED:
                self._distrust(
                    reply,
                    f"while its rate-limit headers said it allows 0 ({self._belied} in a row)",
                )
            elif self._budget.contradicted(started, hint.remaining):
                self._distrust(
                    reply,
                    "sent after its rate-limit headers had said for --max-pause "
                    f"{self.holds.max_pause:g}s that nothing was left (for {hint.reset or 0:.0f}s "
                    "more)",
                )
        if self._trusted and hint.remaining is not None and hint.reset is not None:
            reset = hint.reset
            if reply.retry_after is not None:  # Retry-After always wins, even over the budget
                reset = min(reset, reply.retry_after)
            self._budget.learn(started, hint.remaining, reset, now)
            self._budget_news()
        in_flight = LATENCY_MARGIN * (self._latencies.p90 or 0.0)
        stated = self._windows.stated(hint, in_flight) if self._trusted else None
        if stated is not None:
            self.controller.state_limit(stated[0], now, stated[1])

    def _distrust(self, reply: Reply, why: str) -> None:
        """The API took a request that its headers said it would not: from now on their
        `Remaining`, `Reset` and the limit they state pace nothing (429s still do)."""
        self._trusted = False
        self._budget = Allowance(self._budget)
        self._budget_news()
        self.controller.unstate(asyncio.get_running_loop().time())  # its window came from them
        self._steer()
        log.warning(
            "the API answered %d to a request %s: what they say of the limit is ignored for "
            "the rest of the job",
            reply.status,
            why,
        )

    def _steer(self) -> None:
        """Hand the controller's rate to the pacer, and size the room in flight for it."""
        rate = self.controller.rate
        if _whole(rate) != _whole(self.pacer.rate):
            self.pacer.set_rate(rate)
        if self._flight is not None:
            self._flight.resize(needed(rate, self._latencies.p90, self._cap))

    def pause(self, reply: Reply) -> float:
        now = asyncio.get_running_loop().time()
        refused, self._refused = self._refused, None
        started = refused[1] if refused is not None and refused[0] is reply else now
        paused_lately = now - self.pacer.resumes_at < 1.0
        cut = self.controller.refused(now, started, self._budget.sent_rate(started))
        self._steer()
        plateau = self.controller.plateau
        # The first cut guesses more; one within a second of a pause measured a second that
        # held the pause: neither is a level the limit was found at.
        if cut and plateau is not None and self.controller.cuts > 1 and not paused_lately:
            self._levels.add(plateau)
        if cut and self._shared is not None and plateau is not None:
            self._shared.share_rate(plateau)  # every job of the account starts from it next
        if reply.retry_after is None and self._trusted:  # Retry-After wins; else the reset
            hint = read_hint(reply.headers, time.time(), self._complain)
            if hint is not None and hint.remaining == 0 and hint.reset is not None:
                reply = dataclasses.replace(reply, retry_after=hint.reset)
        added = self.pacer.pause(reply)
        self.controller.resume_at(self.pacer.resumes_at)
        return added

    def stop(self) -> None:
        self._stopped = True
        self.pacer.stop()
        self._budget_news()
        if self._flight is not None:
            self._flight.wake_all()

    async def sleep(self, seconds: float) -> None:
        await self.pacer.sleep(seconds)

    def describe(self) -> RateStatus:
        """The rate now, the rate settled at and why, and a hint after repeated cuts."""
        controller = self.controller
        hint = rate_hint(controller, self.ceiling, self._levels, self._shared is not None)
        now = asyncio.get_running_loop().time()
        settled, why = controller.settled(now), controller.why()
        holds = self.holds
        current = controller.rate
        if self._shared is not None:  # another job's lower rate holds this one to it
            current = min(current, self._shared.account_rate)
        return RateStatus(current, settled, why, hint, holds.left(now), holds.why)

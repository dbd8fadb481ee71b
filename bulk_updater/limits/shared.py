"""The rate budget of one API account, shared through Redis by every job that uses it.

A SendKit limit belongs to the account, not to one process. `RedisLimiter` keeps the pacer's
schedule in Redis: one hash per account (`account_name()`) holds the next free start time, and
one atomic Lua script (`schedule.lua`, GCRA with no burst) hands out slots on it, `1.01/R`
apart, as `Pacer` does. A caller sleeps until its slot, then asks once more to start: the
script records the start and refuses one that would make R + 1 starts in any sliding second,
or one right next to the latest (late holders go out spread). A grant the process was too slow
to act on (`_late`) is given back, and a request that leaves later than its record moves it
(`departures.py`): the starts are real departures. Each job also counts its own (`guard.py`).

- **Time.** The script reads the Redis server's `TIME` (`clock="redis"`): one clock for every
  host. `clock="local"`, for a Redis that refuses `TIME` in scripts, passes each caller's wall
  clock instead, which is as good as the hosts' clock sync.
- **Pauses.** A 429 pauses every process: the pause-until time is in the hash, and a pause
  moves every slot holder behind it (an epoch changes). Its length comes from `PausePolicy`,
  with the run of 429s counted in Redis. Each job honours it for at most its own
  `--max-pause`, and counts it toward its `--give-up-after`; a bad value in the keys is
  replaced, with one warning.
- **Rates.** An `AdaptiveLimiter` (`limiter.py`) steers this schedule as it steers a `Pacer`;
  the lowest rate of the jobs running holds for all of them, so one job's cut slows every job.
  The level a job found 429s above is shared (`share_rate()`), and a later job begins from it.
  What each answer says of the account is kept in `account_state.py`.
- **Failure.** `open()` raises `ConfigError` when Redis cannot be reached (nothing is sent);
  losing it later makes `acquire()` raise `LimiterDown`, which stops the job as an outage. It
  never falls back to a budget of its own. A password in the URL is never shown.

`redis_budget.py` is the Redis side (the connection, the script call and its deadline, errors);
`schedule_calls.py` makes the calls, keeps what their answers say, and sends what the caller
need not wait for (a pause, a rate, late departures).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from ..account import account_label, account_name
from ..settings import RedisClock, Settings
from .account_state import AccountState, pause_why
from .adaptive import START_RATE
from .departures import LateDepartures
from .guard import SLACK, TICK, StartGuard
from .pacer import (
    TOO_MANY,
    LimiterDown,
    PausePolicy,
    RetryAfterReading,
    Stopped,
    answered,
    give_up_if_held,
)
from .redis_budget import BudgetStore
from .schedule_calls import ScheduleCalls
from .status import RateStatus

if TYPE_CHECKING:
    from ..answers import Reply

log = logging.getLogger("bulk_updater")

#: How much later than its slot a start may be acted on: half the 1% margin (5 ms a second),
#: so that the other half covers the way to the server.
LATE: Final = (SLACK - 1) / 2
#: Late starts one caller asks again for before it takes one anyway: on a host too busy for
#: any start to be on time, the job must still go on (the API's tolerance then covers it).
MAX_LATE: Final = 20

# The script's answers to `acquire` (see schedule.lua).
_GO = 1
_PAUSED = 3


class RedisLimiter:
    """Start slots from the account's schedule in Redis: at most `rate` per second, shared.

    `url` is a redis-py URL, `account` the name of the budget (`account_name()`); `label` says
    which account it is to a person reading the keys; `connections` is how many callers may
    ask at once (the job's concurrency). `open()` before the first job, `close()` after the
    last (`BulkUpdater` does both).
    """

    def __init__(
        self,
        url: str,
        *,
        rate: float,
        account: str,
        label: str = "",
        policy: PausePolicy | None = None,
        clock: RedisClock = "redis",
        connections: int = 8,
    ) -> None:
        if not rate > 0:
            raise ValueError("rate must be more than 0: a shared budget needs a limit")
        self.policy = policy or PausePolicy.of(Settings())
        self.holds = self.policy.holds()  # another job's pause holds this one at most so long
        self._store = BudgetStore(
            url, account, clock=clock, connections=connections, max_pause=self.policy.max_pause
        )
        self.url = url
        self.shown_url = self._store.shown_url
        self.rate = rate
        self.account = account
        self.clock = clock
        self._label = label
        self._halt = asyncio.Event()  # set by stop() and by a lost Redis: wakes every waiter
        self._stopped = False
        self._resume_at = 0.0  # loop time at which the pause, as last heard of, ends
        self._generation = 0  # bumped by every pause this process starts or extends
        self.reading = RetryAfterReading()
        self._account = AccountState(rate)  # as the script's latest answer said
        self.calls = ScheduleCalls(self._store, self._account, lambda: self.rate, self._halt)
        self._departures = LateDepartures(functools.partial(self.calls.send, "depart"), LATE)
        # This job's own starts: whatever Redis grants (hosts' clocks that disagree make each
        # read the other's starts as long past), never more than its rate by its own count.
        self._guard = StartGuard(rate)

    @classmethod
    def of(cls, settings: Settings) -> RedisLimiter:
        """The shared schedule for a job's settings (`redis_url` must be set), at the rate the
        adaptive limiter steering it starts at (it sets the rate from then on)."""
        assert settings.redis_url is not None
        key = settings.api_key.get_secret_value() if settings.api_key else ""
        return cls(
            settings.redis_url,
            rate=settings.ceiling or START_RATE,
            account=account_name(settings.base_url, settings.workspace_id, key),
            label=account_label(settings.base_url, settings.workspace_id),
            policy=PausePolicy.of(settings),
            clock=settings.redis_clock,
            connections=settings.in_flight_cap,
        )

    def __repr__(self) -> str:  # never the password
        return f"RedisLimiter({self.shown_url!r}, rate={self.rate}, account={self.account!r})"

    # --- connection

    async def open(self) -> None:
        """Connect and run the script once; `ConfigError` (URL shown without its password)
        when Redis cannot be reached, refuses the password or cannot run the script."""
        hello = await self._store.open(self._label, self.rate)
        if hello is not None and hello[4]:
            self._account.shared_rate = float(hello[4])
        log.info(
            "sharing the rate budget of %s through Redis at %s (keys %s*)",
            self._label,
            self.shown_url,
            self._store.keys[0],
        )

    async def close(self) -> None:
        """Let pending messages (a pause, a rate) reach Redis, then disconnect."""
        await self.calls.close()

    # --- the Limiter protocol

    def begin(self) -> None:
        self._stopped = False
        self.calls.lost = None
        self._halt.clear()

    def _check(self) -> None:
        if self.calls.lost is not None:
            raise LimiterDown(self.calls.lost)
        if self._stopped:
            raise Stopped

    async def acquire(self) -> None:
        """Wait for a start slot from the shared schedule; `Stopped` once `stop()` was called,
        `LimiterDown` once Redis is lost."""
        loop = asyncio.get_running_loop()
        op, held = "acquire", ""  # `held`: the epoch of the slot this caller holds
        late = 0
        while True:
            self._check()
            now = loop.time()
            if self._resume_at - now > TICK:
                await self._wait(self._resume_at - now)
                op, held = "acquire", ""
                continue
            free = self._guard.free_at(now)
            if free is not None:
                await self._wait(free - now)
                continue
            generation = self._generation
            asked = loop.time()
            self._guard.start(asked)  # held for this call: others asking meanwhile count it
            try:
                reply = await self.calls.call(op, held)
            except self._store.errors as exc:
                raise self.calls.lose(exc) from None
            finally:
                self._guard.forget(asked)
            slow = self._late(loop.time() - asked)
            self._check()
            code, seconds = int(reply[0]), float(reply[1])
            if code == _GO:
                if not slow or late >= MAX_LATE:
                    self._departures.granted(str(reply[6]), asked)
                    self._guard.start(loop.time())
                    return
                # Granted while this process was too slow to act on it: start again, now.
                late += 1
                op, held = "restart", f"{reply[2]} {reply[6]}"
                continue
            op = "acquire"
            if code == _PAUSED:  # another process's 429: hold here, not in Redis
                self._held_elsewhere(reply)
                give_up_if_held(self.holds)
                held = ""
                continue
            # A start listed ahead, another job's lower rate: a hold, shown and counted.
            hold = self._account.slot_hold(seconds, self.rate, len(reply) > 9 and bool(reply[9]))
            if hold is not None:
                self.holds.hold(loop.time(), seconds, hold)
                give_up_if_held(self.holds)  # no answer ends this hold: check it here
            await self._wait(seconds)
            held = str(reply[2]) if generation == self._generation else ""

    @property
    def on_departure(self) -> Callable[[], None]:
        """Used as the limiter itself (a fixed shared rate), it follows its requests too."""
        return self.departed

    def departed(self) -> None:
        """The request this task was granted a start for is leaving now (the client calls this
        as it writes the request): if that is more than `LATE` after the grant, its record in
        Redis moves to now (`departures.py`)."""
        task = self._departures.departed()
        if task is not None:
            self.calls.keep(task)

    def _late(self, round_trip: float) -> bool:
        """Whether a start granted during this round trip may leave too late (`departures.py`)."""
        return self._departures.slow(round_trip)

    async def _wait(self, delay: float) -> None:
        """Sleep, but wake at once when the job stops or Redis is lost."""
        if self._halt.is_set():
            return
        # Not wait_for: on 3.11 it can swallow a cancellation that arrives as the event is set.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._halt.wait()

    def observe(self, reply: Reply | None, latency: float) -> None:
        """An answer that is not a 429 ends the run of 429s, for every process (and the time
        this job was held)."""
        if not answered(reply):
            return
        self.holds.answered()
        if self._account.streak:
            self._account.streak = 0
            self.calls.publish("calm")

    def pause(self, reply: Reply) -> float:
        """Pause this process at once and every other through Redis; the seconds added here."""
        now = asyncio.get_running_loop().time()
        new = now >= self._resume_at
        seconds = self.reading.seconds(
            self.policy, reply.retry_after, self._account.streak + 1, new
        )
        added = max(0.0, now + seconds - max(now, self._resume_at))
        if now >= self._resume_at:
            self._account.streak += 1
        if now + seconds > self._resume_at:
            self._resume_at = now + seconds
            self._generation += 1
        self.holds.hold(now, seconds, TOO_MANY)
        # A longer pause from another process holds here too.
        self.calls.publish("pause", repr(seconds), self._held_elsewhere)
        return added

    @property
    def resumes_at(self) -> float:
        """Loop time at which the pause, as last heard of, ends (past: none is running)."""
        return self._resume_at

    def stop(self) -> None:
        self._stopped = True
        self._halt.set()

    async def sleep(self, seconds: float) -> None:
        """A backoff sleep that ends early, raising `Stopped`, when the job stops."""
        await self._wait(seconds)
        self._check()

    # --- the learned rate, for `--rate auto`

    def set_rate(self, rate: float) -> None:
        """Pace at `rate` from the next slot on (an adaptive controller's decision)."""
        if not rate > 0:
            raise ValueError("rate must be more than 0: a shared budget needs a limit")
        self.rate = rate
        self._guard.set_rate(rate)

    def share_rate(self, rate: float) -> None:
        """Tell every process of this account that `rate` is the rate to go at."""
        if not rate > 0:
            raise ValueError("a shared rate must be more than 0")
        self._account.shared_rate = rate
        self.calls.publish("share", repr(float(rate)))

    def shared_rate(self) -> float | None:
        """The rate last shared by any process of this account (as of the latest slot)."""
        return self._account.shared_rate

    def account_starts(self, now: float) -> float | None:
        """Requests every job of the account started in the last second, as Redis counted
        them (None until this process has asked for slots over most of a second)."""
        return self._account.starts_rate(now)

    @property
    def account_rate(self) -> float:
        """The rate in force for the account: the lowest of the jobs running lately."""
        return self._account.rate_in_force

    def describe(self) -> RateStatus:
        """Given as a job's own limiter: the account's rate in force, and a hold running."""
        rate = min(self.rate, self.account_rate)
        paused = self.holds.left(asyncio.get_running_loop().time())
        return RateStatus(rate, rate, f"shared at {rate:g}/s", None, paused, self.holds.why)

    def _held_elsewhere(self, answer: list[Any], since: float | None = None) -> None:
        """Hold this process for the account's pause, as long as the script's `answer` says (its
        --max-pause), counted from `since` (when asked; default: now). Redis sets this process's
        own pause a moment after it began here (`pause_why`)."""
        now = asyncio.get_running_loop().time()
        seconds = float(answer[1])
        start = now if since is None else since
        why = pause_why(start + seconds, self._resume_at)
        self._resume_at = max(self._resume_at, now + seconds)
        self.holds.hold(now, seconds, why)

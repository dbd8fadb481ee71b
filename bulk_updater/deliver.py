"""`Deliverer`: one row's attempts run, paced, classified and retried, as `retry.py` decides.

The first attempt runs outside tenacity (most rows need no other); a row that must be retried
enters an `AsyncRetrying` loop whose stop, wait and retry hooks are `retry.py`'s `RowAttempts`. The
deliverer also tells the job when it must stop (a refused key, an API that looks down, a lost
shared budget).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
from collections.abc import Callable
from typing import Any

from tenacity import AsyncRetrying, RetryCallState

from .client import Reply, Searcher, Sender, TransportError
from .limits import GivenUp, LimiterDown, Pacing, Stopped
from .limits.flight import FlightCap
from .models import LeadUpdate, Status, StopReason
from .retry import (
    CALM_STREAK,
    CALM_SUCCESSES,
    CALM_WINDOW,
    Attempt,
    Call,
    Counters,
    Delivery,
    RetryPolicy,
    RowAttempts,
    Verdict,
    classify,
)

log = logging.getLogger("bulk_updater")


def _retryable(attempt: Attempt) -> bool:
    return attempt.verdict in (Verdict.RETRY, Verdict.RATE_LIMITED)


def _should_retry(state: RetryCallState) -> bool:
    outcome = state.outcome
    return outcome is not None and not outcome.failed and _retryable(outcome.result())


def _last_result(state: RetryCallState) -> Attempt:
    """When tenacity gives up, the row's result is its last attempt (a retryable failure)."""
    assert state.outcome is not None
    result: Attempt = state.outcome.result()
    return result


class Deliverer:
    """Runs a row's attempts: pace, send, classify, retry; tells the job when it must stop."""

    def __init__(
        self,
        sender: Sender,
        limiter: Pacing,
        policy: RetryPolicy,
        on_stop: Callable[[StopReason, str], None],
        in_flight: int = 0,
        tail: Callable[[], bool] = lambda: False,
    ) -> None:
        """`tail()`: whether the job is in its tail, every row read and none waiting for a
        worker (the pipeline knows); only there may a backoff be cut short."""
        self._sender = sender
        # Searches run outside the workers: without a permit each, they would take a start
        # slot, then queue for one of the pool's connections and all leave at once (a burst).
        self._permits = FlightCap(in_flight) if in_flight > 0 else None
        self._limiter = limiter
        self._policy = policy
        self._on_stop = on_stop
        self.counters = Counters()
        self._tail = tail
        self._streak = 0
        self._recent: collections.deque[bool] = collections.deque(maxlen=CALM_WINDOW)
        self._answers = 0  # answers other than 429: the server is taking requests
        self._limited = 0  # 429s, every row's
        self._active = 0  # requests waiting for their start or in flight
        self._queued = 0  # requests waiting for their start slot
        self._backing_off = 0  # rows sleeping out a backoff, which a calm job cuts short
        self._calm_news = asyncio.Event()  # set (and replaced) when the job turns calm
        self._clock: Callable[[], float] | None = None  # the loop's, once there is one
        self._not_found: list[str] = []  # ids of the first rows sent, while all were not found
        self._watching = policy.not_found_stop > 0
        self._is_calm = self._calm  # bound once: every row's attempts hold it
        #: Where the rows' ids come from (`column \`Lead ID\``), for the stop's message.
        self.ids_from = "the id column"

    def row_attempts(self) -> RowAttempts:
        return RowAttempts(self._policy, self._is_calm)

    def _calm(self) -> bool:
        """Whether a retry can go at once: the job is in its tail (every row read and given a
        worker, no request waiting for a start slot: the rate idles), the rate is limited at
        all, and the server is healthy (`CALM_SUCCESSES` of the last `CALM_WINDOW` answers are
        successes, and no more than `CALM_STREAK` failures came in a row)."""
        recent = self._recent
        return (
            self._queued == 0
            and self._streak <= CALM_STREAK
            and len(recent) == CALM_WINDOW
            and recent.count(True) >= CALM_SUCCESSES
            and self._policy.paced
            and self._tail()
        )

    def _wake_backoffs(self) -> None:
        """The job may have turned calm: rows sleeping out a backoff retry now."""
        if self._backing_off and self._calm():
            self._calm_news.set()
            self._calm_news = asyncio.Event()

    async def _wait(self, tries: RowAttempts, seconds: float) -> None:
        """The wait before a row's next attempt. A backoff decided mid-job ends as soon as the
        job is calm (its tail: the last request waiting for a start has started): the rate
        would idle while the row sleeps. A row's own 429 wait runs in full."""
        last = tries.last
        if seconds <= 0 or last is None or last.verdict is not Verdict.RETRY:
            await self._limiter.sleep(seconds)
            return
        sleep = asyncio.ensure_future(self._limiter.sleep(seconds))
        self._backing_off += 1
        try:
            while not sleep.done() and not self._calm():
                calm = asyncio.ensure_future(self._calm_news.wait())
                try:
                    await asyncio.wait((sleep, calm), return_when=asyncio.FIRST_COMPLETED)
                finally:
                    calm.cancel()
        finally:
            self._backing_off -= 1
            sleep.cancel()
        if sleep.done() and not sleep.cancelled():
            sleep.result()  # `Stopped` when the job stopped meanwhile

    def _loop_clock(self) -> Callable[[], float]:
        if self._clock is None:
            self._clock = asyncio.get_running_loop().time
        return self._clock

    async def search(
        self, searcher: Searcher, text: str, cursor: str | int | None, tries: RowAttempts
    ) -> Delivery:
        """One page of a search, with its retries: a request like any other (same limiter)."""
        try:
            return await self.deliver(searcher.search, (text, cursor), tries)
        finally:
            self.counters.searches += tries.attempts

    async def deliver(self, call: Call, args: tuple[Any, ...], tries: RowAttempts) -> Delivery:
        """`call(*args)` (`Sender.send`, `Searcher.search`) until it is final, retried as the
        policy says. The PATCH of every row takes this path: no object made per row for it."""
        try:
            attempt = await self._attempt(call, args, tries)
            # Most rows take one attempt: only those that need a retry pay for tenacity's set-up
            # (more than the rest of the per-row work together: docs/decisions/, 2026-11-27).
            if _retryable(attempt) and not tries.spent_now():
                await self._wait(tries, tries.next_wait())
                retrying = AsyncRetrying(
                    stop=tries.spent,
                    wait=tries.wait,
                    retry=_should_retry,
                    sleep=functools.partial(self._wait, tries),
                    reraise=True,
                    retry_error_callback=_last_result,
                )
                attempt = await retrying(self._attempt, call, args, tries)
        except GivenUp as exc:  # held past --give-up-after by a hold no answer ends
            self._on_stop(StopReason.API_DOWN, exc.message)
            return Delivery.aborted(tries.attempts, tries.last)
        except LimiterDown as exc:  # no slot can be had any more (a shared budget lost)
            self._on_stop(StopReason.LIMITER_DOWN, exc.message)
            return Delivery.aborted(tries.attempts, tries.last)
        except Stopped:
            return Delivery.aborted(tries.attempts, tries.last)
        duration = self._clock() - tries.started if self._clock and tries.started else None
        attempts = tries.attempts
        if attempt.verdict in (Verdict.KEY_REFUSED, Verdict.UNREACHABLE):
            return Delivery.of(Status.ABORTED, attempts, attempt, duration)
        if attempt.verdict is Verdict.RATE_LIMITED:
            limited = Delivery.of(Status.FAILED, attempts, attempt, duration)
            message = f"rate limited {tries.rate_limited} times (last: {limited.message})"
            return Delivery(Status.FAILED, attempts, 429, limited.error_code, message, duration)
        if attempt.verdict is not Verdict.FINAL:
            return Delivery.of(Status.FAILED, attempts, attempt, duration)
        if self._watching and isinstance(args[0], LeadUpdate):  # a PATCH, not a search
            self._first_answers(attempt.status, args[0].id)
        return Delivery.of(attempt.status, attempts, attempt, duration)

    def _first_answers(self, status: Status, lead: str) -> None:
        """Stop the job when its first rows sent all come back `not_found`: ids of another
        system (a CRM's, a mailing list's) would send the whole file to nowhere, fast."""
        if status is not Status.NOT_FOUND:
            self._watching = False  # some id is this account's: the rest may be too
            return
        found = self._not_found
        found.append(lead)
        if len(found) >= self._policy.not_found_stop:
            self._watching = False
            examples = ", ".join(f"`{lead}`" for lead in found[:3])
            self._on_stop(
                StopReason.UNKNOWN_IDS,
                f"the first {len(found)} rows sent were all not_found: their ids ({examples}, "
                f"from {self.ids_from}) do not look like this account's leads; map the column "
                "that holds SendKit lead ids to id (or match by email), or pass "
                "--allow-not-found if you expect that",
            )

    async def _attempt(self, call: Call, args: tuple[Any, ...], tries: RowAttempts) -> Attempt:
        """One request: a permit in flight first, then a start slot, so that no request waits
        for anything between its slot and its start. One coroutine: every request runs it."""
        permits, limiter = self._permits, self._limiter
        self._active += 1
        held: FlightCap | None = None  # the permit, once it is this request's
        try:
            if permits is not None and not permits.take():  # usually room at once: no wait
                await permits.enter()
            held = permits
            self._queued += 1
            try:
                await limiter.acquire()
            finally:
                self._queued -= 1
                if not self._queued and self._backing_off:
                    self._wake_backoffs()
            clock = self._clock or self._loop_clock()
            started = self._started(tries, clock())
            try:
                reply = await call(*args)
            except TransportError as exc:
                tries.took = clock() - started
                limiter.observe(None, tries.took)
                verdict = Verdict.UNREACHABLE if exc.final else Verdict.RETRY
                attempt = Attempt(verdict, Status.FAILED, None, exc.message, exc.error_code)
            except BaseException:  # cancelled by a stop, or a custom sender's bug: no answer
                limiter.observe(None, clock() - started)
                raise
            else:
                tries.took = clock() - started
                limiter.observe(reply, tries.took)
                verdict, status = (
                    (Verdict.RETRY, Status.FAILED) if reply.malformed else classify(reply.status)
                )
                attempt = Attempt(verdict, status, reply)
            if log.isEnabledFor(logging.DEBUG):
                _log_attempt(attempt, args, (clock() - started) * 1000)
            tries.last = attempt
            self._account(attempt, tries)
            return attempt
        finally:
            if held is not None:
                held.leave()
            self._active -= 1

    def _started(self, tries: RowAttempts, now: float) -> float:
        """Count a request that starts `now`."""
        counters = self.counters
        counters.requests += 1
        tries.sent += 1
        if tries.sent > 1:
            counters.retries += 1
        if tries.started is None:
            tries.started = now
        return now

    def _account(self, attempt: Attempt, tries: RowAttempts) -> None:
        """Update the job-wide streaks and pauses that one attempt's answer calls for."""
        verdict = attempt.verdict
        if verdict is Verdict.RATE_LIMITED:
            assert attempt.reply is not None
            self._rate_limited(attempt.reply, tries)
            return
        tries.counted += 1
        if verdict is Verdict.FINAL:
            self._streak = 0
            self._answers += 1
            self._recent.append(True)
            if self._backing_off:
                self._wake_backoffs()
        elif verdict is Verdict.KEY_REFUSED:
            assert attempt.reply is not None
            self._on_stop(
                StopReason.KEY_REFUSED,
                f"the API refused the key (HTTP {attempt.reply.status}: {attempt.reply.message}); "
                "check SENDKIT_API_KEY (and --workspace-id for a platform key)",
            )
        elif verdict is Verdict.UNREACHABLE:
            self._on_stop(StopReason.API_DOWN, attempt.error or "the API cannot be reached")
        else:
            self._recent.append(False)
            self._failed_once(attempt)
            self._give_up_if_held()

    def _rate_limited(self, reply: Reply, tries: RowAttempts) -> None:
        """A 429 pauses the job, unless this row keeps getting them while no other row does."""
        tries.rate_limited += 1
        counters = self.counters
        counters.rate_limited += 1
        self._limited += 1
        seen = tries.seen_at_429
        # No other request got a 429 since this row's previous one, and either others were
        # answered meanwhile, or none was sent nor waits to be (the rows behind a search wait
        # for it, not for a slot): the 429s are this row's. A shared pause for each would stall
        # the job, and cut its rate to nothing.
        if seen is not None and seen[1] == self._limited - 1:
            alone = seen[2] == counters.requests - 1 and self._active == 1
            if seen[0] < self._answers or alone:
                tries.singled_out = True
        tries.seen_at_429 = (self._answers, self._limited, counters.requests)
        holds = self._limiter.holds  # every wait of the job counts, whatever caused it
        if tries.singled_out:
            tries.wait_alone = self._policy.alone(reply.retry_after)
            holds.count(tries.wait_alone, "a row's own 429s")  # no answer meanwhile
        else:
            tries.wait_alone = 0.0
            self._limiter.pause(reply)
        self._give_up_if_held()

    def _give_up_if_held(self) -> None:
        """Stop the job once it was held longer than `--give-up-after` with no answer."""
        why = self._limiter.holds.given_up()
        if why is not None:
            self._on_stop(StopReason.API_DOWN, why)

    def _failed_once(self, attempt: Attempt) -> None:
        self._streak += 1
        what = attempt.error or (attempt.reply.message if attempt.reply else "")
        if self._streak >= self._policy.streak_limit:
            self._on_stop(
                StopReason.API_DOWN,
                f"the API looks down: the last {self._streak} attempts failed ({what}); "
                "rerun later with --resume",
            )


def _log_attempt(attempt: Attempt, args: tuple[Any, ...], elapsed_ms: float) -> None:
    answer = attempt.reply.status if attempt.reply else attempt.error
    what = f"GET /v1/leads?search={args[0]}" if len(args) == 2 else f"PATCH {args[0].id}"
    log.debug("%s -> %s in %.0f ms", what, answer, elapsed_ms)

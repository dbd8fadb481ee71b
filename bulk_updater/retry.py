"""Which answers are final, which are retried, and how long to wait: one row's attempts.

Built on tenacity: `Deliverer.deliver()` runs one row's attempts in an `AsyncRetrying` loop whose
stop, wait and retry hooks live here. Every attempt first takes a slot from the `Limiter`.

- 2xx → `updated`; 404 → `not_found`; other 4xx (400, 409, 422 …) → `rejected`; none is retried.
- 408, 500, 502, 503, 504, timeouts and connection errors are retried with capped exponential
  backoff and jitter, up to `max_attempts`; then the row is `failed`.
- 429 pauses every worker (`Limiter.pause`). It does not count against the row's attempts: the
  server is pacing the job, not refusing the row. A row that keeps getting 429s while other rows
  get answers is the exception: it backs off alone, so the rest of the job keeps its speed, and
  after `10 * max_attempts` 429s it is `failed`.
- A 2xx whose body is not the API's success answer (a captive portal, a misrouted proxy) is a
  transient failure like a 5xx: retried, then `failed`; never `updated`.
- 401/403 stop the job: the key was refused, so no other row can succeed either. So does a host
  name that does not resolve (a typo in `--base-url` is not transient).
- `streak_limit` transient failures in a row mean the API is down, and so does more than
  `give_up_after` seconds spent paused by 429s without one answer in between: the job stops
  rather than spend hours failing every row.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final

from tenacity import AsyncRetrying, RetryCallState

from .client import Reply, Searcher, Sender, TransportError
from .limits import Limiter, Stopped
from .limits.pacer import equal_jitter
from .models import Status, StopReason
from .settings import Settings

log = logging.getLogger("bulk_updater")

RETRY_STATUSES: Final = frozenset({408, 500, 502, 503, 504})
KEY_REFUSED_STATUSES: Final = frozenset({401, 403})
#: A row is `failed` after this many 429s per allowed attempt.
RATE_LIMITED_PER_ATTEMPT: Final = 10


class Verdict(Enum):
    FINAL = "final"
    RETRY = "retry"
    RATE_LIMITED = "rate_limited"
    KEY_REFUSED = "key_refused"
    UNREACHABLE = "unreachable"  # the host's name does not resolve: no retry can help


def classify(status: int) -> tuple[Verdict, Status]:
    """What an HTTP status means for the row: a final status, or a reason to try again."""
    if 200 <= status < 300:
        return Verdict.FINAL, Status.UPDATED
    if status == 404:
        return Verdict.FINAL, Status.NOT_FOUND
    if status == 429:
        return Verdict.RATE_LIMITED, Status.FAILED
    if status in KEY_REFUSED_STATUSES:
        return Verdict.KEY_REFUSED, Status.ABORTED
    if status in RETRY_STATUSES:
        return Verdict.RETRY, Status.FAILED
    if 400 <= status < 500:
        return Verdict.FINAL, Status.REJECTED
    # Redirects and other 5xx (501, 505 …): not transient, so not retried; resumable as `failed`.
    return Verdict.FINAL, Status.FAILED


@dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt's result: an HTTP reply, or a transport error message."""

    verdict: Verdict
    status: Status
    reply: Reply | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Delivery:
    """The end of one row's attempts."""

    status: Status
    attempts: int
    http_status: int | None = None
    error_code: str | None = None
    message: str = ""
    duration: float | None = None  # seconds from the first request to the final answer
    reply: Reply | None = None  # the final answer, for a caller that reads its body (a search)


#: A request to make as many times as it takes: `Sender.send` or `Searcher.search`.
Call = Callable[..., Awaitable[Reply]]


class RetryPolicy:
    """The retry settings of a job, taken from its `Settings`."""

    def __init__(self, settings: Settings) -> None:
        self.max_attempts = settings.max_attempts
        self.backoff_base = settings.backoff_base
        self.backoff_max = settings.backoff_max
        self.max_pause = settings.max_pause
        self.streak_limit = settings.streak_limit
        self.give_up_after = settings.give_up_after
        self.max_rate_limited = RATE_LIMITED_PER_ATTEMPT * settings.max_attempts

    def backoff(self, failures: int) -> float:
        """Equal-jitter exponential backoff after the `failures`-th failure (1-based)."""
        return equal_jitter(failures, self.backoff_base, self.backoff_max)

    def alone(self, retry_after: float | None) -> float:
        """The wait of a row singled out by 429s: `Retry-After`, at least a first backoff.

        It does not grow: the row gives up after a fixed number of 429s, not after a long wait.
        """
        return min(max(retry_after or 0.0, self.backoff(1)), self.max_pause)


@dataclass
class Counters:
    """Request totals for the summary."""

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    searches: int = 0  # of the requests, the searches that resolve emails to lead ids


class Budget:
    """One row's attempt count; 429s are tracked apart so that they never spend the budget.

    The engine holds it while the row is in flight, so a row cut off by a stop still reports
    how many requests it really sent. Made for every row: the defaults live on the class, so
    a row that takes one attempt pays for one attribute only.
    """

    sent = 0  # requests started, the one in flight included
    counted = 0
    rate_limited = 0
    seen_at_429: tuple[int, int] | None = None  # the job's (answers, 429s) at this row's latest
    singled_out = False  # its 429s are about this row, not the job's pace
    wait_alone = 0.0  # > 0: the row backs off from its own 429 by itself
    started: float | None = None  # loop time of the first request
    last: Attempt | None = None

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy

    @property
    def attempts(self) -> int:
        """Requests really sent for the row, 429s included."""
        return self.sent

    def spent_now(self) -> bool:
        return (
            self.counted >= self.policy.max_attempts
            or self.rate_limited >= self.policy.max_rate_limited
        )

    def next_wait(self) -> float:
        if self.last is not None and self.last.verdict is Verdict.RATE_LIMITED:
            return self.wait_alone  # 0: the job-wide pause is the wait
        return self.policy.backoff(self.counted)

    # tenacity hooks
    def spent(self, state: RetryCallState) -> bool:
        return self.spent_now()

    def wait(self, state: RetryCallState) -> float:
        return self.next_wait()


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
        limiter: Limiter,
        policy: RetryPolicy,
        on_stop: Callable[[StopReason, str], None],
    ) -> None:
        self._sender = sender
        self._limiter = limiter
        self._policy = policy
        self._on_stop = on_stop
        self.counters = Counters()
        self._streak = 0
        self._answers = 0  # answers other than 429: the server is taking requests
        self._limited = 0  # 429s, every row's
        self._paused = 0.0  # seconds of 429 pauses since the last such answer
        self._clock: Callable[[], float] | None = None  # the loop's, once there is one

    def budget(self) -> Budget:
        return Budget(self._policy)

    def _loop_clock(self) -> Callable[[], float]:
        if self._clock is None:
            self._clock = asyncio.get_running_loop().time
        return self._clock

    async def search(
        self, searcher: Searcher, text: str, cursor: str | None, budget: Budget
    ) -> Delivery:
        """One page of a search, with its retries: a request like any other (same limiter)."""
        try:
            return await self.deliver(searcher.search, (text, cursor), budget)
        finally:
            self.counters.searches += budget.attempts

    async def deliver(self, call: Call, args: tuple[Any, ...], budget: Budget) -> Delivery:
        """`call(*args)` (`Sender.send`, `Searcher.search`) until it is final, retried as the
        policy says. The PATCH of every row takes this path: no object made per row for it."""
        try:
            attempt = await self._attempt(call, args, budget)
            # Most rows take one attempt: only those that need a retry pay for tenacity's set-up
            # (about 60 µs a call, measured: more than the rest of the per-row work together).
            if _retryable(attempt) and not budget.spent_now():
                await self._limiter.sleep(budget.next_wait())
                retrying = AsyncRetrying(
                    stop=budget.spent,
                    wait=budget.wait,
                    retry=_should_retry,
                    sleep=self._limiter.sleep,
                    reraise=True,
                    retry_error_callback=_last_result,
                )
                attempt = await retrying(self._attempt, call, args, budget)
        except Stopped:
            return _aborted(budget)
        duration = self._clock() - budget.started if self._clock and budget.started else None
        attempts = budget.attempts
        if attempt.verdict in (Verdict.KEY_REFUSED, Verdict.UNREACHABLE):
            return _delivery(Status.ABORTED, attempts, attempt, duration)
        if attempt.verdict is Verdict.RATE_LIMITED:
            limited = _delivery(Status.FAILED, attempts, attempt, duration)
            message = f"rate limited {budget.rate_limited} times (last: {limited.message})"
            return Delivery(Status.FAILED, attempts, 429, limited.error_code, message, duration)
        if attempt.verdict is not Verdict.FINAL:
            return _delivery(Status.FAILED, attempts, attempt, duration)
        return _delivery(attempt.status, attempts, attempt, duration)

    async def _attempt(self, call: Call, args: tuple[Any, ...], budget: Budget) -> Attempt:
        limiter = self._limiter
        await limiter.acquire()
        counters = self.counters
        counters.requests += 1
        budget.sent += 1
        if budget.sent > 1:
            counters.retries += 1
        clock = self._clock or self._loop_clock()
        started = clock()
        if budget.started is None:
            budget.started = started
        try:
            reply = await call(*args)
        except TransportError as exc:
            limiter.observe(None, clock() - started)
            verdict = Verdict.UNREACHABLE if exc.kind == "dns" else Verdict.RETRY
            attempt = Attempt(verdict, Status.FAILED, error=exc.message)
        except BaseException:  # cancelled by a stop, or a custom sender's bug: still no answer
            limiter.observe(None, clock() - started)
            raise
        else:
            limiter.observe(reply, clock() - started)
            verdict, status = (
                (Verdict.RETRY, Status.FAILED) if reply.malformed else classify(reply.status)
            )
            attempt = Attempt(verdict, status, reply)
        if log.isEnabledFor(logging.DEBUG):
            elapsed = (clock() - started) * 1000
            answer = attempt.reply.status if attempt.reply else attempt.error
            what = f"GET /v1/leads?search={args[0]}" if len(args) == 2 else f"PATCH {args[0].id}"
            log.debug("%s -> %s in %.0f ms", what, answer, elapsed)
        budget.last = attempt
        self._account(attempt, budget)
        return attempt

    def _account(self, attempt: Attempt, budget: Budget) -> None:
        """Update the job-wide streaks and pauses that one attempt's answer calls for."""
        verdict = attempt.verdict
        if verdict is Verdict.RATE_LIMITED:
            assert attempt.reply is not None
            self._rate_limited(attempt.reply, budget)
            return
        budget.counted += 1
        if verdict is Verdict.FINAL:
            self._streak = 0
            self._answers += 1
            self._paused = 0.0
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
            self._failed_once(attempt)

    def _rate_limited(self, reply: Reply, budget: Budget) -> None:
        """A 429 pauses the job, unless this row keeps getting them while others get answers."""
        budget.rate_limited += 1
        self.counters.rate_limited += 1
        self._limited += 1
        seen = budget.seen_at_429
        # Since this row's previous 429 others were answered and none got a 429: it is the row.
        if seen is not None and seen[0] < self._answers and seen[1] == self._limited - 1:
            budget.singled_out = True
        budget.seen_at_429 = (self._answers, self._limited)
        if budget.singled_out:
            budget.wait_alone = self._policy.alone(reply.retry_after)
            return
        budget.wait_alone = 0.0
        self._paused += self._limiter.pause(reply)
        if self._paused > self._policy.give_up_after:
            self._on_stop(
                StopReason.API_DOWN,
                f"the API looks down: it answered only 429 Too Many Requests for "
                f"{self._paused:.0f}s of pauses; rerun later with --resume",
            )

    def _failed_once(self, attempt: Attempt) -> None:
        self._streak += 1
        what = attempt.error or (attempt.reply.message if attempt.reply else "")
        if self._streak >= self._policy.streak_limit:
            self._on_stop(
                StopReason.API_DOWN,
                f"the API looks down: the last {self._streak} attempts failed ({what}); "
                "rerun later with --resume",
            )


def _delivery(status: Status, attempts: int, attempt: Attempt, duration: float | None) -> Delivery:
    reply = attempt.reply
    if reply is None:
        return Delivery(status, attempts, None, "CONNECTION", attempt.error or "", duration)
    if status is Status.UPDATED:
        return Delivery(status, attempts, reply.status, duration=duration, reply=reply)
    code, message = reply.error_code, reply.message
    return Delivery(status, attempts, reply.status, code, message, duration, reply)


def _aborted(budget: Budget) -> Delivery:
    attempts = budget.attempts
    last = budget.last
    message = "not finished: the job stopped"
    if last is None:
        return Delivery(Status.ABORTED, attempts, None, None, message)
    detail = last.error or (last.reply.message or f"HTTP {last.reply.status}" if last.reply else "")
    code = "CONNECTION" if last.reply is None else last.reply.error_code
    http = last.reply.status if last.reply else None
    return Delivery(Status.ABORTED, attempts, http, code, f"{message} (last try: {detail})")

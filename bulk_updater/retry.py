"""Which answers are final, which are retried, and how long to wait: one row's attempts.

The policy (`RetryPolicy`), one row's attempts (`RowAttempts`, whose stop and wait hooks
tenacity calls) and the job's counters live here; `deliver.py` runs the attempts (`Deliverer`).
Every attempt first takes a slot from the `Limiter`.

- 2xx → `updated`; 404 → `not_found`; other 4xx (400, 409, 422 …) → `rejected`; none is retried.
- 408, 500, 502, 503, 504, timeouts and connection errors are retried with capped exponential
  backoff and jitter, up to `max_attempts`; then the row is `failed`. The backoff runs from the
  failed attempt's start (a timeout has waited it), and a healthy job whose rate has room (its
  tail) retries at once (`RetryPolicy.retry_wait`).
- 429 pauses every worker (`Limiter.pause`). It does not count against the row's attempts: the
  server is pacing the job, not refusing the row. A row that keeps getting 429s while other rows
  get answers (or while nothing else is sent: the rows behind a search wait for it) is the
  exception: it backs off alone, so the rest of the job keeps its speed and its rate, and after
  `10 * max_attempts` 429s it is `failed`.
- A 2xx whose body is not the API's success answer (a captive portal, a misrouted proxy) is a
  transient failure like a 5xx: retried, then `failed`; never `updated`.
- 401/403 stop the job: the key was refused, so no other row can succeed either. So does a host
  name that does not resolve (a typo in `--base-url` is not transient).
- A limiter that can hand out no more slots (`LimiterDown`: the Redis of a shared budget is gone)
  stops the job the same way.
- `streak_limit` transient failures in a row mean the API is down, and so does more than
  `give_up_after` seconds spent paused without one answer in between, whatever held the job
  (429s, rate-limit headers, another job's pause: the limiter's `Holds`): the job stops
  rather than spend hours failing every row.
- The first `NOT_FOUND_STOP` rows sent all `not_found` mean the ids are not this account's (a
  column of another system's ids mapped to `id`): the job stops before it sends the whole file
  to nowhere, unless `allow_not_found` says that is expected.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Final, NamedTuple

from tenacity import RetryCallState

from .client import Reply
from .limits.pacer import equal_jitter
from .models import Status
from .settings import NOT_FOUND_STOP, Settings

log = logging.getLogger("bulk_updater")

RETRY_STATUSES: Final = frozenset({408, 500, 502, 503, 504})
KEY_REFUSED_STATUSES: Final = frozenset({401, 403})
#: A row is `failed` after this many 429s per allowed attempt.
RATE_LIMITED_PER_ATTEMPT: Final = 10
#: Transient failures in a row, job-wide, after which a retry backs off even in the job's
#: tail: more than two requests in flight together failing means trouble, not bad luck.
CALM_STREAK: Final = 2
#: The answers (successes and transient failures) over which a calm job is judged, and the
#: successes among them it needs: one success between failures is no healthy server.
CALM_WINDOW: Final = 10
CALM_SUCCESSES: Final = 8


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


class Attempt(NamedTuple):
    """One attempt's result: an HTTP reply, or a transport error message. A tuple: one is made
    per request, and a frozen dataclass takes three times as long to build."""

    verdict: Verdict
    status: Status
    reply: Reply | None = None
    error: str | None = None
    error_code: str | None = None  # of a transport error: `TIMEOUT` or `CONNECTION`


class Delivery(NamedTuple):
    """The end of one row's attempts (a tuple, as `Attempt` is)."""

    status: Status
    attempts: int
    http_status: int | None = None
    error_code: str | None = None
    message: str = ""
    duration: float | None = None  # seconds from the first request to the final answer
    reply: Reply | None = None  # the final answer, for a caller that reads its body (a search)

    @classmethod
    def of(
        cls, status: Status, attempts: int, attempt: Attempt, duration: float | None
    ) -> Delivery:
        """A row's end in `status`, its last attempt's answer (or error) as the details."""
        reply = attempt.reply
        if reply is None:
            failure = attempt.error_code or "CONNECTION"
            return cls(status, attempts, None, failure, attempt.error or "", duration)
        if status is Status.UPDATED:
            return cls(status, attempts, reply.status, duration=duration, reply=reply)
        code, message = reply.error_code, reply.message
        return cls(status, attempts, reply.status, code, message, duration, reply)

    @classmethod
    def aborted(cls, attempts: int, last: Attempt | None) -> Delivery:
        """A row the job's stop cut short, after `attempts` requests (`last` the latest)."""
        message = "not finished: the job stopped"
        if last is None:
            return cls(Status.ABORTED, attempts, None, None, message)
        reply = last.reply
        detail = last.error or (reply.message or f"HTTP {reply.status}" if reply else "")
        code = (last.error_code or "CONNECTION") if reply is None else reply.error_code
        http = reply.status if reply else None
        return cls(Status.ABORTED, attempts, http, code, f"{message} (last try: {detail})")


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
        #: `not_found` answers from the start that stop the job (0: never stop for them).
        self.not_found_stop = 0 if settings.allow_not_found else NOT_FOUND_STOP
        self.max_rate_limited = RATE_LIMITED_PER_ATTEMPT * settings.max_attempts
        #: A rate limits the starts (`--rate 0` is none): without one, no slot idles while a
        #: row backs off, so no backoff is ever cut short.
        self.paced = settings.rate != 0

    def backoff(self, failures: int) -> float:
        """Equal-jitter exponential backoff after the `failures`-th failure (1-based)."""
        return equal_jitter(failures, self.backoff_base, self.backoff_max)

    def retry_wait(self, failures: int, took: float, calm: bool) -> float:
        """The wait before the next attempt, after the `failures`-th failure of an attempt
        that took `took` seconds to fail.

        The backoff is the gap between two attempts' starts, so a timeout has already waited
        part or all of it. No wait at all when the job is `calm` (`Deliverer._calm`: the server
        is taking requests and the rate has room). The backoff is there to relieve a struggling
        server, and a retry into an idle rate loads nothing more; the limiter still paces it.
        """
        if calm:
            return 0.0
        return max(0.0, self.backoff(failures) - took)

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


class RowAttempts:
    """One row's attempt count; 429s are tracked apart so that they never use up `max_attempts`.

    The engine holds it while the row is in flight, so a row cut off by a stop still reports
    how many requests it really sent. Made for every row: the defaults live on the class, so
    a row that takes one attempt pays for one attribute only.
    """

    sent = 0  # requests started, the one in flight included
    counted = 0
    rate_limited = 0
    seen_at_429: tuple[int, int, int] | None = None  # the job's (answers, 429s, requests) then
    singled_out = False  # its 429s are about this row, not the job's pace
    wait_alone = 0.0  # > 0: the row backs off from its own 429 by itself
    started: float | None = None  # loop time of the first request
    took = 0.0  # seconds the latest attempt took, from its start to its answer or failure
    last: Attempt | None = None

    def __init__(self, policy: RetryPolicy, calm: Callable[[], bool] = lambda: False) -> None:
        """`calm`: whether the job can take a retry at once (`RetryPolicy.retry_wait`)."""
        self.policy = policy
        self.calm = calm

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
        return self.policy.retry_wait(self.counted, self.took, self.calm())

    # tenacity hooks
    def spent(self, state: RetryCallState) -> bool:
        return self.spent_now()

    def wait(self, state: RetryCallState) -> float:
        return self.next_wait()

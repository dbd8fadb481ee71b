"""Holds of the whole job, whatever their source, capped by `--max-pause`, counted toward
`--give-up-after` and shown as a pause: `Holds` itself, then whole jobs in virtual time against
answers whose rate-limit headers say nothing is left for a day (the Redis sources are in
test_schedule.py and test_shared.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import pytest

from bulk_updater import BulkUpdater, Reply, Status, StopReason, Summary
from bulk_updater.limits import AdaptiveLimiter, Holds, Pacer, PausePolicy
from tests.conftest import FakeSender, VirtualTimeLoop, advance, make_rows

DAY = 22 * 3600.0
#: The job of issue 21: it must end well within `--give-up-after` plus one `--max-pause`.
TIGHT = {"max_pause": 5.0, "give_up_after": 10.0, "grace": 1.0}


def xrl_exhausted() -> dict[str, str]:
    """GitHub's headers, saying nothing is left until a reset 22 hours away."""
    reset = str(int(time.time() + DAY))
    return {"X-RateLimit-Limit": "40", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}


def ietf_exhausted() -> dict[str, str]:
    return {"RateLimit-Policy": '"day";q=5000;w=86400', "RateLimit": f'"day";r=0;t={DAY:.0f}'}


# --- Holds


def test_a_hold_is_capped_at_max_pause_and_counted_ahead() -> None:
    holds = Holds(max_pause=5.0, give_up_after=10.0)
    assert holds.hold(0.0, DAY, "429 Too Many Requests") == 5.0
    assert holds.left(1.0) == 4.0
    assert holds.hold(1.0, 3.0, "a 429 of another job") == 0.0  # inside the running hold
    assert holds.hold(4.0, 5.0, "429 Too Many Requests") == pytest.approx(4.0)
    assert holds.held == pytest.approx(9.0)
    assert holds.given_up() is None
    holds.hold(9.0, 5.0, "rate-limit headers: 0 left")
    message = holds.given_up()
    assert message is not None
    assert "429 Too Many Requests 9s" in message
    assert "rate-limit headers: 0 left 5s" in message
    assert "--give-up-after 10" in message


def test_an_answer_starts_the_count_again_and_nan_holds_nothing() -> None:
    holds = Holds(max_pause=5.0, give_up_after=10.0)
    holds.hold(0.0, 5.0, "x")
    holds.answered()
    assert holds.held == 0.0
    assert holds.hold(6.0, float("nan"), "x") == 0.0
    assert holds.left(6.0) is None


# --- whole jobs


async def job(
    answer: Callable[[int], Reply], rows: int, **settings: object
) -> tuple[Summary, list[float]]:
    """Run `rows` rows against `answer(n)` for the n-th request; the summary, the start times."""
    sender = FakeSender(lambda update, attempt: answer(len(sender.calls)), latency=0.01)
    async with BulkUpdater(sender=sender, **settings) as updater:  # type: ignore[arg-type]
        summary = await updater.run(make_rows(rows))
    return summary, [at for at, _ in sender.calls]


@pytest.mark.parametrize("headers", [xrl_exhausted, ietf_exhausted])
@pytest.mark.parametrize("rate", [10, "auto"])
async def test_200s_that_keep_saying_nothing_is_left_finish_the_job(
    virtual_time: VirtualTimeLoop,
    caplog: pytest.LogCaptureFixture,
    headers: Callable[[], dict[str, str]],
    rate: object,
) -> None:
    """The first answer closes the budget for a day: the job waits `--max-pause`, then the API
    takes a request its headers said it would not, and they pace nothing more."""
    with caplog.at_level(logging.WARNING, logger="bulk_updater"):
        summary, starts = await job(lambda n: Reply(200, headers=headers()), 40, rate=rate, **TIGHT)
    assert summary.stopped is None
    assert summary.counts[Status.UPDATED] == 40
    assert starts[1] >= 5.0  # the budget held the job, for --max-pause and no longer
    assert virtual_time.time() < 10 + 5
    assert summary.settled_why is not None
    assert "X-RateLimit" not in summary.settled_why  # nor does the limit they said pace it
    said = [r.getMessage() for r in caplog.records if "nothing was left" in r.getMessage()]
    assert len(said) == 1


async def test_200s_whose_headers_allow_0_a_second_are_believed_no_longer(
    virtual_time: VirtualTimeLoop, caplog: pytest.LogCaptureFixture
) -> None:
    """`X-RateLimit-Limit: 0`, `Remaining: 0` and a reset a second away on every 200: each
    hold is short, but a few such answers in a row show the headers wrong, not a 1/s limit."""
    said = {"X-RateLimit-Limit": "0", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1"}
    with caplog.at_level(logging.WARNING, logger="bulk_updater"):
        summary, _ = await job(lambda n: Reply(200, headers=dict(said)), 60, rate="auto", **TIGHT)
    assert summary.counts[Status.UPDATED] == 60
    assert virtual_time.time() < 15  # not one a second
    assert summary.settled_why is not None
    assert "no rate-limit headers" not in summary.settled_why
    assert "belied" in summary.settled_why
    warned = [r.getMessage() for r in caplog.records if "allows 0" in r.getMessage()]
    assert len(warned) == 1


async def test_429s_that_say_nothing_is_left_for_a_day_give_up(
    virtual_time: VirtualTimeLoop,
) -> None:
    """No `Retry-After`: each 429 waits `--max-pause`, not the reset, and the job ends (exit 3)
    once it was held longer than `--give-up-after`."""
    answer = Reply(429, "RATE_LIMITED", "quota", headers=xrl_exhausted())
    summary, _ = await job(lambda n: answer, 20, rate=10, concurrency=4, **TIGHT)
    assert summary.stopped is StopReason.API_DOWN
    assert "429 Too Many Requests" in (summary.stop_message or "")
    assert "--give-up-after 10" in (summary.stop_message or "")
    assert virtual_time.time() <= 10 + 5 + 1  # the bound, one more pause, the grace
    assert summary.counts[Status.ABORTED] == 20


async def test_a_200_that_empties_the_budget_then_429s_counts_both_holds(
    virtual_time: VirtualTimeLoop,
) -> None:
    """A daily quota that runs out: the last 200 says 0 left (a hold of the budget), then every
    request is refused: the budget's hold and the pauses add up to `--give-up-after`."""

    def answer(n: int) -> Reply:
        if n <= 3:
            left = str(3 - n)
            return Reply(200, headers={**xrl_exhausted(), "X-RateLimit-Remaining": left})
        return Reply(429, "RATE_LIMITED", "quota", headers=xrl_exhausted())

    summary, _ = await job(answer, 20, rate=10, concurrency=1, **TIGHT)
    assert summary.stopped is StopReason.API_DOWN
    assert "rate-limit headers: 0 left" in (summary.stop_message or "")
    assert virtual_time.time() <= 10 + 5 + 1


@pytest.mark.parametrize("make", ["adaptive", "pacer"])
async def test_the_progress_line_counts_a_pause_down(
    virtual_time: VirtualTimeLoop, make: str
) -> None:
    policy = PausePolicy(0.5, 30.0, max_pause=5.0)
    limiter = AdaptiveLimiter(40, policy=policy) if make == "adaptive" else Pacer(40, policy)
    limiter.begin()
    await limiter.acquire()
    assert limiter.describe().progress() == "limit 40.0/s"
    limiter.observe(Reply(429, retry_after=DAY), 0.01)
    limiter.pause(Reply(429, retry_after=DAY))
    assert limiter.describe().progress() == "paused 5s (429 Too Many Requests)"
    await advance(2.5)
    assert limiter.describe().progress() == "paused 3s (429 Too Many Requests)"
    waiting = asyncio.ensure_future(limiter.acquire())
    await advance(2.6)
    assert waiting.done()  # at most --max-pause, whatever Retry-After said
    assert limiter.describe().progress() != "paused 0s (429 Too Many Requests)"
    assert limiter.holds.held == pytest.approx(5.0)


async def test_a_budget_hold_shows_as_a_pause(virtual_time: VirtualTimeLoop) -> None:
    limiter = AdaptiveLimiter(40, policy=PausePolicy(0.5, 30.0, max_pause=5.0))
    limiter.begin()
    await limiter.acquire()
    limiter.observe(Reply(200, headers=xrl_exhausted()), 0.01)
    waiting = asyncio.ensure_future(limiter.acquire())
    await advance(1.0)
    assert not waiting.done()
    assert limiter.describe().progress() == "paused 4s (rate-limit headers: 0 left)"
    await advance(4.1)
    assert waiting.done()


async def test_a_budget_hold_longer_than_give_up_after_stops_the_job_when_it_begins(
    virtual_time: VirtualTimeLoop,
) -> None:
    """The first 200 says nothing is left for a day: its hold (`--max-pause` 60 s) is over
    `--give-up-after` 10 s, and no answer can come to end it, so the job stops (exit 3) as it
    begins, not after waiting it out (the hold was counted but never checked)."""
    answer = Reply(200, headers=xrl_exhausted())
    summary, starts = await job(
        lambda n: answer, 20, rate=10, max_pause=60.0, give_up_after=10.0, grace=1.0
    )
    assert summary.stopped is StopReason.API_DOWN
    message = summary.stop_message or ""
    assert message.startswith("the API looks down: it took no request for 60s of pauses")
    assert "rate-limit headers: 0 left" in message
    assert "--give-up-after 10; rerun later with --resume" in message
    assert len(starts) == 1
    assert virtual_time.time() < 10
    assert summary.counts[Status.UPDATED] == 1
    assert summary.counts[Status.ABORTED] == 19

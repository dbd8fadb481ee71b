"""429s that are not an outage, a row the server singles out, answers that are not the API's,
and hosts that do not exist: the job stops only when it must (`FakeSender`, `virtual_time`)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import random

import pytest

from bulk_updater import BulkUpdater, LeadUpdate, Outcome, Reply, Status, StopReason, Summary
from bulk_updater.client import TransportError
from bulk_updater.limits.pacer import Pacer, PausePolicy
from tests.conftest import FakeSender, Script, SimulatedApi, VirtualTimeLoop


def rows(n: int) -> list[dict[str, str]]:
    return [{"id": f"lead{i}", "jobTitle": f"T{i}"} for i in range(n)]


async def run_job(
    script: Script, n: int, *, latency: float = 0.01, **settings: object
) -> tuple[Summary, list[Outcome], FakeSender]:
    sender = FakeSender(script, latency=latency)
    outcomes: list[Outcome] = []
    async with BulkUpdater(sender=sender, **settings) as updater:  # type: ignore[arg-type]
        summary = await updater.run(rows(n), on_outcome=outcomes.append)
    outcomes.sort(key=lambda o: o.row)
    return summary, outcomes, sender


class WindowServer:
    """A server allowing `limit` requests in any sliding second; beyond, 429 with `retry_after`."""

    def __init__(self, limit: int, retry_after: float | None) -> None:
        self.limit = limit
        self.retry_after = retry_after
        self.arrivals: collections.deque[float] = collections.deque()
        self.sender = FakeSender(self.answer, latency=0.01)

    def answer(self, update: LeadUpdate, attempt: int) -> Reply:
        now = self.sender.calls[-1][0]
        while self.arrivals and self.arrivals[0] <= now - 1.0:
            self.arrivals.popleft()
        if len(self.arrivals) >= self.limit:
            return Reply(429, "RATE_LIMITED", "slow down", retry_after=self.retry_after)
        self.arrivals.append(now)
        return Reply(200)


@pytest.mark.parametrize("retry_after", [0.0, None, 1.0])
async def test_retry_after_now_or_past_does_not_abort_a_healthy_job(
    retry_after: float | None, virtual_time: VirtualTimeLoop
) -> None:
    """`Retry-After: 0`, `-5`, a past date and an HTTP date of now all parse to 0 seconds: the
    pause then lasts at least the backoff it would without the header, and back-to-back 429s
    from a server that keeps answering are no outage. The rate is held fixed (`Pacer`), so that
    the 429s keep coming: the adaptive limiter would settle below the window."""
    server = WindowServer(20, retry_after)
    limiter = Pacer(100)
    async with BulkUpdater(sender=server.sender, limiter=limiter, concurrency=8) as updater:
        summary = await updater.run(rows(1000))
    assert summary.stopped is None, summary.stop_message
    assert summary.counts[Status.UPDATED] == 1000
    if retry_after != 1.0:
        assert summary.rate_limited > 50  # more pauses than the old streak limit allowed


def test_a_pause_has_the_backoff_as_its_floor() -> None:
    policy = PausePolicy(backoff_base=0.5, backoff_max=30.0, max_pause=120.0)
    for streak in range(1, 12):
        ceiling = min(30.0, 0.5 * 2 ** (streak - 1))
        assert ceiling / 2 <= policy.seconds(0.0, streak) <= ceiling
        assert policy.seconds(None, streak) <= ceiling
    assert policy.seconds(7.0, 1) == 7.0
    assert policy.seconds(3600.0, 1) == 120.0


def test_retry_after_one_whole_second_means_within_a_second() -> None:
    """`Retry-After: 1`, rounded up from a few ms: the first 429 of a run waits the backoff;
    a second in a row, the whole second. Other values are waited as they are."""
    policy = PausePolicy(backoff_base=0.5, backoff_max=30.0, max_pause=120.0)
    assert 0.25 <= policy.seconds(1.0, 1) <= 0.5
    assert policy.seconds(1.0, 2) == 1.0
    assert policy.seconds(2.0, 1) == 2.0
    assert policy.seconds(0.9, 1) == 0.9  # a fraction says exactly when


async def test_one_lead_always_answered_429_fails_alone_and_the_rest_keep_their_speed(
    virtual_time: VirtualTimeLoop,
) -> None:
    def script(update: LeadUpdate, attempt: int) -> Reply:
        if update.id == "lead3":
            return Reply(429, "RATE_LIMITED", "this lead is locked", retry_after=1.0)
        return Reply(200)

    summary, outcomes, sender = await run_job(script, 400, rate=50, concurrency=8, max_attempts=5)
    stuck = outcomes[3]
    assert stuck.status is Status.FAILED
    assert stuck.attempts == 50  # 10 x --max-attempts
    assert "rate limited 50 times" in stuck.message
    assert stuck.http_status == 429
    others = [o for o in outcomes if o.id != "lead3"]
    assert all(o.status is Status.UPDATED for o in others)
    assert summary.stopped is None
    # The other 399 rows go at the rate: 399 / 50 s, plus the shared pauses it takes to see that
    # the 429s are about this row alone (two: the row's retry may come first after a pause).
    last_other = max(t for t, lead in sender.calls if lead != "lead3")
    assert last_other <= 399 * 1.01 / 50 + 2 * 1.0 + 0.5
    # and the stuck row gives up after its 50 tries at about Retry-After each, not hours later
    assert max(t for t, _ in sender.calls) <= 50 * 1.0 + 3


async def test_429s_for_everyone_still_pause_everyone(virtual_time: VirtualTimeLoop) -> None:
    """When other rows get 429s too, a row's repeated 429 is the server pacing the job."""
    server = WindowServer(5, 1.0)
    async with BulkUpdater(sender=server.sender, rate=50, concurrency=8) as updater:
        summary = await updater.run(rows(60))
    assert summary.counts[Status.UPDATED] == 60
    arrivals = sorted(t for t, _ in server.sender.calls)
    # never more than the server's window plus what was already in flight at a 429
    assert max(sum(1 for u in arrivals if t <= u < t + 1.0) for t in arrivals) <= 5 + 8


async def test_a_huge_retry_after_gives_up_after_the_bound_on_paused_time(
    virtual_time: VirtualTimeLoop,
) -> None:
    def script(update: LeadUpdate, attempt: int) -> Reply:
        return Reply(429, "RATE_LIMITED", "come back in an hour", retry_after=3600.0)

    async with BulkUpdater(
        sender=FakeSender(script), rate=10, max_pause=3, give_up_after=60
    ) as updater:
        summary = await updater.run(rows(20))
    elapsed = virtual_time.time()
    assert summary.stopped is StopReason.API_DOWN
    assert "429" in (summary.stop_message or "")
    assert "--resume" in (summary.stop_message or "")
    assert elapsed <= 60 + 3 + 5 + 1  # the bound, one more pause, the grace period
    assert summary.counts[Status.ABORTED] == 20


async def test_the_default_bound_on_paused_time_is_ten_minutes(
    virtual_time: VirtualTimeLoop,
) -> None:
    def script(update: LeadUpdate, attempt: int) -> Reply:
        return Reply(429, "RATE_LIMITED", "no", retry_after=3600.0)

    async with BulkUpdater(sender=FakeSender(script), rate=10, max_pause=3) as updater:
        summary = await updater.run(rows(5))
    elapsed = virtual_time.time()
    assert summary.stopped is StopReason.API_DOWN
    assert 600 <= elapsed <= 600 + 3 + 5 + 1


async def test_an_answer_resets_the_bound_on_paused_time(virtual_time: VirtualTimeLoop) -> None:
    """A server that answers now and then between long 429s is slow, not down."""

    def script(update: LeadUpdate, attempt: int) -> Reply:
        if attempt == 1:
            return Reply(429, "RATE_LIMITED", "wait", retry_after=30.0)
        return Reply(200)

    summary, outcomes, _ = await run_job(script, 10, rate=10, concurrency=1, give_up_after=45)
    assert summary.stopped is None
    assert all(o.status is Status.UPDATED for o in outcomes)


@pytest.mark.parametrize(
    "body", ["<html>Sign in to the Wi-Fi</html>", "(empty body)", '{"success": false}']
)
async def test_a_2xx_that_is_not_the_api_answer_is_retried_never_updated(
    body: str, virtual_time: VirtualTimeLoop
) -> None:
    odd = Reply(200, "UNEXPECTED_ANSWER", f"HTTP 200, but not the API's answer ({body})", None)
    odd = Reply(odd.status, odd.error_code, odd.message, malformed=True)
    summary, (once, always), _ = await run_job(
        lambda u, a: odd if u.id == "lead1" or a == 1 else Reply(200), 2, max_attempts=3
    )
    assert once.status is Status.UPDATED
    assert once.attempts == 2
    assert always.status is Status.FAILED
    assert always.attempts == 3
    assert always.http_status == 200
    assert always.error_code == "UNEXPECTED_ANSWER"
    assert "not the API's answer" in always.message
    assert summary.counts[Status.UPDATED] == 1


async def test_a_host_that_does_not_resolve_stops_the_job_at_once(
    virtual_time: VirtualTimeLoop,
) -> None:
    def script(update: LeadUpdate, attempt: int) -> Exception:
        return TransportError(
            "dns", "the host api.sendkti.ai is not known (its name does not resolve); "
            "check --base-url",
        )  # fmt: skip

    summary, outcomes, sender = await run_job(script, 100, rate=0, concurrency=4)
    assert summary.stopped is StopReason.API_DOWN
    assert "--base-url" in (summary.stop_message or "")
    assert "api.sendkti.ai" in (summary.stop_message or "")
    assert len(sender.calls) <= 4  # the requests already started, no retry
    assert all(o.status is Status.ABORTED for o in outcomes)
    assert summary.exit_code == 3


async def test_connection_refused_stays_transient(virtual_time: VirtualTimeLoop) -> None:
    refused = TransportError("connection", "cannot connect to 127.0.0.1:9 (Connection refused)")
    summary, (outcome,), _ = await run_job(lambda u, a: refused if a < 3 else Reply(200), 1)
    assert outcome.status is Status.UPDATED
    assert summary.stopped is None


async def test_summary_exit_code_matches_the_outcome(virtual_time: VirtualTimeLoop) -> None:
    summary, _, _ = await run_job(lambda u, a: Reply(200) if u.id != "lead1" else Reply(404), 3)
    assert summary.exit_code == 1
    summary, _, _ = await run_job(lambda u, a: Reply(200), 3)
    assert summary.exit_code == 0
    assert repr(Status.UPDATED) == "'updated'"
    assert str({Status.UPDATED: 1}) == "{'updated': 1}"


async def test_a_stop_after_the_last_outcome_changes_nothing(virtual_time: VirtualTimeLoop) -> None:
    """An interrupt that lands once every row is done (during the final sort, say) is no stop."""
    async with BulkUpdater(sender=FakeSender(), rate=0) as updater:
        count = 0

        def on_outcome(outcome: Outcome) -> None:
            nonlocal count
            count += 1
            if count == 5:
                updater.stop("interrupted by SIGINT")

        summary = await updater.run(rows(5), on_outcome=on_outcome)
    assert summary.counts[Status.UPDATED] == 5
    assert summary.stopped is None
    assert summary.exit_code == 0


async def test_async_on_outcome_is_awaited() -> None:
    seen: list[int] = []

    async def on_outcome(outcome: Outcome) -> None:
        await _yield()
        seen.append(outcome.row)

    async with BulkUpdater(sender=FakeSender(latency=0), rate=0) as updater:
        summary = await updater.run(rows(20), on_outcome=on_outcome)
    assert sorted(seen) == list(range(1, 21))
    assert summary.counts[Status.UPDATED] == 20


async def _yield() -> None:
    import asyncio

    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.sleep(0)


class FaultyApi(SimulatedApi):
    """The faults job's server: `SimulatedApi`'s limit and `X-RateLimit-*` headers, and of the
    requests it admits 5% answered 503, 2% 500, 2% reset, 1% answered after `timeout` (the
    client's timeout, a `TransportError`). Records the most requests of one lead at once."""

    FAULTS = ("503",) * 5 + ("500",) * 2 + ("drop",) * 2 + ("slow",)

    def __init__(self, rate: float, timeout: float, seed: int) -> None:
        super().__init__(rate, headers="xrl", latency=0.005, seed=seed)
        self.timeout = timeout
        self.faults = random.Random(seed)
        self.sending: collections.Counter[str] = collections.Counter()
        self.most_per_lead = 0

    async def send(self, update: LeadUpdate) -> Reply:
        self.sending[update.id] += 1
        self.most_per_lead = max(self.most_per_lead, self.sending[update.id])
        try:
            reply = await super().send(update)
            if reply.status == 429 or self.faults.random() >= 0.1:
                return reply
            kind = self.faults.choice(self.FAULTS)
            if kind == "slow":
                await asyncio.sleep(self.timeout)
                raise TransportError("timeout", "no answer within the timeout")
            if kind == "drop":
                raise TransportError("connection", "the server closed the connection")
            return Reply(int(kind), f"HTTP_{kind}", "fault", headers=reply.headers)
        finally:
            self.sending[update.id] -= 1


@pytest.mark.parametrize("seed", [1, 2])
async def test_the_faults_job_retries_at_once_in_its_tail_never_past_the_rate(
    seed: int, virtual_time: VirtualTimeLoop
) -> None:
    """The faults job of issue 25 (1,000 rows, 150/s stated in headers, 10% faults, 1.5 s
    timeouts, `--rate 400 --concurrency 32`): retries that go at once in the tail still
    take a start slot each, so the server never answers 429, and no lead ever has two
    requests in flight (the row's last attempt is the one that counts)."""
    api = FaultyApi(150, 1.5, seed)
    options = {"rate": 400, "concurrency": 32, "timeout": 1.5, "max_attempts": 10}
    async with BulkUpdater(sender=api, **options) as updater:  # type: ignore[arg-type]
        summary = await updater.run(rows(1000))
    assert summary.counts[Status.UPDATED] == 1000
    assert summary.rate_limited == api.refused == 0
    assert api.most_per_lead == 1
    assert summary.retries > 50  # the faults were there to retry

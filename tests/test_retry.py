"""Retries: which answers are final, which are retried and how long to wait, the shared 429
pause, and the stops the answers call for (a refused key, an API that looks down).

Every job here runs against a `FakeSender` in virtual time (`virtual_time`). The refused key at
the library level is `tests/e2e/test_jobs.py`'s; interrupts are `tests/engine/test_pipeline.py`'s.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import random

import pytest

from bulk_updater import BulkUpdater, LeadUpdate, Outcome, Reply, Status, StopReason, Summary
from bulk_updater.client import TransportError
from bulk_updater.retry import RetryPolicy, Verdict, classify
from bulk_updater.settings import Settings
from tests.conftest import FakeSender, Script, VirtualTimeLoop, make_rows, transport_error


async def run_job(
    script: Script, n: int = 1, *, latency: float = 0.01, **settings: object
) -> tuple[Summary, list[Outcome], FakeSender]:
    """`n` rows through a `BulkUpdater` whose sender answers from `script`; outcomes by row."""
    sender = FakeSender(script, latency=latency)
    outcomes: list[Outcome] = []
    options: dict[str, object] = {"rate": 0, "concurrency": 4, "backoff_base": 0.5}
    options.update(settings)
    async with BulkUpdater(sender=sender, **options) as updater:  # type: ignore[arg-type]
        summary = await updater.run(make_rows(n), on_outcome=outcomes.append)
    outcomes.sort(key=lambda o: o.row)
    return summary, outcomes, sender


def fail_then_ok(failure: Reply | Exception, times: int) -> Script:
    def script(update: LeadUpdate, attempt: int) -> Reply | Exception:
        return failure if attempt <= times else Reply(200)

    return script


# --- which answers are final and which are retried


@pytest.mark.parametrize(
    ("status", "verdict", "final"),
    [
        (200, Verdict.FINAL, Status.UPDATED),
        (204, Verdict.FINAL, Status.UPDATED),
        (404, Verdict.FINAL, Status.NOT_FOUND),
        (400, Verdict.FINAL, Status.REJECTED),
        (409, Verdict.FINAL, Status.REJECTED),
        (422, Verdict.FINAL, Status.REJECTED),
        (429, Verdict.RATE_LIMITED, Status.FAILED),
        (401, Verdict.KEY_REFUSED, Status.ABORTED),
        (403, Verdict.KEY_REFUSED, Status.ABORTED),
        (408, Verdict.RETRY, Status.FAILED),
        (500, Verdict.RETRY, Status.FAILED),
        (502, Verdict.RETRY, Status.FAILED),
        (503, Verdict.RETRY, Status.FAILED),
        (504, Verdict.RETRY, Status.FAILED),
        (501, Verdict.FINAL, Status.FAILED),
        (302, Verdict.FINAL, Status.FAILED),
    ],
)
def test_classify(status: int, verdict: Verdict, final: Status) -> None:
    assert classify(status) == (verdict, final)


@pytest.mark.parametrize(
    "failure",
    [
        Reply(500, "INTERNAL", "boom"),
        Reply(502, "HTTP_502", "Bad Gateway"),
        Reply(503, "HTTP_503", "503 Service Temporarily Unavailable"),
        Reply(504, "HTTP_504", "Gateway Timeout"),
        TransportError("timeout", "no answer within the timeout"),
        transport_error(),
    ],
    ids=["500", "502", "503", "504", "timeout", "connection"],
)
async def test_each_transient_fault_is_retried_until_it_passes(
    virtual_time: VirtualTimeLoop, failure: Reply | Exception
) -> None:
    summary, (outcome,), sender = await run_job(fail_then_ok(failure, 2), max_attempts=3)
    assert outcome.status is Status.UPDATED
    assert outcome.attempts == 3
    assert sender.attempts["lead0"] == 3
    assert (summary.requests, summary.retries) == (3, 2)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, Status.REJECTED),
        (404, Status.NOT_FOUND),
        (409, Status.REJECTED),
        (422, Status.REJECTED),
    ],
)
async def test_final_answers_are_never_retried(
    virtual_time: VirtualTimeLoop, status: int, expected: Status
) -> None:
    failure = Reply(status, "VALIDATION_ERROR", "nope")
    summary, (outcome,), sender = await run_job(fail_then_ok(failure, 99), max_attempts=5)
    assert (outcome.status, outcome.attempts, outcome.http_status) == (expected, 1, status)
    assert outcome.error_code == "VALIDATION_ERROR"
    assert sender.attempts["lead0"] == 1
    assert summary.retries == 0


async def test_transient_failures_outlasting_the_budget_end_failed(
    virtual_time: VirtualTimeLoop,
) -> None:
    failure = Reply(503, "HTTP_503", "Service Unavailable")
    summary, (outcome,), _ = await run_job(fail_then_ok(failure, 99), max_attempts=4)
    assert (outcome.status, outcome.attempts, outcome.http_status) == (Status.FAILED, 4, 503)
    assert outcome.message == "Service Unavailable"
    assert summary.counts[Status.FAILED] == 1
    assert summary.stopped is None


async def test_connection_failure_outlasting_the_budget_names_the_cause(
    virtual_time: VirtualTimeLoop,
) -> None:
    _, (outcome,), _ = await run_job(fail_then_ok(transport_error(), 99), max_attempts=2)
    assert outcome.status is Status.FAILED
    assert outcome.error_code == "CONNECTION"
    assert "closed the connection" in outcome.message


async def test_a_timeout_outlasting_the_budget_has_its_own_code(
    virtual_time: VirtualTimeLoop,
) -> None:
    timeout = TransportError("timeout", "no answer within the timeout")
    _, (outcome,), _ = await run_job(fail_then_ok(timeout, 99), max_attempts=2)
    assert (outcome.status, outcome.error_code) == (Status.FAILED, "TIMEOUT")
    assert outcome.message == "no answer within the timeout"


# --- how long to wait


async def test_backoff_grows_exponentially_with_a_cap(virtual_time: VirtualTimeLoop) -> None:
    failure = Reply(503)
    _, _, sender = await run_job(
        fail_then_ok(failure, 6), latency=0, max_attempts=7, backoff_base=1.0, backoff_max=4.0
    )
    times = [t for t, _ in sender.calls]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # equal jitter: each wait lies in [ceiling / 2, ceiling], ceilings 1, 2, 4, 4, 4, 4
    for gap, ceiling in zip(gaps, [1, 2, 4, 4, 4, 4], strict=True):
        assert ceiling / 2 <= gap <= ceiling


def test_policy_backoff_stays_within_bounds() -> None:
    policy = RetryPolicy(Settings.build(backoff_base=0.5, backoff_max=30))
    for failures in range(1, 60):
        ceiling = min(30, 0.5 * 2 ** (failures - 1))
        assert ceiling / 2 <= policy.backoff(failures) <= ceiling


# --- 429: the pause every worker shares


async def test_429_does_not_spend_the_row_attempts(virtual_time: VirtualTimeLoop) -> None:
    limited = Reply(429, "RATE_LIMITED", "Too many requests", retry_after=1.0)
    summary, (outcome,), _ = await run_job(fail_then_ok(limited, 10), max_attempts=2)
    assert outcome.status is Status.UPDATED
    assert outcome.attempts == 11
    assert summary.rate_limited == 10
    assert summary.retries == 10


async def test_429_pauses_every_worker_for_retry_after(virtual_time: VirtualTimeLoop) -> None:
    def script(update: LeadUpdate, attempt: int) -> Reply | Exception:
        if update.id == "lead0" and attempt == 1:
            return Reply(429, "RATE_LIMITED", "slow down", retry_after=7.0)
        return Reply(200)

    summary, outcomes, sender = await run_job(script, 40, latency=0.1, concurrency=8, rate=20)
    assert all(o.status is Status.UPDATED for o in outcomes)
    first_429_answer = sender.calls[0][0] + 0.1
    started_during_pause = [
        t for t, _ in sender.calls if first_429_answer < t < first_429_answer + 7.0
    ]
    assert started_during_pause == []
    assert summary.rate_limited == 1


async def test_429_without_retry_after_pauses_for_a_backoff(virtual_time: VirtualTimeLoop) -> None:
    def script(update: LeadUpdate, attempt: int) -> Reply | Exception:
        if update.id == "lead0" and attempt == 1:
            return Reply(429, "RATE_LIMITED", "slow down")
        return Reply(200)

    _, outcomes, sender = await run_job(script, 10, latency=0.1, concurrency=1, backoff_base=2.0)
    assert outcomes[0].status is Status.UPDATED
    (t0, _), (t1, _) = sender.calls[:2]
    assert 1.0 <= t1 - (t0 + 0.1) <= 2.0  # equal jitter around the first backoff of 2 s


async def test_retry_after_is_capped(virtual_time: VirtualTimeLoop) -> None:
    limited = Reply(429, retry_after=86_400.0)
    _, (outcome,), sender = await run_job(fail_then_ok(limited, 1), max_pause=30)
    (t0, _), (t1, _) = sender.calls
    assert outcome.status is Status.UPDATED
    assert t1 - t0 == pytest.approx(30.01, abs=0.02)


# --- answers that stop the job


async def test_forbidden_stops_the_job_too(virtual_time: VirtualTimeLoop) -> None:
    forbidden = Reply(403, "FORBIDDEN", "You don't have permission to access this resource")
    summary, _, sender = await run_job(fail_then_ok(forbidden, 99), 100, concurrency=4)
    assert summary.stopped is StopReason.KEY_REFUSED
    assert len(sender.calls) <= 4


async def test_a_long_run_of_failures_stops_the_job_as_api_down(
    virtual_time: VirtualTimeLoop,
) -> None:
    down = Reply(503, "HTTP_503", "Service Unavailable")
    summary, _outcomes, sender = await run_job(
        fail_then_ok(down, 10**6), 1000, concurrency=4, streak_limit=20, max_attempts=5
    )
    assert summary.stopped is StopReason.API_DOWN
    assert "looks down" in (summary.stop_message or "")
    assert len(sender.calls) < 20 + 4 * 2
    assert summary.counts[Status.ABORTED] + summary.counts[Status.FAILED] == 1000
    assert summary.counts[Status.ABORTED] >= 990


async def test_successes_reset_the_failure_streak(virtual_time: VirtualTimeLoop) -> None:
    def flaky(update: LeadUpdate, attempt: int) -> Reply | Exception:
        return Reply(503) if attempt == 1 else Reply(200)

    summary, outcomes, _ = await run_job(flaky, 300, concurrency=1, streak_limit=3)
    assert summary.stopped is None
    assert all(o.status is Status.UPDATED for o in outcomes)


# --- ids that are not this account's: the first rows sent all not_found


def not_found_except(found: set[str]) -> Script:
    def script(update: LeadUpdate, attempt: int) -> Reply | Exception:
        return Reply(200) if update.id in found else Reply(404, "NOT_FOUND", "Lead not found")

    return script


async def test_first_rows_all_not_found_stop_the_job_naming_the_id_column(
    virtual_time: VirtualTimeLoop,
) -> None:
    """A CRM's ids mapped to `id`: the job stops after the first 50 answers, not 2,500 PATCHes."""
    sender = FakeSender(not_found_except(set()))
    rows = [{"Lead ID": f"00Q5e00000Ab{i:06d}", "jobTitle": "CTO"} for i in range(2500)]
    async with BulkUpdater(sender=sender, rate=0, concurrency=4) as updater:
        summary = await updater.run(rows, columns={"Lead ID": "id"})
    assert summary.stopped is StopReason.UNKNOWN_IDS
    message = summary.stop_message or ""
    assert "first 50 rows sent were all not_found" in message
    assert "column `Lead ID`" in message
    assert "`00Q5e00000Ab000000`" in message
    assert "--allow-not-found" in message
    assert summary.exit_code == 3
    assert len(sender.calls) < 50 + 4 * 2
    assert summary.counts[Status.NOT_FOUND] < 50 + 4 * 2
    assert summary.counts[Status.ABORTED] + summary.counts[Status.NOT_FOUND] == 2500


async def test_no_request_starts_once_the_50th_not_found_is_in(
    virtual_time: VirtualTimeLoop,
) -> None:
    """At no rate limit, the requests in flight then still end; no other starts."""
    events: list[str] = []

    def script(update: LeadUpdate, attempt: int) -> Reply:
        events.append("answer")
        return Reply(404, "NOT_FOUND", "Lead not found")

    class Recording(FakeSender):
        async def send(self, update: LeadUpdate) -> Reply:
            events.append("start")
            self.latency = 0.01 + int(update.id.removeprefix("lead")) % 7 * 0.003
            return await super().send(update)

    sender = Recording(script)
    async with BulkUpdater(sender=sender, rate=0, concurrency=64) as updater:
        summary = await updater.run(make_rows(600))
    assert summary.stopped is StopReason.UNKNOWN_IDS
    fiftieth = [n for n, event in enumerate(events) if event == "answer"][49]
    assert events.count("start") > 50  # some were in flight
    assert "start" not in events[fiftieth:]


async def test_no_stop_is_told_when_every_row_was_sent_before_it(
    virtual_time: VirtualTimeLoop,
) -> None:
    """60 rows, all in flight before the 50th answer: the stop stopped nothing."""
    summary, outcomes, sender = await run_job(not_found_except(set()), 60, concurrency=64)
    assert len(sender.calls) == 60
    assert summary.stopped is None
    assert summary.exit_code == 1
    assert {o.status for o in outcomes} == {Status.NOT_FOUND}
    (warning,) = summary.warnings
    assert warning.startswith("the first 50 rows sent were all not_found")


async def test_one_id_found_among_the_first_rows_lets_the_job_go_on(
    virtual_time: VirtualTimeLoop,
) -> None:
    """A file whose 49 first leads were deleted is not a file of wrong ids."""
    summary, outcomes, _ = await run_job(not_found_except({"lead49"}), 200, concurrency=1)
    assert summary.stopped is None
    assert outcomes[49].status is Status.UPDATED
    assert summary.counts[Status.NOT_FOUND] == 199


async def test_allow_not_found_sends_every_row(virtual_time: VirtualTimeLoop) -> None:
    summary, _, sender = await run_job(not_found_except(set()), 200, allow_not_found=True)
    assert summary.stopped is None
    assert len(sender.calls) == 200
    assert summary.counts[Status.NOT_FOUND] == 200
    assert summary.exit_code == 1


async def test_retried_failures_then_not_found_still_count_once_per_row(
    virtual_time: VirtualTimeLoop,
) -> None:
    """Only final answers of PATCHes count: a 503 retried into a 404 is one `not_found` row."""

    def script(update: LeadUpdate, attempt: int) -> Reply | Exception:
        return Reply(503) if attempt == 1 else Reply(404, "NOT_FOUND", "Lead not found")

    summary, _, sender = await run_job(script, 49, concurrency=1)
    assert summary.stopped is None
    assert summary.counts[Status.NOT_FOUND] == 49
    assert len(sender.calls) == 98


# --- the tail: a retry goes as soon as the rules allow


def test_a_retry_waits_only_what_its_failed_attempt_did_not() -> None:
    """The backoff is the gap between two attempts' starts: a timeout already waited it."""
    policy = RetryPolicy(Settings.build(backoff_base=1.0, backoff_max=30))
    assert policy.retry_wait(1, took=1.5, calm=False) == 0.0
    for failures in range(1, 8):
        ceiling = min(30, 2 ** (failures - 1))
        assert ceiling / 2 - 1.5 <= policy.retry_wait(failures, took=1.5, calm=False)
        assert policy.retry_wait(failures, took=1.5, calm=False) <= max(0.0, ceiling - 1.5)
        assert policy.retry_wait(failures, took=0.0, calm=True) == 0.0


def slow_then_ok(lead: str, seconds: float) -> Script:
    """`lead`'s first attempt times out after `seconds`; every other attempt succeeds."""

    def script(update: LeadUpdate, attempt: int) -> Reply | Exception:
        if update.id == lead and attempt == 1:
            return TransportError("timeout", "no answer within the timeout")
        return Reply(200)

    return script


class SlowFailures(FakeSender):
    """A `FakeSender` whose failing attempts take `seconds` (a timeout), the others 10 ms."""

    def __init__(self, script: Script, seconds: float) -> None:
        super().__init__(script)
        self.seconds = seconds

    async def send(self, update: LeadUpdate) -> Reply:
        failing = isinstance(self.script(update, self.attempts[update.id] + 1), TransportError)
        self.latency = self.seconds if failing else 0.01  # read before `send` first awaits
        return await super().send(update)


async def test_the_retry_after_a_timeout_goes_when_it_fails(virtual_time: VirtualTimeLoop) -> None:
    """Alone (no success yet to show the server healthy) it still waits no further backoff:
    the timeout's 1.5 s are longer than it."""
    sender = SlowFailures(slow_then_ok("lead0", 1.5), 1.5)
    async with BulkUpdater(sender=sender, rate=0, backoff_base=0.5) as updater:
        summary = await updater.run(make_rows(1))
    (t0, _), (t1, _) = sender.calls
    assert summary.counts[Status.UPDATED] == 1
    assert t1 - t0 == pytest.approx(1.5, abs=0.001)


def fail_lead(lead: str, times: int) -> Script:
    """`lead` gets a 503 `times` times, then a success; every other lead succeeds at once."""

    def script(update: LeadUpdate, attempt: int) -> Reply | Exception:
        return Reply(503) if update.id == lead and attempt <= times else Reply(200)

    return script


async def test_in_the_tail_a_healthy_job_retries_at_once_until_failures_pile_up(
    virtual_time: VirtualTimeLoop,
) -> None:
    """The last row fails while nothing else waits for a start: its first two retries go at
    once (the answers before were successes), the third waits its backoff (three failures in
    a row, job-wide, are trouble), and the limiter still paces every start."""
    _, outcomes, sender = await run_job(
        fail_lead("lead9", 4), 10, concurrency=1, rate=20, backoff_base=2.0
    )
    assert outcomes[9].status is Status.UPDATED
    times = [t for t, lead in sender.calls if lead == "lead9"]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    slot = 1.01 / 20
    assert all(gap <= sender.latency + slot + 1e-9 for gap in gaps[:2])
    # equal jitter around 2 s doubling: the third failure's ceiling is 8 s, the fourth's 16 s
    assert 8.0 / 2 <= gaps[2] - sender.latency <= 8.0
    assert 16.0 / 2 <= gaps[3] - sender.latency <= 16.0
    starts = [t for t, _ in sender.calls]
    assert all(b - a >= 1 / 20 for a, b in itertools.pairwise(starts))


async def test_while_requests_wait_for_a_start_a_retry_backs_off(
    virtual_time: VirtualTimeLoop,
) -> None:
    """Mid-job the rate is busy: a retry at once would only take a fresh row's slot."""
    _, outcomes, sender = await run_job(
        fail_lead("lead5", 1), 40, concurrency=8, rate=20, backoff_base=2.0
    )
    assert outcomes[5].status is Status.UPDATED
    first, second = (t for t, lead in sender.calls if lead == "lead5")
    assert second - (first + sender.latency) >= 2.0 / 2


async def test_a_backoff_ends_once_the_last_waiting_request_has_started(
    virtual_time: VirtualTimeLoop,
) -> None:
    """A row fails mid-job, while others wait for a start: it backs off. Once the last of them
    has started (the job's tail), the rate would idle while it sleeps: it retries on the next
    slot instead, still paced."""
    _, outcomes, sender = await run_job(
        fail_lead("lead30", 1), 40, concurrency=8, rate=20, backoff_base=8.0
    )
    assert outcomes[30].status is Status.UPDATED
    first, second = (t for t, lead in sender.calls if lead == "lead30")
    last_other = max(t for t, lead in sender.calls if lead != "lead30")
    assert first < last_other < second <= last_other + 1.01 / 20 + 1e-6
    assert second - first < 8.0 / 2  # the backoff's least wait, cut short
    starts = [t for t, _ in sender.calls]
    assert all(b - a >= 1 / 20 for a, b in itertools.pairwise(starts))


async def test_a_backoff_is_not_cut_short_while_failures_pile_up(
    virtual_time: VirtualTimeLoop,
) -> None:
    """The tail is no reason to skip a backoff when the server is failing: three failures in a
    row (job-wide) and the row waits its backoff out."""
    _, outcomes, sender = await run_job(
        fail_lead("lead39", 4), 40, concurrency=8, rate=20, backoff_base=8.0
    )
    assert outcomes[39].status is Status.UPDATED
    times = [t for t, lead in sender.calls if lead == "lead39"]
    assert times[3] - times[2] >= 16.0 / 2


def storm(start: float, end: float, share: float, seed: int = 7) -> Script:
    """Between loop times `start` and `end`, a `share` of the answers are 503s (seeded); a
    success otherwise."""
    chance = random.Random(seed)

    def script(update: LeadUpdate, attempt: int) -> Reply | Exception:
        now = asyncio.get_running_loop().time()
        return Reply(503) if start <= now < end and chance.random() < share else Reply(200)

    return script


@pytest.mark.parametrize("rate", [0, 2000], ids=["no rate", "concurrency binds"])
async def test_a_storm_of_failures_mid_job_is_backed_off_by_every_row(
    virtual_time: VirtualTimeLoop, rate: float
) -> None:
    """1.5 s of 70% 503s mid-job, while no request waits for a start slot (no rate, or one that
    50 workers at 50 ms never reach): the job is no tail, so every retry waits its backoff, and
    the backoffs outlast the storm, so every row ends `updated`."""
    base = 0.5
    start = asyncio.get_running_loop().time()
    summary, _, sender = await run_job(
        storm(start + 0.5, start + 2.0, 0.7),
        2000,
        latency=0.05,
        rate=rate,
        concurrency=50,
        backoff_base=base,
    )
    assert summary.counts[Status.UPDATED] == 2000
    by_lead: dict[str, list[float]] = collections.defaultdict(list)
    for t, lead in sender.calls:
        by_lead[lead].append(t)
    retried = [times for times in by_lead.values() if len(times) > 1]
    assert len(retried) >= 50  # the storm hit
    for times in retried:
        for failures, (a, b) in enumerate(itertools.pairwise(times), start=1):
            assert b - a >= base * 2 ** (failures - 1) / 2 - 1e-9


async def test_without_a_rate_the_tail_cuts_no_backoff_short(
    virtual_time: VirtualTimeLoop,
) -> None:
    """`--rate 0`: no slot idles while a row sleeps, so even the last row waits its backoff."""
    _, outcomes, sender = await run_job(fail_lead("lead9", 1), 10, concurrency=1, backoff_base=2.0)
    assert outcomes[9].status is Status.UPDATED
    first, second = (t for t, lead in sender.calls if lead == "lead9")
    assert second - first >= 2.0 / 2


async def test_each_attempt_is_logged_at_debug_with_its_answer(
    virtual_time: VirtualTimeLoop, caplog: pytest.LogCaptureFixture
) -> None:
    """`-v` shows every request: the answer of each attempt, or its transport error."""
    caplog.set_level("DEBUG", logger="bulk_updater")
    await run_job(fail_then_ok(transport_error(), 1), latency=0.25)
    lines = [r.getMessage() for r in caplog.records if " -> " in r.getMessage()]
    first_id = make_rows(1)[0]["id"]
    assert lines[0].startswith(f"PATCH {first_id} -> ")
    assert lines[0].endswith(" in 250 ms")
    assert "200" not in lines[0]
    assert lines[1] == f"PATCH {first_id} -> 200 in 250 ms"

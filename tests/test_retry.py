"""Retries, the shared 429 pause and the job stops, with a fake sender in virtual time."""

from __future__ import annotations

import itertools

import pytest

from bulk_updater import BulkUpdater, LeadUpdate, Outcome, Reply, Status, StopReason, Summary
from bulk_updater.client import TransportError
from bulk_updater.retry import RetryPolicy, Verdict, classify
from bulk_updater.settings import Settings

from .conftest import FakeSender, Script, run_virtual, transport_error


def rows(n: int) -> list[dict[str, str]]:
    return [{"id": f"lead{i}", "jobTitle": f"T{i}"} for i in range(n)]


def run_job(
    script: Script, n: int = 1, *, latency: float = 0.01, **settings: object
) -> tuple[Summary, list[Outcome], FakeSender]:
    sender = FakeSender(script, latency=latency)
    outcomes: list[Outcome] = []

    async def main() -> Summary:
        options: dict[str, object] = {"rate": 0, "concurrency": 4, "backoff_base": 0.5}
        options.update(settings)
        async with BulkUpdater(sender=sender, **options) as updater:  # type: ignore[arg-type]
            return await updater.run(rows(n), on_outcome=outcomes.append)

    summary = run_virtual(main())
    outcomes.sort(key=lambda o: o.row)
    return summary, outcomes, sender


def fail_then_ok(failure: Reply | Exception, times: int) -> Script:
    def script(update: LeadUpdate, attempt: int) -> Reply | Exception:
        return failure if attempt <= times else Reply(200)

    return script


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
def test_each_transient_fault_is_retried_until_it_passes(failure: Reply | Exception) -> None:
    summary, (outcome,), sender = run_job(fail_then_ok(failure, 2), max_attempts=3)
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
def test_final_answers_are_never_retried(status: int, expected: Status) -> None:
    failure = Reply(status, "VALIDATION_ERROR", "nope")
    summary, (outcome,), sender = run_job(fail_then_ok(failure, 99), max_attempts=5)
    assert (outcome.status, outcome.attempts, outcome.http_status) == (expected, 1, status)
    assert outcome.error_code == "VALIDATION_ERROR"
    assert sender.attempts["lead0"] == 1
    assert summary.retries == 0


def test_transient_failures_outlasting_the_budget_end_failed() -> None:
    failure = Reply(503, "HTTP_503", "Service Unavailable")
    summary, (outcome,), _ = run_job(fail_then_ok(failure, 99), max_attempts=4)
    assert (outcome.status, outcome.attempts, outcome.http_status) == (Status.FAILED, 4, 503)
    assert outcome.message == "Service Unavailable"
    assert summary.counts[Status.FAILED] == 1
    assert summary.stopped is None


def test_connection_failure_outlasting_the_budget_names_the_cause() -> None:
    _, (outcome,), _ = run_job(fail_then_ok(transport_error(), 99), max_attempts=2)
    assert outcome.status is Status.FAILED
    assert outcome.error_code == "CONNECTION"
    assert "closed the connection" in outcome.message


def test_backoff_grows_exponentially_with_a_cap() -> None:
    failure = Reply(503)
    _, _, sender = run_job(
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


def test_429_does_not_spend_the_row_attempts() -> None:
    limited = Reply(429, "RATE_LIMITED", "Too many requests", retry_after=1.0)
    summary, (outcome,), _ = run_job(fail_then_ok(limited, 10), max_attempts=2)
    assert outcome.status is Status.UPDATED
    assert outcome.attempts == 11
    assert summary.rate_limited == 10
    assert summary.retries == 10


def test_429_pauses_every_worker_for_retry_after() -> None:
    def script(update: LeadUpdate, attempt: int) -> Reply | Exception:
        if update.id == "lead0" and attempt == 1:
            return Reply(429, "RATE_LIMITED", "slow down", retry_after=7.0)
        return Reply(200)

    summary, outcomes, sender = run_job(script, 40, latency=0.1, concurrency=8, rate=20)
    assert all(o.status is Status.UPDATED for o in outcomes)
    first_429_answer = sender.calls[0][0] + 0.1
    started_during_pause = [
        t for t, _ in sender.calls if first_429_answer < t < first_429_answer + 7.0
    ]
    assert started_during_pause == []
    assert summary.rate_limited == 1


def test_429_without_retry_after_pauses_for_a_backoff() -> None:
    def script(update: LeadUpdate, attempt: int) -> Reply | Exception:
        if update.id == "lead0" and attempt == 1:
            return Reply(429, "RATE_LIMITED", "slow down")
        return Reply(200)

    _, outcomes, sender = run_job(script, 10, latency=0.1, concurrency=1, backoff_base=2.0)
    assert outcomes[0].status is Status.UPDATED
    (t0, _), (t1, _) = sender.calls[:2]
    assert 1.0 <= t1 - (t0 + 0.1) <= 2.0  # equal jitter around the first backoff of 2 s


def test_retry_after_is_capped() -> None:
    limited = Reply(429, retry_after=86_400.0)
    _, (outcome,), sender = run_job(fail_then_ok(limited, 1), max_pause=30)
    (t0, _), (t1, _) = sender.calls
    assert outcome.status is Status.UPDATED
    assert t1 - t0 == pytest.approx(30.01, abs=0.02)


def test_refused_key_stops_the_job_after_about_concurrency_requests() -> None:
    refused = Reply(401, "UNAUTHORIZED", "Invalid or missing API key")
    summary, outcomes, sender = run_job(fail_then_ok(refused, 99), 2000, concurrency=8)
    assert len(sender.calls) <= 8
    assert summary.stopped is StopReason.KEY_REFUSED
    assert "refused the key" in (summary.stop_message or "")
    assert len(outcomes) == 2000
    assert {o.status for o in outcomes} == {Status.ABORTED}
    assert [o.row for o in outcomes] == list(range(1, 2001))


def test_forbidden_stops_the_job_too() -> None:
    forbidden = Reply(403, "FORBIDDEN", "You don't have permission to access this resource")
    summary, _, sender = run_job(fail_then_ok(forbidden, 99), 100, concurrency=4)
    assert summary.stopped is StopReason.KEY_REFUSED
    assert len(sender.calls) <= 4


def test_a_long_run_of_failures_stops_the_job_as_api_down() -> None:
    down = Reply(503, "HTTP_503", "Service Unavailable")
    summary, _outcomes, sender = run_job(
        fail_then_ok(down, 10**6), 1000, concurrency=4, streak_limit=20, max_attempts=5
    )
    assert summary.stopped is StopReason.API_DOWN
    assert "looks down" in (summary.stop_message or "")
    assert len(sender.calls) < 20 + 4 * 2
    assert summary.counts[Status.ABORTED] + summary.counts[Status.FAILED] == 1000
    assert summary.counts[Status.ABORTED] >= 990


def test_successes_reset_the_failure_streak() -> None:
    def flaky(update: LeadUpdate, attempt: int) -> Reply | Exception:
        return Reply(503) if attempt == 1 else Reply(200)

    summary, outcomes, _ = run_job(flaky, 300, concurrency=1, streak_limit=3)
    assert summary.stopped is None
    assert all(o.status is Status.UPDATED for o in outcomes)


def test_interrupt_lets_requests_in_flight_finish_and_aborts_the_rest() -> None:
    sender = FakeSender(latency=1.0)
    outcomes: list[Outcome] = []

    async def main() -> Summary:
        async with BulkUpdater(sender=sender, rate=0, concurrency=4, grace=5) as updater:

            def collect(outcome: Outcome) -> None:
                outcomes.append(outcome)
                if len(outcomes) == 8:
                    updater.stop("interrupted by test")

            return await updater.run(rows(1000), on_outcome=collect)

    summary = run_virtual(main())
    assert summary.stopped is StopReason.INTERRUPTED
    updated = [o for o in outcomes if o.status is Status.UPDATED]
    assert len(updated) == 12  # 8, then the 4 in flight when the stop came
    assert len(sender.calls) == 12
    aborted = [o for o in outcomes if o.status is Status.ABORTED]
    assert all("interrupted by test" in o.message for o in aborted)
    assert len({o.row for o in outcomes}) == len(outcomes)


def test_interrupt_cancels_requests_that_outlast_the_grace_period() -> None:
    sender = FakeSender(latency=100.0)

    async def main() -> tuple[Summary, float]:
        async with BulkUpdater(sender=sender, rate=0, concurrency=3, grace=2) as updater:
            loop = __import__("asyncio").get_running_loop()
            loop.call_later(1.0, updater.stop)
            summary = await updater.run(rows(50))
            return summary, loop.time()

    summary, ended = run_virtual(main())
    assert ended == pytest.approx(3.0, abs=0.1)
    assert summary.counts[Status.ABORTED] >= 3
    assert summary.counts[Status.UPDATED] == 0

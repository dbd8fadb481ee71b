"""`RedisLimiter` against a real `redis-server`: several limiters (each as a process would have
its own) share one budget and one pause; Redis that cannot be reached, refuses the password or
goes away; the learned rate; a start made too late (the settings: test_shared_settings.py).

These tests run in real time (Redis has its own clock) and keep it short: a second or two.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio

from bulk_updater import ConfigError, Reply
from bulk_updater.limits import (
    LimiterDown,
    Stopped,
    account_state,
    departures,
    redis_budget,
    shared,
)
from bulk_updater.limits.guard import GUARD_SPAN, SLACK
from bulk_updater.limits.pacer import TOO_MANY, PausePolicy
from bulk_updater.limits.redis_budget import budget_keys
from bulk_updater.limits.shared import RedisLimiter
from bulk_updater.sandbox import max_in_any_window
from bulk_updater.settings import RedisClock
from tests.redis_server import RedisServer, merge_starts
from tests.servers import free_port

#: Pauses as short as a test can afford: Retry-After wins over a backoff of at most 20 ms.
QUICK = PausePolicy(backoff_base=0.01, backoff_max=0.02, max_pause=5.0)


def limiter(url: str, rate: float = 50, clock: RedisClock = "redis") -> RedisLimiter:
    return RedisLimiter(url, rate=rate, account="test-account", policy=QUICK, clock=clock)


async def opened(*limiters: RedisLimiter) -> tuple[RedisLimiter, ...]:
    for one in limiters:
        await one.open()
        one.begin()
    return limiters


@pytest.fixture
async def pair(redis_url: str) -> AsyncIterator[tuple[RedisLimiter, RedisLimiter]]:
    """Two limiters on one account, as two processes would hold them."""
    first, second = await opened(limiter(redis_url), limiter(redis_url))
    yield first, second
    await first.close()
    await second.close()


async def hammer(limiters: tuple[RedisLimiter, ...], tasks: int, total: int) -> list[float]:
    """`tasks` tasks per limiter acquire until `total` starts were had; the start times as the
    schedule recorded them (read as they come: Redis keeps only the latest R)."""
    client = redis.asyncio.Redis.from_url(limiters[0].url, decode_responses=True)
    key = budget_keys(limiters[0].account)[1]
    recorded: set[float] = set()
    count = 0

    async def one(limiter: RedisLimiter) -> None:
        nonlocal count
        while count < total:
            await limiter.acquire()
            count += 1
            if count % 20 == 0:
                merge_starts(recorded, await client.lrange(key, 0, -1))

    await asyncio.gather(*(one(lim) for lim in limiters for _ in range(tasks)))
    merge_starts(recorded, await client.lrange(key, 0, -1))
    await client.aclose()
    return sorted(recorded)


# --- sharing


@pytest.mark.parametrize("clock", ["redis", "local"])
async def test_limiters_on_one_account_share_its_rate(redis_url: str, clock: RedisClock) -> None:
    limiters = await opened(*(limiter(redis_url, rate=100, clock=clock) for _ in range(3)))
    try:
        starts = await hammer(limiters, tasks=8, total=150)
    finally:
        for one in limiters:
            await one.close()
    assert len(starts) >= 150  # every start, and a few that were never used (stopped callers)
    assert max_in_any_window(starts) <= 100
    # Not faster than the schedule allows, whatever the load (a slow machine may be slower).
    assert starts[-1] - starts[0] >= (len(starts) - 1) * SLACK / 100 - 0.001


async def test_other_accounts_have_budgets_of_their_own(redis_url: str) -> None:
    mine, theirs = await opened(
        RedisLimiter(redis_url, rate=1, account="mine"),
        RedisLimiter(redis_url, rate=1, account="theirs"),
    )
    loop = asyncio.get_running_loop()
    started = loop.time()
    await mine.acquire()
    await theirs.acquire()  # at once: a rate of 1 on another account is no constraint
    assert loop.time() - started < 0.5
    await mine.close()
    await theirs.close()


async def test_a_429_in_one_process_pauses_the_other(
    pair: tuple[RedisLimiter, RedisLimiter],
) -> None:
    first, second = pair
    await second.acquire()
    loop = asyncio.get_running_loop()
    paused_at = loop.time()
    assert first.pause(Reply(429, retry_after=0.4)) == pytest.approx(0.4)
    await first.calls.arrived()  # the pause has reached Redis
    await second.acquire()
    assert loop.time() - paused_at >= 0.35  # Redis's clock and ours tick alike, to a few ms


async def test_the_run_of_429s_is_counted_for_the_account(
    pair: tuple[RedisLimiter, RedisLimiter],
) -> None:
    first, second = pair
    first.pause(Reply(429, retry_after=0.05))
    await first.calls.arrived()
    await second.acquire()  # it learns the streak, so its own next pause backs off further
    assert second._account.streak == 1
    second.observe(Reply(200), 0.01)  # an answer: the run is over, for everyone
    await second.calls.arrived()
    await first.acquire()
    assert first._account.streak == 0


async def test_a_429_here_holds_every_caller_here_at_once(redis_url: str) -> None:
    (one,) = await opened(limiter(redis_url, rate=100))
    loop = asyncio.get_running_loop()
    await one.acquire()
    started = loop.time()
    one.pause(Reply(429, retry_after=0.5))  # before Redis has heard of it
    await asyncio.gather(*(one.acquire() for _ in range(3)))
    assert loop.time() - started >= 0.5
    await one.close()


async def test_a_jobs_own_429_is_not_shown_as_another_jobs(redis_url: str) -> None:
    """Redis sets the pause a round trip after it began here: it ends a moment later."""
    (one,) = await opened(limiter(redis_url))
    one.pause(Reply(429, retry_after=0.3))
    await one.calls.arrived()
    assert one.holds.why == TOO_MANY
    await one.acquire()
    assert one.holds.why == TOO_MANY
    await one.close()


async def test_another_jobs_long_pause_holds_this_one_for_its_own_max_pause(
    redis_url: str,
) -> None:
    """Job A (--max-pause 300) took a Retry-After of 300; job B (--max-pause 0.3) is held 0.3 s,
    counts it toward its --give-up-after, and then goes on."""
    patient = PausePolicy(0.01, 0.02, max_pause=300.0)
    brief = PausePolicy(0.01, 0.02, max_pause=0.3, give_up_after=10.0)
    a, b = await opened(
        RedisLimiter(redis_url, rate=50, account="test-account", policy=patient),
        RedisLimiter(redis_url, rate=50, account="test-account", policy=brief),
    )
    a.pause(Reply(429, retry_after=300.0))
    await a.calls.arrived()
    loop = asyncio.get_running_loop()
    started = loop.time()
    await b.acquire()
    assert 0.25 <= loop.time() - started < 2.0
    assert b.holds.held == pytest.approx(0.3, abs=0.05)
    assert b.holds.why == account_state.SHARED_PAUSE
    await a.close()
    await b.close()


async def test_a_pause_far_in_the_future_in_the_keys_is_replaced_with_one_warning(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    (one,) = await opened(limiter(redis_url))
    client = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
    await client.hset(budget_keys("test-account")[0], mapping={"until": "1e12", "next": "nan"})
    await client.aclose()
    loop = asyncio.get_running_loop()
    started = loop.time()
    with caplog.at_level(logging.WARNING, logger="bulk_updater"):
        for _ in range(3):
            await one.acquire()
    assert loop.time() - started < 1.0
    said = [r.getMessage() for r in caplog.records if "replaced" in r.getMessage()]
    assert len(said) == 2  # one for each bad value, once
    assert any("a pause ending more than an hour from now" in line for line in said)
    await one.close()


async def test_a_wait_for_a_start_recorded_ahead_is_a_hold_capped_and_counted(
    redis_url: str,
) -> None:
    """Another host's clock a little ahead listed a start 0.2 s from now among the last `cap`:
    the guard waits for it, at most --max-pause at a time, and the job counts it as a hold."""
    brief = PausePolicy(0.01, 0.02, max_pause=0.1, give_up_after=10.0)
    (one,) = await opened(RedisLimiter(redis_url, rate=10, account="test-account", policy=brief))
    client = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
    seconds, micros = await client.time()
    now = seconds + micros / 1e6
    starts = [f"{now - 0.05:.6f}"] * 9 + [f"{now + 0.2:.6f}"]  # newest first: ahead is oldest
    await client.rpush(budget_keys("test-account")[1], *starts)
    await client.aclose()
    await one.acquire()
    assert one.holds.why == account_state.STARTS_AHEAD
    assert 0.1 <= one.holds.held < 1.0
    await one.close()


async def test_a_shared_rate_reaches_the_other_processes(
    pair: tuple[RedisLimiter, RedisLimiter],
) -> None:
    first, second = pair
    assert second.shared_rate() is None
    first.share_rate(37.5)
    assert first.shared_rate() == 37.5
    await first.calls.arrived()
    await second.acquire()
    assert second.shared_rate() == 37.5


#: How far ahead this task's host clock runs, for `--redis-clock local` (`SkewedTime`).
SKEW: contextvars.ContextVar[float] = contextvars.ContextVar("skew", default=0.0)


class SkewedTime:
    """`time` as `redis_budget.py` reads it, on a host whose clock is `SKEW` ahead."""

    @staticmethod
    def time() -> float:
        return time.time() + SKEW.get()


async def test_a_job_never_exceeds_its_rate_when_the_hosts_clocks_disagree(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """With --redis-clock local and one host 120 s ahead, each job read the other's starts as
    long past or in the future: neither held the other back, and the one ahead went at
    nearly twice its own rate. By its own count, a job never goes over its rate; the job
    behind says what to do."""
    monkeypatch.setattr(redis_budget, "time", SkewedTime)
    ahead, behind = await opened(limiter(redis_url, 10, "local"), limiter(redis_url, 10, "local"))
    loop = asyncio.get_running_loop()
    starts: dict[RedisLimiter, list[float]] = {ahead: [], behind: []}
    until = loop.time() + 2.0

    async def one(job: RedisLimiter) -> None:
        while loop.time() < until:
            await job.acquire()
            starts[job].append(loop.time())

    skewed = contextvars.copy_context()
    skewed.run(SKEW.set, 120.0)
    tasks = [loop.create_task(one(ahead), context=skewed) for _ in range(4)]
    tasks += [loop.create_task(one(behind)) for _ in range(4)]
    with caplog.at_level(logging.WARNING, logger="bulk_updater"):
        await asyncio.gather(*tasks)
    said = [r.getMessage() for r in caplog.records if "in the future" in r.getMessage()]
    assert len(said) == 1
    assert "use --redis-clock redis" in said[0]
    for job in (ahead, behind):
        assert max_in_any_window(starts[job], GUARD_SPAN) <= 10
        await job.close()


async def test_the_lowest_rate_running_holds_for_every_job(
    pair: tuple[RedisLimiter, RedisLimiter],
) -> None:
    first, second = pair
    await first.acquire()
    assert first.account_rate == 50
    second.set_rate(5)
    await second.acquire()
    await first.acquire()
    assert first.account_rate == 5
    with pytest.raises(ValueError, match="more than 0"):
        second.set_rate(0)
    with pytest.raises(ValueError, match="more than 0"):
        second.share_rate(-1)


# --- stopping


async def test_stop_wakes_a_waiter_and_refuses_more(redis_url: str) -> None:
    (one,) = await opened(limiter(redis_url))
    one.pause(Reply(429, retry_after=5.0))
    waiter = asyncio.ensure_future(one.acquire())
    await asyncio.sleep(0)  # it now waits for the pause to end
    loop = asyncio.get_running_loop()
    started = loop.time()
    one.stop()
    with pytest.raises(Stopped):
        await waiter
    with pytest.raises(Stopped):
        await one.sleep(100)
    assert loop.time() - started < 1
    one.begin()  # a new job may start
    await one.close()


# --- failure


async def test_unreachable_at_start_is_a_config_error_naming_the_url_without_password() -> None:
    url = f"redis://:hunter2-secret@127.0.0.1:{free_port()}/0"
    one = limiter(url)
    with pytest.raises(ConfigError) as caught:
        await one.open()
    message = str(caught.value)
    assert f"redis://:***@127.0.0.1:{url.rsplit(':', 1)[1]}" in message
    assert "is unreachable" in message
    assert "hunter2" not in message
    assert "hunter2" not in repr(one)


@pytest.mark.parametrize(
    ("password", "words"),
    [(None, "refused the connection"), ("wrong-one", "refused the connection")],
)
async def test_a_redis_with_a_password_refuses_a_wrong_or_missing_one(
    password: str | None, words: str
) -> None:
    with RedisServer(password="s3cret-pw") as server:
        good = limiter(server.url)
        await good.open()
        await good.close()
        auth = f":{password}@" if password else ""
        bad = limiter(f"redis://{auth}127.0.0.1:{server.port}/0")
        with pytest.raises(ConfigError, match=words) as caught:
            await bad.open()
    assert "s3cret" not in str(caught.value)
    assert not password or password not in str(caught.value)


async def test_losing_redis_mid_run_makes_every_caller_stop_the_job() -> None:
    with RedisServer() as server:
        (one,) = await opened(limiter(server.url, rate=1000))
        await one.acquire()
        server.stop()
        with pytest.raises(LimiterDown) as caught:
            await one.acquire()
    assert caught.value.message == (
        f"Redis at {server.url} is unreachable ({caught.value.message.split('(', 1)[1]}"
    )
    assert caught.value.message.endswith("; rerun with --resume")
    with pytest.raises(LimiterDown):
        await one.acquire()  # and every later caller, without waiting for Redis again
    with pytest.raises(LimiterDown):
        await one.sleep(0)
    await one.close()


async def test_a_pause_that_cannot_reach_redis_stops_the_job_too() -> None:
    with RedisServer() as server:
        (one,) = await opened(limiter(server.url))
        server.stop()
        one.pause(Reply(429, retry_after=0.01))
        await one.calls.arrived()
    with pytest.raises(LimiterDown, match="is unreachable"):
        await one.acquire()
    await one.close()


async def test_a_start_this_process_was_too_slow_to_use_is_made_again(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis records a start when it grants it; a process too slow to act on the answer asks
    again rather than send late, so that what Redis holds is when requests really start."""
    (one,) = await opened(limiter(redis_url))
    slow = iter([True, True, False])
    monkeypatch.setattr(one, "_late", lambda trip: next(slow, False))
    await one.acquire()
    client = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
    assert await client.llen(budget_keys(one.account)[1]) == 1  # the two late ones taken back
    monkeypatch.setattr(one, "_late", lambda trip: True)  # a host too busy, always
    await one.acquire()  # still goes, after a bounded number of tries
    assert await client.llen(budget_keys(one.account)[1]) == 2
    await client.aclose()
    await one.close()


async def test_a_request_that_leaves_late_moves_its_start_to_when_it_left(
    redis_url: str,
) -> None:
    """The client calls `departed()` as each request is written, in the task that acquired its
    start: on time, nothing changes; later than `LATE`, the record moves to now; a request
    written again (aiohttp resends a GET on a fresh connection) is measured again."""
    (one,) = await opened(limiter(redis_url))
    client = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
    _, starts, moved = budget_keys(one.account)
    await one.acquire()
    recorded, _ = departures._GRANTED.get() or ("", 0.0)
    # At once: on time (granted now, so a Redis answer slowed by a busy host does not count).
    departures._GRANTED.set((recorded, asyncio.get_running_loop().time()))
    one.departed()
    await one.calls.arrived()
    (on_time,) = await client.lrange(starts, 0, -1)
    await one.acquire()
    recorded, granted_at = departures._GRANTED.get() or ("", 0.0)
    departures._GRANTED.set((recorded, granted_at - 2 * shared.LATE))  # as if it left that late
    one.departed()
    await one.calls.arrived()
    latest = await client.lrange(starts, 0, -1)
    assert await client.lrange(moved, 0, -1) == [recorded]
    assert len(latest) == 2
    assert on_time in latest
    assert recorded not in latest
    assert float(latest[0]) > float(recorded)
    one.departed()  # written again, later still: recorded again (its old record is gone)
    await one.calls.arrived()
    assert len(await client.lrange(starts, 0, -1)) == 3
    departures._GRANTED.set(None)
    one.departed()  # no start held: nothing to move
    assert not one.calls.tasks
    await client.aclose()
    await one.close()


async def test_late_departures_go_to_redis_in_one_call_while_one_is_on_its_way() -> None:
    calls: list[str] = []
    called, sent = asyncio.Event(), asyncio.Event()

    async def move(records: str) -> bool:
        calls.append(records)
        called.set()
        await sent.wait()
        return len(calls) < 2  # the second call finds Redis lost: the rest are dropped

    late = departures.LateDepartures(move, 0.005)
    loop = asyncio.get_running_loop()

    def leave(recorded: str) -> asyncio.Task[None] | None:
        departures._GRANTED.set((recorded, loop.time() - 1.0))
        return late.departed()

    first = leave("1.000001")
    assert first is not None
    await called.wait()  # the first call is on its way
    assert leave("1.000002") is None  # it waits for the call on its way
    assert leave("1.000003") is None
    sent.set()
    await first
    assert calls == ["1.000001", "1.000002 1.000003"]
    third = leave("1.000004")
    assert third is not None
    await third
    assert calls[-1] == "1.000004"


async def test_late_departures_behind_a_call_that_finds_redis_lost_are_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []

    async def move(records: str) -> bool:
        calls.append(records)
        return len(calls) < 2  # the second call finds Redis lost

    monkeypatch.setattr(departures, "BATCH", 1)
    late = departures.LateDepartures(move, 0.005)
    loop = asyncio.get_running_loop()
    movers = []
    for n in range(3):
        departures._GRANTED.set((f"1.00000{n}", loop.time() - 1.0))
        movers.append(late.departed())
    mover = movers[0]
    assert mover is not None
    assert movers[1:] == [None, None]  # they wait for the first call
    await mover
    assert calls == ["1.000000", "1.000001"]
    assert late.dropped == 1  # the third, never sent


async def test_callers_cancelled_mid_call_end(redis_url: str) -> None:
    """The job cancels its workers after the grace period: one inside a call to Redis must end
    (redis-py's own socket timeout would wrap the send in 3.11's `wait_for`, which can swallow
    the cancellation)."""
    (one,) = await opened(limiter(redis_url, rate=1_000_000))
    many = asyncio.Event()
    count = 0

    async def caller() -> None:
        nonlocal count
        while True:
            await one.acquire()
            count += 1
            if count >= 500:
                many.set()

    tasks = [asyncio.create_task(caller()) for _ in range(32)]
    await many.wait()
    for task in tasks:
        task.cancel()
    async with asyncio.timeout(10):
        await asyncio.gather(*tasks, return_exceptions=True)
    assert all(task.cancelled() for task in tasks)
    await one.close()


async def test_a_redis_that_never_answers_is_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bulk_updater.limits.redis_budget.OPEN_TIMEOUT", 0.2)
    held: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # accepts, reads nothing, answers nothing

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(ConfigError, match=r"is unreachable \(no answer within 0.2s\)"):
            await limiter(f"redis://127.0.0.1:{port}/0").open()
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_acquire_before_open_says_so(redis_url: str) -> None:
    with pytest.raises(RuntimeError, match="not open"):
        await limiter(redis_url).acquire()

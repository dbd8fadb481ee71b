"""The shared schedule's Lua script, on its own: slots, the guard on actual starts, pauses, the
strictest rate, the shared rate and the keys' lifetime.

It runs in the suite's real `redis-server`, but on the caller's clock with times the test
chooses, so every figure is exact and no test waits: a simulated fleet of callers steps from
one event to the next.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import random
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from bulk_updater.limits.guard import SLACK
from bulk_updater.limits.pacer import LATE_GAP
from bulk_updater.limits.redis_budget import KEY_TTL_MS, SCRIPT, budget_keys

GO, SLOT, PAUSED = 1, 2, 3
T0 = 1_767_225_600.0  # the script sees epoch seconds; any start will do


class Schedule:
    """The script for one account, called with explicit times (`now`, seconds from `T0`)."""

    def __init__(self, url: str, account: str = "acct") -> None:
        self.client = redis.Redis.from_url(url, decode_responses=True)
        self.script = self.client.register_script(SCRIPT)
        self.keys = budget_keys(account)

    def call(
        self, op: str, now: float | None, rate: float, arg: str = "", most: float | None = None
    ) -> list[Any]:
        """One run; `most` is the caller's --max-pause (None: it gives none)."""
        clock = "" if now is None else f"{T0 + now:.6f}"
        most_text = "" if most is None else repr(most)
        args = [op, clock, repr(float(rate)), arg, repr(SLACK), KEY_TTL_MS, "", most_text]
        args.append(repr(LATE_GAP))
        reply: list[Any] = self.script(keys=list(self.keys), args=args)
        return reply

    def acquire(
        self, now: float | None, rate: float, held: str = "", most: float | None = None
    ) -> tuple[int, float, str]:
        reply = self.call("acquire", now, rate, held, most)
        return int(reply[0]), float(reply[1]), str(reply[2])

    def pause(
        self, now: float, rate: float, seconds: float, most: float | None = None
    ) -> tuple[int, float, int]:
        reply = self.call("pause", now, rate, repr(seconds), most)
        return int(reply[0]), float(reply[1]), int(reply[3])


@pytest.fixture
def schedule(redis_url: str) -> Iterator[Schedule]:
    """The script for a fresh account in the suite's Redis."""
    one = Schedule(redis_url)
    yield one
    one.client.close()


def max_in_window(times: list[float], window: float = 1.0) -> int:
    """Most start times inside any half-open window [t, t + window)."""
    times = sorted(times)
    return max(bisect.bisect_left(times, t + window) - i for i, t in enumerate(times))


def fleet(
    schedule: Schedule,
    rates: list[float],
    starts_each: int,
    *,
    lateness: float = 0.0,
    seed: int = 0,
    most: float | None = None,
) -> list[float]:
    """Callers (one per rate in `rates`) that each start `starts_each` times, as a
    `RedisLimiter` does: acquire, sleep until the slot, start; each wake-up up to `lateness`
    late; `most`: their --max-pause. Returns the start times."""
    rnd = random.Random(seed)
    starts: list[float] = []
    events = [(0.0, n, "") for n in range(len(rates))]  # (time, caller, epoch held)
    left = [starts_each] * len(rates)
    while events:
        now, caller, held = heapq.heappop(events)
        code, seconds, epoch = schedule.acquire(now, rates[caller], held, most)
        if code == GO:
            starts.append(now)
            left[caller] -= 1
            if left[caller]:
                heapq.heappush(events, (now, caller, ""))
            continue
        late = rnd.uniform(0, lateness) if lateness else 0.0
        heapq.heappush(events, (now + seconds + late, caller, epoch if code == SLOT else ""))
    return starts


# --- slots


def test_slots_are_spaced_with_no_burst(schedule: Schedule) -> None:
    assert schedule.acquire(0.0, 50)[:2] == (GO, 0.0)
    waits = [schedule.acquire(0.0, 50)[1] for _ in range(4)]
    assert waits == pytest.approx([SLACK / 50 * k for k in (1, 2, 3, 4)], abs=1e-6)


def test_the_holder_of_a_slot_starts_when_it_comes(schedule: Schedule) -> None:
    schedule.acquire(0.0, 10)
    code, seconds, epoch = schedule.acquire(0.0, 10)
    assert code == SLOT
    assert schedule.acquire(seconds, 10, held=epoch)[0] == GO
    # Holding a slot is not taking one: the next newcomer queues right after it.
    assert schedule.acquire(seconds, 10)[1] == pytest.approx(SLACK / 10, abs=1e-6)


def test_an_idle_gap_builds_no_credit(schedule: Schedule) -> None:
    schedule.acquire(0.0, 10)
    assert schedule.acquire(5.0, 10)[0] == GO
    assert schedule.acquire(5.0, 10)[1] == pytest.approx(SLACK / 10, abs=1e-6)


@pytest.mark.parametrize("rate", [1, 2.5, 7, 60])
def test_callers_on_time_share_the_rate_exactly(schedule: Schedule, rate: float) -> None:
    allowed = int(rate)
    starts = sorted(fleet(schedule, [rate] * 8, starts_each=3 * allowed))
    assert max_in_window(starts) <= allowed
    achieved = (len(starts) - 1) / (starts[-1] - starts[0])
    assert achieved == pytest.approx(allowed / SLACK, rel=1e-4)


@pytest.mark.parametrize(("rate", "seed"), [(2, 1), (10, 2), (60, 3), (60, 4)])
def test_late_callers_never_make_more_than_the_rate_in_a_second(
    schedule: Schedule, rate: float, seed: int
) -> None:
    """Callers that wake up to 0.4 s after their slot (a stalled loop, a slow host) would bunch
    up; the guard on actual starts re-queues the one that would make R + 1."""
    starts = fleet(schedule, [rate] * 6, starts_each=rate, lateness=0.4, seed=seed)
    assert len(starts) == 6 * rate
    assert max_in_window(starts) <= rate


@pytest.mark.parametrize(("rate", "seed"), [(10, 5), (60, 6)])
def test_late_holders_start_spread_never_in_a_clump(
    schedule: Schedule, rate: float, seed: int
) -> None:
    """Holders that wake up to two intervals late (a stalled host wakes several at once) all
    started at once when the second had room: a clump a small bucket refuses. They go out at
    least `LATE_GAP` intervals apart (catching up at twice the rate at most), and keep their
    slots: none is given up, so the account loses no rate."""
    interval = SLACK / rate
    starts = sorted(fleet(schedule, [rate] * 6, starts_each=rate, lateness=2 * interval, seed=seed))
    assert len(starts) == 6 * rate
    assert min(b - a for a, b in itertools.pairwise(starts)) >= LATE_GAP * interval - 1e-6
    assert max_in_window(starts) <= rate


def test_the_guard_requeues_a_start_that_would_make_one_too_many(schedule: Schedule) -> None:
    assert schedule.acquire(0.0, 2)[0] == GO  # next slot 0.505
    _, first, held_first = schedule.acquire(0.0, 2)
    _, _, held_second = schedule.acquire(0.0, 2)
    assert schedule.acquire(first, 2, held_first)[0] == GO
    # The second holder starts early (its clock ran ahead): two starts in the last second.
    code, seconds, epoch = schedule.acquire(0.9, 2, held_second)
    assert (code, epoch) == (SLOT, held_second)  # it keeps its place...
    assert 0.9 + seconds == pytest.approx(SLACK, abs=1e-5)  # ...until the first start is old
    assert schedule.acquire(0.9 + seconds, 2, held_second)[0] == GO


def test_a_start_granted_too_late_is_taken_back_and_made_now(schedule: Schedule) -> None:
    reply = schedule.call("acquire", 0.0, 2)
    assert int(reply[0]) == GO
    late = f"{reply[2]} {reply[6]}"  # its epoch and the time Redis recorded
    reply = schedule.call("restart", 0.3, 2, late)
    assert int(reply[0]) == GO
    assert schedule.client.lrange(schedule.keys[1], 0, -1) == [f"{T0 + 0.3:.6f}"]
    # A reader that saw the first record learns it is gone, even were it the oldest listed.
    assert schedule.client.lrange(schedule.keys[2], 0, -1) == [late.split()[1]]


def test_a_late_start_keeps_its_place_when_the_second_is_full(schedule: Schedule) -> None:
    first = schedule.call("acquire", 0.0, 1)  # granted at 0, but its process stalls
    _, seconds, held = schedule.acquire(0.0, 1)
    assert schedule.acquire(seconds, 1, held)[0] == GO  # the next one starts at 1.01
    code, seconds, epoch = (lambda r: (int(r[0]), float(r[1]), str(r[2])))(
        schedule.call("restart", 1.02, 1, f"{first[2]} {first[6]}")
    )
    assert (code, epoch) == (SLOT, held)  # a start now would be a second within 1.01 s
    assert 1.02 + seconds == pytest.approx(2 * SLACK, abs=1e-5)


def test_a_late_start_taken_back_during_a_pause_waits_for_its_end(schedule: Schedule) -> None:
    first = schedule.call("acquire", 0.0, 2)
    assert schedule.pause(0.1, 2, 1.0)[0] == 1  # another process's 429
    reply = schedule.call("restart", 0.2, 2, f"{first[2]} {first[6]}")
    assert (int(reply[0]), float(reply[1])) == (PAUSED, pytest.approx(0.9, abs=1e-6))
    assert schedule.client.llen(schedule.keys[1]) == 0  # it never left: nothing recorded


def test_taking_back_a_start_no_longer_listed_removes_no_other(schedule: Schedule) -> None:
    first = schedule.call("acquire", 0.0, 1)
    for now in (SLACK, 2 * SLACK):  # two more: the list keeps these two (twice the rate)
        assert schedule.acquire(now, 1)[0] == GO
    kept = schedule.client.lrange(schedule.keys[1], 0, -1)
    assert kept == [f"{T0 + 2 * SLACK:.6f}", f"{T0 + SLACK:.6f}"]
    reply = schedule.call("restart", 4.0, 1, f"{first[2]} {first[6]}")
    assert int(reply[0]) == GO
    assert schedule.client.lrange(schedule.keys[1], 0, -1) == [f"{T0 + 4.0:.6f}", kept[0]]


def test_a_start_that_left_late_moves_to_when_it_left(schedule: Schedule) -> None:
    """Its record moves (named in the `moved` list), it is still one start, and the guard
    counts it where it is now: the next start waits a full second from its real departure."""
    first = schedule.call("acquire", 0.0, 1)
    reply = schedule.call("depart", 0.5, 1, first[6])
    _, starts, moved = schedule.keys
    assert schedule.client.lrange(starts, 0, -1) == [f"{T0 + 0.5:.6f}"]
    assert schedule.client.lrange(moved, 0, -1) == [first[6]]
    assert int(reply[7]) == 1  # granted: one start, not two
    code, seconds, held = schedule.acquire(0.5, 1)
    assert (code, seconds) == (SLOT, pytest.approx(SLACK - 0.5, abs=1e-5))  # its slot: 1.01
    code, seconds, _ = schedule.acquire(SLACK, 1, held)
    assert (code, SLACK + seconds) == (SLOT, pytest.approx(0.5 + SLACK, abs=1e-5))
    assert schedule.acquire(0.5 + SLACK, 1, held)[0] == GO


def test_starts_that_left_late_together_stay_distinct(schedule: Schedule) -> None:
    first, second = (schedule.call("acquire", n * SLACK / 2, 2) for n in range(2))
    schedule.call("depart", 0.9, 2, f"{first[6]} {second[6]}")
    assert schedule.client.lrange(schedule.keys[1], 0, -1) == [
        f"{T0 + 0.9 + 1e-6:.6f}",
        f"{T0 + 0.9:.6f}",
    ]
    assert schedule.client.lrange(schedule.keys[2], 0, -1) == [second[6], first[6]]


def test_a_late_start_the_list_no_longer_holds_is_recorded_all_the_same(
    schedule: Schedule,
) -> None:
    first = schedule.call("acquire", 0.0, 1)
    for now in (SLACK, 2 * SLACK):  # the list (twice the rate: 2) no longer holds the first
        assert schedule.acquire(now, 1)[0] == GO
    schedule.call("depart", 2.5, 1, first[6])
    assert schedule.client.lrange(schedule.keys[1], 0, -1) == [
        f"{T0 + 2.5:.6f}",
        f"{T0 + 2 * SLACK:.6f}",
    ]


def test_a_rate_raised_after_late_starts_still_counts_them(schedule: Schedule) -> None:
    """Two starts that left late are moved next to two later ones; the job then raises its
    rate from 2 to 3: the guard must still count all four (a review found the list, trimmed to
    the old rate, had lost two)."""
    job = "job-a"

    def go(now: float, rate: float, held: str = "") -> list[Any]:
        clock = f"{T0 + now:.6f}"
        args = ["acquire", clock, repr(float(rate)), held, repr(SLACK), KEY_TTL_MS, job]
        reply: list[Any] = schedule.script(keys=list(schedule.keys), args=args)
        return reply

    records = [go(now, 2)[6] for now in (0.0, SLACK / 2, SLACK, 1.5 * SLACK)]
    assert all(records)  # four starts, each on its slot
    late = " ".join(records[:2])
    args = ["depart", f"{T0 + 1.6:.6f}", "2.0", late, repr(SLACK), KEY_TTL_MS, job]
    schedule.script(keys=list(schedule.keys), args=args)  # the first two left at 1.6
    reply = go(1.7, 3)
    assert int(reply[0]) == SLOT
    slot, held = 1.7 + float(reply[1]), str(reply[2])
    reply = go(slot, 3, held)  # its slot: but 1.01, 1.515 and the two moved ones are too close
    assert int(reply[0]) == SLOT
    assert slot + float(reply[1]) == pytest.approx(1.5 * SLACK + SLACK, abs=1e-5)


def test_a_clock_behind_the_latest_start_reads_as_its_time(schedule: Schedule) -> None:
    """A host whose clock is behind (or a call sent earlier and run later) cannot start
    before the latest start, nor make the list of starts run backwards."""
    assert schedule.acquire(1.0, 10)[0] == GO
    code, seconds, _ = schedule.acquire(0.5, 10)  # half a second behind
    assert code == SLOT
    assert seconds == pytest.approx(SLACK / 10, abs=1e-6)  # measured from 1.0, not 0.5


def test_a_rate_below_one_allows_one_start_per_slot(schedule: Schedule) -> None:
    starts = sorted(fleet(schedule, [0.5] * 3, starts_each=2))
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert gaps == pytest.approx([SLACK / 0.5] * 5, abs=1e-6)


@pytest.mark.parametrize("lateness", [0.0, 1.0])
def test_a_rate_below_one_holds_when_slots_reach_past_the_max_pause(
    schedule: Schedule, lateness: float
) -> None:
    """Four callers at 0.5/s with a --max-pause of 3 s: the slots they queue for reach past it,
    so the schedule starts again from now, and the guard on actual starts must hold one start
    per interval (it held one per 1.01 s, twice the rate), late holders too."""
    starts = sorted(fleet(schedule, [0.5] * 4, starts_each=3, lateness=lateness, most=3.0))
    assert len(starts) == 12
    assert min(b - a for a, b in itertools.pairwise(starts)) >= SLACK / 0.5 - 1e-6


# --- pauses


def test_a_pause_holds_everyone_and_the_schedule_restarts_at_its_end(schedule: Schedule) -> None:
    schedule.acquire(0.0, 10)
    _, _, held = schedule.acquire(0.0, 10)  # holds the slot at 0.101
    new, remaining, streak = schedule.pause(0.05, 10, 2.0)
    assert (new, streak) == (1, 1)
    assert remaining == pytest.approx(2.0)
    code, seconds, _ = schedule.acquire(0.101, 10, held)
    assert code == PAUSED
    assert seconds == pytest.approx(1.949, abs=1e-6)
    # After the pause the old slot no longer counts, and there is no burst.
    assert schedule.acquire(2.05, 10, held)[0] == GO
    assert schedule.acquire(2.05, 10)[1] == pytest.approx(SLACK / 10, abs=1e-6)


def test_a_pause_inside_a_pause_extends_it_without_counting_a_new_one(schedule: Schedule) -> None:
    assert schedule.pause(0.0, 10, 1.0)[::2] == (1, 1)
    assert schedule.pause(0.5, 10, 0.2)[:2] == (0, pytest.approx(0.5))  # shorter: no change
    new, remaining, streak = schedule.pause(0.5, 10, 3.0)
    assert (new, streak) == (0, 1)
    assert remaining == pytest.approx(3.0)
    assert schedule.pause(4.0, 10, 1.0)[::2] == (1, 2)  # a new pause once it ended


def test_an_answer_ends_the_run_of_429s(schedule: Schedule) -> None:
    schedule.pause(0.0, 10, 0.1)
    schedule.pause(1.0, 10, 0.1)
    assert int(schedule.call("acquire", 2.0, 10)[3]) == 2
    schedule.call("calm", 2.0, 10)
    assert int(schedule.call("acquire", 2.0, 10)[3]) == 0


def test_a_short_pause_never_moves_the_schedule_backwards(schedule: Schedule) -> None:
    schedule.acquire(0.0, 1)
    schedule.pause(0.2, 1, 0.0)  # Retry-After: 0
    code, seconds, _ = schedule.acquire(0.2, 1)
    assert code == SLOT
    assert 0.2 + seconds == pytest.approx(SLACK, abs=1e-6)


def test_each_caller_honours_a_pause_for_its_own_max_pause_at_most(schedule: Schedule) -> None:
    """Job A (--max-pause 300) took a Retry-After of 300; job B (--max-pause 5) waits 5 s of
    it, then gets slots at once (not behind the pause's end)."""
    assert schedule.pause(0.0, 10, 300.0, most=300)[1] == pytest.approx(300)
    assert schedule.acquire(1.0, 10, most=5)[:2] == (PAUSED, pytest.approx(4.0, abs=1e-6))
    assert schedule.acquire(1.0, 10, most=300)[:2] == (PAUSED, pytest.approx(299, abs=1e-6))
    assert schedule.acquire(5.0, 10, most=5)[0] == GO
    assert schedule.acquire(5.0, 10, most=5)[:2] == (SLOT, pytest.approx(SLACK / 10, abs=1e-6))
    # B's own 429 inside A's pause: B hears of it as B honours it.
    assert schedule.pause(6.0, 10, 5.0, most=5)[1] == pytest.approx(0.0)
    assert schedule.acquire(6.0, 10, most=300)[0] == PAUSED  # A still waits


def test_a_slot_further_than_the_callers_max_pause_is_not_waited_for(schedule: Schedule) -> None:
    for _ in range(40):  # 40 callers hold slots up to 4 s ahead at 10/s
        schedule.acquire(0.0, 10)
    assert schedule.acquire(0.0, 10, most=5)[0] == SLOT
    code, seconds, _ = schedule.acquire(0.0, 10, most=2)
    # Not behind 4 s of slots: the schedule starts again from now, half an interval after the
    # start just made (never in a clump), and the guard on actual starts still holds the rate.
    assert (code, seconds) == (SLOT, pytest.approx(LATE_GAP * SLACK / 10, abs=1e-6))


FAR = T0 + 10 * 86400.0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("until", f"{FAR:.6f}"),
        ("until", "nan"),
        ("next", f"{FAR:.6f}"),
        ("next", "inf"),
        ("shared_rate", "nan"),
        ("shared_rate", "-3"),
        ("limit", "0.0001"),
    ],
)
def test_a_bad_value_in_the_keys_is_replaced_and_named(
    schedule: Schedule, field: str, value: str
) -> None:
    schedule.call("acquire", 0.0, 10)
    fields = {field: value}
    if field == "limit":
        fields["limit_until"] = f"{FAR:.6f}"
    schedule.client.hset(schedule.keys[0], mapping=fields)
    reply = schedule.call("acquire", 1.0, 10, most=5)
    assert str(reply[8]).split() == [field]
    assert int(reply[0]) == GO
    assert reply[4] == ""
    assert float(reply[5]) == 10  # the caller's own rate, not 0.0001
    assert schedule.call("acquire", 1.2, 10, most=5)[8] == ""  # written back: said once


def ten_starts(schedule: Schedule) -> None:
    """Ten starts at 10/s, 0.11 s apart from 0: the guard's `cap` of them."""
    for i in range(10):
        assert schedule.acquire(i * 0.11, 10)[0] == GO


@pytest.mark.parametrize(
    ("key", "field", "value", "named"),
    [
        ("starts", 9, "abc", "start_text"),  # the oldest the guard reads, not the head
        ("hash", "granted", "abc", "granted"),
        ("hash", "granted", "1.5", "granted"),
        ("hash", "epoch", "abc", "epoch"),
        ("hash", "streak", "x", "streak"),
    ],
)
def test_a_text_in_the_keys_is_replaced_and_named_not_an_error(
    schedule: Schedule, key: str, field: str | int, value: str, named: str
) -> None:
    """A hand edit must not make the script fail for every job of the account for a day."""
    ten_starts(schedule)
    if key == "starts":
        schedule.client.lset(schedule.keys[1], int(field), value)
    else:
        schedule.client.hset(schedule.keys[0], str(field), value)
    reply = schedule.call("acquire", 1.2, 10, most=5)
    assert (int(reply[0]), str(reply[8])) == (GO, named)
    assert value not in schedule.client.lrange(schedule.keys[1], 0, -1)
    assert schedule.client.hget(schedule.keys[0], "granted") != "abc"
    assert schedule.call("acquire", 1.4, 10, most=5)[8] == ""  # written back: said once


def test_a_start_listed_in_the_future_is_dropped(schedule: Schedule) -> None:
    """A host whose clock is 120 s ahead (--redis-clock local) recorded starts: a host on time
    is not held back until its clock gets there."""
    for at in (120.0, 120.2):
        assert schedule.acquire(at, 10)[0] == GO
    reply = schedule.call("acquire", 0.5, 10, most=300)
    assert (int(reply[0]), str(reply[8])) == (GO, "starts")
    assert schedule.acquire(0.5, 10, most=300)[:2] == (SLOT, pytest.approx(SLACK / 10, abs=1e-6))
    listed = [float(t) - T0 for t in schedule.client.lrange(schedule.keys[1], 0, -1)]
    assert max(listed) < 1.0


def test_a_future_start_inside_the_list_is_dropped_not_waited_for(schedule: Schedule) -> None:
    """Not at its head, where the guard reads the oldest of the last `cap`: it held a job
    forever."""
    ten_starts(schedule)
    schedule.client.lset(schedule.keys[1], 9, f"{T0 + 1e5:.6f}")
    reply = schedule.call("acquire", 1.2, 10, most=5)
    assert (int(reply[0]), str(reply[8])) == (GO, "starts")
    listed = [float(t) - T0 for t in schedule.client.lrange(schedule.keys[1], 0, -1)]
    assert max(listed) < 2.0


def test_no_wait_for_the_guard_is_longer_than_the_callers_max_pause(schedule: Schedule) -> None:
    ten_starts(schedule)
    schedule.client.lset(schedule.keys[1], 9, f"{T0 + 1.2 + 0.9:.6f}")  # ahead, within SKEW
    code, seconds, _ = schedule.acquire(1.2, 10, most=0.5)
    assert (code, seconds) == (SLOT, pytest.approx(0.5, abs=1e-6))


def test_a_pause_set_by_a_clock_far_ahead_counts_from_now(schedule: Schedule) -> None:
    schedule.pause(120.0, 10, 60.0)  # ends at 180 on that clock
    assert schedule.acquire(0.0, 10, most=5)[:2] == (PAUSED, pytest.approx(5.0, abs=1e-6))
    assert schedule.acquire(5.0, 10, most=5)[0] == GO


# --- rates


def test_the_strictest_rate_of_the_jobs_running_holds_for_all(schedule: Schedule) -> None:
    assert float(schedule.call("acquire", 0.0, 60)[5]) == 60
    assert float(schedule.call("acquire", 0.0, 10)[5]) == 10
    reply = schedule.call("acquire", 0.1, 60)
    assert float(reply[5]) == 10  # the job at 60 goes at 10 while the other runs
    # Once the stricter job has not been heard of for a while, its rate no longer holds.
    assert float(schedule.call("acquire", 2.5, 60)[5]) == 60


def test_jobs_at_different_rates_starve_none_and_keep_the_lowest(schedule: Schedule) -> None:
    starts = fleet(schedule, [60, 60, 10], starts_each=10)
    assert len(starts) == 30
    assert max_in_window(starts) <= 10


def test_a_shared_rate_reaches_every_caller(schedule: Schedule) -> None:
    assert schedule.call("acquire", 0.0, 10)[4] == ""
    schedule.call("share", 0.0, 10, "42.5")
    assert schedule.call("acquire", 1.0, 10)[4] == "42.5"


# --- time, keys and errors


def test_redis_time_is_the_clock_when_the_caller_gives_none(schedule: Schedule) -> None:
    assert schedule.acquire(None, 5)[0] == GO
    code, seconds, _ = schedule.acquire(None, 5)
    assert code == SLOT
    assert 0 < seconds <= SLACK / 5


def test_the_keys_expire_and_never_hold_the_key(redis_url: str) -> None:
    schedule = Schedule(redis_url, account="0123abcd")
    schedule.call("hello", 0.0, 10, "https://api.sendkit.ai")
    first = schedule.call("acquire", 0.0, 10)
    schedule.call("depart", 0.05, 10, first[6])
    hash_key, starts_key, moved_key = schedule.keys
    assert hash_key == "bulk-updater:{0123abcd}"
    assert starts_key == "bulk-updater:{0123abcd}:starts"
    assert moved_key == "bulk-updater:{0123abcd}:moved"
    for key in schedule.keys:
        assert 0 < schedule.client.pttl(key) <= KEY_TTL_MS
    assert schedule.client.hget(hash_key, "account") == "https://api.sendkit.ai"
    schedule.client.close()


def test_an_unknown_operation_is_an_error(schedule: Schedule) -> None:
    with pytest.raises(redis.ResponseError, match="unknown operation"):
        schedule.call("nonsense", 0.0, 10)

"""The rate controller on its own: a pure class, driven with times passed in (no loop at all).

Whole jobs through the engine against a simulated server, in virtual time, are
`test_limiter.py`'s.
"""

from __future__ import annotations

import math

import pytest

from bulk_updater.limits.adaptive import (
    DOUBLING,
    MAX_REPEATS,
    MIN_RATE,
    START_RATE,
    Aimd,
    Cubic,
    RateController,
)


def feed(controller: RateController, start: float, seconds: float, latency: float = 0.04) -> float:
    """Answers accepted at the controller's rate from `start` for `seconds`; the end time."""
    now = start
    while now < start + seconds:
        controller.accepted(now + latency, now)
        now += 1.0 / controller.rate
    return now


def test_a_ceiling_is_where_it_starts_and_never_passed() -> None:
    controller = RateController(40)
    assert controller.rate == 40
    feed(controller, 0.0, 30.0)
    assert controller.rate == 40
    assert controller.why() == "the --rate 40 ceiling, no 429"


def test_auto_starts_low_and_doubles_every_second_while_answers_succeed() -> None:
    controller = RateController(None)
    assert controller.rate == START_RATE
    end = feed(controller, 0.0, 2.0 * DOUBLING)
    assert 3.0 * START_RATE <= controller.rate <= 4.5 * START_RATE
    assert controller.slow_start
    assert end > 0
    assert controller.why().startswith("still climbing")


def test_growth_is_held_to_twice_the_rate_really_used() -> None:
    """A job held back by its input sends one request a second: the rate does not run away."""
    controller = RateController(None)
    for second in range(30):
        controller.accepted(second + 0.04, float(second))
    assert controller.rate <= START_RATE


def test_a_429_in_the_first_second_takes_no_level_and_starts_again_from_what_was_taken() -> None:
    """45 taken in the first 0.11 s at 400/s, then 429s: one window's worth, not a rate (a
    bucket of 5 would have said 5). The job starts again at 45/s, in slow start."""
    controller = RateController(400)
    for n in range(45):
        controller.accepted(0.04 + n * 0.0025, n * 0.0025)
    assert controller.refused(0.16, 0.115, sent=400.0)
    assert controller.plateau is None
    assert controller.slow_start
    assert controller.rate == 45
    assert controller.why() == "429s at 400/s"


def test_a_429_after_a_second_cuts_below_what_the_server_counted() -> None:
    """The level is what was taken in the second before the refused request (where the server
    counted it), the answers still on their way included; the cut is 10% below it."""
    controller = RateController(400)
    now = feed(controller, 0.0, 2.0)  # at 400/s: no 429 yet
    for n in range(40):
        controller.accepted(now + 1.0 + 0.04, now + (n + 1) / 40)
    assert controller.refused(now + 1.0 + 0.04, now + 1.0, sent=41.0)
    assert controller.plateau == 40
    assert controller.rate == pytest.approx(Cubic().beta * 40)
    assert controller.why() == "429s at 41/s"


def test_429s_to_requests_sent_before_the_cut_are_the_same_event() -> None:
    controller = RateController(400)
    for n in range(45):
        controller.accepted(0.04 + n * 0.0025, n * 0.0025)
    assert controller.refused(0.16, 0.115)
    rate = controller.rate
    for late in range(15):  # the requests already in flight at the cut
        assert not controller.refused(0.161 + late * 0.0025, 0.12 + late * 0.0025)
    assert controller.rate == rate
    assert controller.cuts == 1


def test_a_429_among_few_answers_cuts_the_rate_asked_for() -> None:
    """Three answers, then a 429: no measure of the limit (a locked row, say), a plain cut."""
    controller = RateController(50)
    for n in range(3):
        controller.accepted(0.01 + n * 0.02, n * 0.02)
    controller.refused(0.07, 0.06)
    assert controller.plateau == 50
    assert controller.rate == pytest.approx(Cubic().beta * 50)
    assert controller.why() == "429s above 50/s"


def test_after_the_pause_the_rate_comes_back_to_the_plateau_then_probes_above() -> None:
    controller = RateController(None)
    feed(controller, 0.0, 3.0)
    for n in range(45):
        controller.accepted(3.0 + n / 45, 3.0 + n / 45 - 0.04)
    controller.refused(4.0, 3.99)
    controller.resume_at(5.0)  # the pause ends a second later
    k = math.cbrt(45 * (1 - Cubic().beta) / Cubic().scale)
    end = feed(controller, 5.0, k)
    assert 43 <= controller.rate <= 45.5  # back at the plateau in K seconds
    feed(controller, end, 8.0)
    assert controller.rate > 50  # and probing above it, ever faster


def test_each_429_at_the_same_level_makes_the_probe_slower() -> None:
    cubic = Cubic()
    k = math.cbrt(45 * (1 - cubic.beta) / cubic.scale)
    assert cubic.rate(45, k + 3, 0) - 45 == pytest.approx(cubic.scale * 27)
    assert cubic.rate(45, k + 3, 2) - 45 == pytest.approx(cubic.scale * 27 / cubic.patience**2)
    controller = RateController(400)
    now = 0.0
    for _ in range(MAX_REPEATS + 2):
        for n in range(45):
            controller.accepted(now + n / 45 + 0.04, now + n / 45)
        now += 1.0
        controller.refused(now, now - 0.001)
        now += 1.0
    assert controller.repeats == MAX_REPEATS


def test_aimd_grows_in_a_straight_line() -> None:
    aimd = Aimd(step=2.0, beta=0.5)
    assert aimd.rate(40, 0, 0) == 20
    assert aimd.rate(40, 5, 0) == 30


def test_a_stated_limit_is_taken_at_once_and_never_probed_above() -> None:
    controller = RateController(None)
    controller.accepted(0.04, 0.0)
    controller.state_limit(38.0, 0.05, "from X-RateLimit-Limit: 40")
    assert controller.rate == 38
    assert not controller.slow_start
    feed(controller, 0.1, 20.0)
    assert controller.rate == 38
    assert controller.why() == "from X-RateLimit-Limit: 40"


def test_a_ceiling_below_the_stated_limit_still_holds() -> None:
    controller = RateController(10)
    controller.state_limit(38.0, 0.05, "from X-RateLimit-Limit: 40")
    assert controller.rate == 10
    assert controller.why() == "the --rate 10 ceiling (from X-RateLimit-Limit: 40)"


def test_a_limit_stated_higher_than_was_accepted_is_believed() -> None:
    """The limit came back up, and the headers say so: no slow probing needed to find it."""
    controller = RateController(None)
    for n in range(40):
        controller.accepted(n / 20 + 0.04, n / 20)
    controller.refused(1.99, 1.98)
    assert controller.plateau == 20
    controller.state_limit(38.0, 3.0, "from X-RateLimit-Limit: 40")
    assert controller.plateau is None
    assert controller.rate == 38


def test_a_stated_limit_that_jitters_never_lifts_the_level_429s_came_at() -> None:
    """Headers state 10000000 a second while the server takes 20: the rate derived from them
    moves a few % with the latency, which is no news of a higher limit."""
    controller = RateController(None)
    controller.state_limit(9.5e6, 0.0, "from X-RateLimit-Limit: 10000000")
    for n in range(40):
        controller.accepted(n / 20 + 0.04, n / 20)
    controller.refused(1.99, 1.98)
    assert controller.plateau == 20
    for n in range(40):  # the derived rate jitters by 3% either way
        controller.state_limit(9.5e6 * (1 + 0.03 * (-1) ** n), 2.0 + n / 10, "x")
        controller.accepted(2.0 + n / 10, 2.0 + n / 10)
    assert controller.plateau == 20
    assert controller.rate < 30


def test_a_limit_stated_anew_after_the_429s_lifts_their_level() -> None:
    controller = RateController(None)
    controller.state_limit(38.0, 0.0, "from X-RateLimit-Limit: 40")
    for n in range(40):
        controller.accepted(n / 20 + 0.04, n / 20)
    controller.refused(1.99, 1.98)
    controller.state_limit(39.0, 3.0, "from X-RateLimit-Limit: 40")
    assert controller.plateau == 20
    controller.state_limit(76.0, 4.0, "from X-RateLimit-Limit: 80")
    assert (controller.plateau, controller.rate) == (None, 76)


def test_the_settled_rate_is_the_average_of_the_last_seconds() -> None:
    controller = RateController(None)
    assert controller.settled(0.0) == START_RATE  # nothing yet: the rate itself
    controller.state_limit(20.0, 0.0, "x")
    controller.state_limit(40.0, 15.0, "x")
    assert controller.settled(20.0) == pytest.approx((5 * 20 + 5 * 40) / 10)
    assert controller.settled(40.0) == pytest.approx(40)


def test_the_rate_never_falls_below_the_floor() -> None:
    controller = RateController(1.0)
    for _ in range(10):
        controller.refused(controller.cuts + 1.0, controller.cuts + 1.0)
    assert controller.rate == MIN_RATE


@pytest.mark.parametrize("ceiling", [0, -1, math.nan])
def test_a_ceiling_must_be_positive(ceiling: float) -> None:
    with pytest.raises(ValueError, match="ceiling"):
        RateController(ceiling)

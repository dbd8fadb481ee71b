"""Rate-limit headers read: both forms, the tightest policy, nonsense ignored (and said once),
the window of `X-RateLimit-*` guessed from its resets, and the `Remaining` before `Reset` rule.
"""

from __future__ import annotations

import logging

import pytest

from bulk_updater.limits.headers import Allowance, Complaints, RateHint, WindowGuess, read_hint

NOW = 1_800_000_000.0  # epoch seconds


def hint(headers: dict[str, str]) -> tuple[RateHint | None, list[str]]:
    problems: list[str] = []
    return read_hint(headers, NOW, problems.append), problems


# --- X-RateLimit-*


def test_github_form_with_an_epoch_reset() -> None:
    found, problems = hint(
        {
            "X-RateLimit-Limit": "40",
            "X-RateLimit-Remaining": "12",
            "X-RateLimit-Reset": "1800000002",
        }
    )
    assert found == RateHint(40, None, 12, 2.0, "X-RateLimit-Limit")
    assert problems == []


def test_a_small_reset_is_seconds_from_now() -> None:
    found, _ = hint(
        {"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "30"}
    )
    assert found is not None
    assert found.reset == 30.0


def test_a_reset_a_moment_ago_is_now() -> None:
    found, _ = hint(
        {"X-RateLimit-Limit": "9", "X-RateLimit-Remaining": "3", "X-RateLimit-Reset": "1799999998"}
    )
    assert found is not None
    assert found.reset == 0.0


def test_remaining_without_a_reset_cannot_pace_and_is_dropped() -> None:
    found, _ = hint({"X-RateLimit-Limit": "40", "X-RateLimit-Remaining": "12"})
    assert found == RateHint(40, None, None, None, "X-RateLimit-Limit")


@pytest.mark.parametrize(
    ("headers", "expected", "problem"),
    [
        ({"X-RateLimit-Limit": "forty"}, None, "X-RateLimit-Limit: 'forty'"),
        ({"X-RateLimit-Limit": "-3"}, None, "X-RateLimit-Limit: '-3'"),
        ({"X-RateLimit-Limit": "99999999999"}, None, "not a whole number"),
        ({"X-RateLimit-Limit": "0", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "5"},
         RateHint(None, None, 0, 5.0, "", none_allowed=True), "a quota of 0"),
        ({"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "50", "X-RateLimit-Reset": "5"},
         RateHint(10, None, None, 5.0, "X-RateLimit-Limit"), "more than the quota"),
        ({"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "5", "X-RateLimit-Reset": "9e99"},
         RateHint(10, None, None, None, "X-RateLimit-Limit"), "within a day"),
        ({"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "5", "X-RateLimit-Reset": "soon"},
         RateHint(10, None, None, None, "X-RateLimit-Limit"), "seconds up to a day"),
        ({"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "5", "X-RateLimit-Reset": "nan"},
         RateHint(10, None, None, None, "X-RateLimit-Limit"), "seconds up to a day"),
    ],
)  # fmt: skip
def test_nonsense_is_ignored_and_said(
    headers: dict[str, str], expected: RateHint | None, problem: str
) -> None:
    found, problems = hint(headers)
    assert found == expected
    assert any(problem in text for text in problems), problems


# --- the IETF draft


def test_ietf_form() -> None:
    found, problems = hint(
        {"RateLimit": '"default";r=50;t=30', "RateLimit-Policy": '"default";q=100;w=10'}
    )
    assert found == RateHint(100, 10.0, 50, 30.0, "RateLimit-Policy")
    assert problems == []


def test_the_tightest_policy_is_used_with_its_own_state() -> None:
    """A day's quota allows less per second, over a long job, than a burst policy."""
    found, _ = hint(
        {
            "RateLimit-Policy": '"burst";q=10;w=1, "day";q=50000;w=86400',
            "RateLimit": '"burst";r=3;t=1, "day";r=49000;t=4000',
        }
    )
    assert found == RateHint(50000, 86400.0, 49000, 4000.0, "RateLimit-Policy")


def test_a_state_without_a_policy_paces_by_what_is_left() -> None:
    found, _ = hint({"RateLimit": "a;r=7;t=2, b;r=3;t=5;pk=:abc:"})
    assert found == RateHint(None, None, 3, 5.0, "")


@pytest.mark.parametrize(
    "headers",
    [
        {"RateLimit-Policy": "q=100;w=10,,,"},
        {"RateLimit-Policy": '"default";q=lots;w=10'},
        {"RateLimit-Policy": '"default";q=100;w=-10'},
        {"RateLimit": '"default";r=-1;t=3'},
        {"RateLimit": '"default";r=5;t=forever'},
    ],
)
def test_broken_ietf_fields_give_nothing(headers: dict[str, str]) -> None:
    found, problems = hint(headers)
    assert found is None
    assert problems


def test_no_rate_headers_no_hint() -> None:
    assert hint({"Retry-After": "3"})[0] is None
    assert read_hint(None, NOW, print) is None


def test_each_kind_of_problem_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    complain = Complaints(logging.getLogger("bulk_updater"))
    with caplog.at_level(logging.DEBUG, logger="bulk_updater"):
        for _ in range(5):
            read_hint({"X-RateLimit-Limit": "forty"}, NOW, complain)
        read_hint({"X-RateLimit-Limit": "fifty"}, NOW, complain)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert all(message.startswith("ignoring a rate-limit header") for message in messages)


# --- the window of X-RateLimit-*, and the allowance


def test_the_window_is_guessed_from_the_longest_reset() -> None:
    guess = WindowGuess()
    assert guess.see(0.4) == 1.0  # never below a second
    assert guess.see(1.7) == 1.0  # a one-second window, its reset rounded up to whole seconds
    assert guess.see(0.2) == 1.0
    assert guess.see(3600.0) == 3599.0


def test_no_more_starts_than_remaining_before_the_reset() -> None:
    allowance = Allowance()
    assert allowance.closed_until(0.0) is None  # no rule yet
    allowance.start(0.0)
    allowance.learn(started=0.0, remaining=2, reset=5.0, now=0.05)
    allowance.start(0.1)
    assert allowance.closed_until(0.2) is None  # one of the two used
    allowance.start(0.2)
    assert allowance.closed_until(0.3) == pytest.approx(5.05)
    assert allowance.closed_until(5.1) is None  # the window reset: the rule lapsed


def test_the_answer_that_saw_the_most_sets_the_rule() -> None:
    allowance = Allowance()
    for at in (0.0, 0.1, 0.2):
        allowance.start(at)
    allowance.learn(started=0.2, remaining=5, reset=1.0, now=0.25)
    allowance.learn(started=0.0, remaining=0, reset=1.0, now=0.26)  # older news: ignored
    assert allowance.used() == 0
    assert allowance.closed_until(0.3) is None

"""`StartGuard`: the hard limit on a job's actual starts, at most R in any sliding second.

A schedule of slots (`Pacer`, the Redis schedule) spaces starts `1.01/R` apart, but the starts
themselves can bunch: slot holders that a stalled loop wakes late, a shared schedule whose
hosts' clocks disagree. The guard counts the actual starts, whatever the schedule, and says how
long a start must wait so that no `GUARD_SPAN` seconds hold more than R of them. The span is a
second and half the schedule's 1% margin: jitter on the way to the server cannot make a start
that kept a bare second look like R + 1 there. Below 1/s the guard allows one start per
`1.01/R` seconds, the schedule's interval: one a second would be twice 0.5/s.
"""

from __future__ import annotations

import collections
import contextlib
import math
from typing import Final

#: Spacing margin over 1/R: absorbs jitter between our start times and the server's arrival times.
SLACK: Final = 1.01
#: The span in which the guard allows R starts: a second and half the margin, so that the other
#: half still covers the way to the server.
GUARD_SPAN: Final = 1 + (SLACK - 1) / 2
#: Waits shorter than this are not waited: a clock (or float sum) that lands a hair before the
#: target must not send a waiter round the loop again and again.
TICK: Final = 1e-6


def allowed(rate: float) -> int:
    """Starts allowed in any span (`span`) at `rate`: its whole part (at least one)."""
    return max(1, math.floor(rate))


def span(rate: float) -> float:
    """The span in which `allowed(rate)` starts may come: `GUARD_SPAN`, and below 1/s the
    schedule's interval (`SLACK / rate`), one start in it."""
    return SLACK / rate if 0 < rate < 1 else GUARD_SPAN


class StartGuard:
    """The latest actual starts, as many as the highest rate set allows."""

    def __init__(self, rate: float) -> None:
        self.allowed = allowed(rate)
        self.span = span(rate)
        self._starts: collections.deque[float] = collections.deque(maxlen=self.allowed)

    def set_rate(self, rate: float) -> None:
        """Count against `rate` from now on; a faster one remembers more starts, a slower one
        still counts the starts of the last second against it."""
        self.allowed, self.span = allowed(rate), span(rate)
        if self.allowed > (self._starts.maxlen or 0):
            self._starts = collections.deque(self._starts, maxlen=self.allowed)

    @property
    def latest(self) -> float | None:
        """The latest start (None before the first)."""
        return self._starts[-1] if self._starts else None

    def free_at(self, now: float) -> float | None:
        """When a start keeps at most `allowed` in any `span`, if not now."""
        starts, allowed = self._starts, self.allowed
        if len(starts) < allowed:
            return None
        free = starts[-allowed] + self.span
        return free if free - now > TICK else None

    def start(self, now: float) -> None:
        self._starts.append(now)

    def forget(self, at: float) -> None:
        """A start counted at `at` that did not happen (a slot asked for and not granted)."""
        with contextlib.suppress(ValueError):
            self._starts.remove(at)

"""The adaptive rate: a controller that learns an API's limit from its answers.

It is pure: it never reads a clock and never sleeps, every call passes the time in (loop
seconds). Tests drive it directly, and a limiter that keeps its state elsewhere (Redis, shared by
every process of one API account) can run the same rules on the rate it shares.

How the rate moves:

- With a ceiling (`--rate N`) it starts at N, and never goes above it. Without one (`auto`) it
  starts at `START_RATE` and doubles every second while answers succeed (TCP's slow start).
- A 429 for the whole job (`refused()`) cuts the rate to `beta` times the rate that was being
  accepted: the requests started in the second before the refused one that were answered
  (where the server counted them when it refused it), at most the rate asked for (botocore's
  `min(measured, fill_rate)`); with fewer than `MIN_EVIDENCE` of them, the rate asked for.
  The 429s to requests that started before a cut belong to the same event and cut nothing
  more, as in TCP one loss per window. In the job's first second no level is taken: what was
  accepted so far is what one window or bucket allowed, not a rate, so the job starts again
  from that many a second in slow start, and the next 429 finds the level.
- After the pause the rate grows back along a cubic: fast at first, flat near the level where
  429s came (the plateau), then probing above it, ever faster, to find a limit that went up.
  Each 429 at the same level again (within `SAME_LEVEL`) makes that probe `patience` times
  slower (up to `MAX_REPEATS` times), so a job settles at a fixed limit instead of paying a
  pause every few seconds to find it again, and still finds a limit that came back up.
- Growth never runs ahead of what is used: at most twice the rate accepted in the last second,
  so a job held back by its input or its concurrency does not build up a rate it would then
  burst at.
- A limit the headers state (`state_limit()`) replaces the search: the rate goes straight to it
  (no 429 needed to find it) and never probes above it; a 429 still cuts.

Why CUBIC (https://www.rfc-editor.org/rfc/rfc9438) and not AIMD (additive increase,
multiplicative decrease: https://en.wikipedia.org/wiki/Additive_increase/multiplicative_decrease):
every 429 costs a pause of the whole job, so what matters is how
rarely the rate crosses the limit and how much of the time it spends near it. AIMD's straight
line spends half its recovery far below the plateau, or, made steeper to recover faster,
crosses it at full slope and pays more pauses; CUBIC recovers in `K` seconds, dwells at the
plateau and crosses it slowly, and patience makes the crossings rarer still. `make bench`
("controllers", in virtual time; "hidden-limit", over sockets, one line per shape of limit)
measures it; the figures are in `bench/README.md`.
"""

from __future__ import annotations

import collections
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

#: Where `--rate auto` starts, in requests per second.
START_RATE: Final = 10.0
#: The rate never falls below this: a server that allows less still has `Retry-After` pauses.
MIN_RATE: Final = 0.5
#: Slow start: seconds per doubling before the first 429 (about the sandbox's window).
DOUBLING: Final = 1.0
#: A stated limit that lifts the level 429s came at must differ from the one stated then by
#: more than this share: a rate derived from a header moves a little with every answer.
RESTATED: Final = 0.25
#: A 429 at a plateau within this share of the last one is the same limit found again.
SAME_LEVEL: Final = 0.1
MAX_REPEATS: Final = 3
#: Fewer answers accepted in the last second than this say nothing of the rate accepted.
MIN_EVIDENCE: Final = 5
#: The settled rate is the rate's average over this many seconds before the end (or the job).
SETTLE_SECONDS: Final = 10.0
#: How `why` begins when nothing bounded the rate yet: the rate then settled nowhere.
CLIMBING: Final = "still climbing"
#: The shortest span a measured rate is taken over (right after a start or a pause).
_MIN_SPAN: Final = 0.25


class Growth(Protocol):
    """How the rate grows back after a cut; `beta` is the share a cut keeps."""

    @property
    def beta(self) -> float: ...

    def rate(self, plateau: float, elapsed: float, repeats: int) -> float:
        """The rate `elapsed` seconds after the pause that followed a cut at `plateau`."""
        ...


@dataclass(frozen=True, slots=True)
class Cubic:
    """CUBIC as botocore's `CubicCalculator` (`scale` C = 0.4), with patience, and a cut to
    `beta` 0.9 rather than its 0.7: the plateau is measured where the server counted (the
    second before the refused request), so 10% below it is room enough.

    `rate = plateau - C (K - t)^3` up to `K = cbrt(plateau (1 - beta) / C)`, then
    `plateau + C / patience^repeats (t - K)^3`: the recovery stays as fast, the probe above the
    plateau slows down each time the same limit is found again.
    """

    scale: float = 0.4
    beta: float = 0.9
    patience: float = 4.0

    def rate(self, plateau: float, elapsed: float, repeats: int) -> float:
        k = math.cbrt(plateau * (1 - self.beta) / self.scale)
        if elapsed < k:
            return plateau - self.scale * math.pow(k - elapsed, 3)
        probe = self.scale / math.pow(self.patience, repeats)
        return plateau + probe * math.pow(elapsed - k, 3)


@dataclass(frozen=True, slots=True)
class Aimd:
    """Additive increase (`step` requests/s per second), multiplicative decrease (`beta`)."""

    step: float = 2.0
    beta: float = 0.7

    def rate(self, plateau: float, elapsed: float, repeats: int) -> float:
        return plateau * self.beta + self.step * elapsed


class RateController:
    """The rate a job may send at now, learned from its answers; see the module docstring."""

    def __init__(
        self,
        ceiling: float | None,
        *,
        start: float = START_RATE,
        growth: Growth | None = None,
        measure: Callable[[float], float | None] | None = None,
    ) -> None:
        """`measure(now)`: the requests accepted in the last second, when this job's own
        answers do not say it: a rate shared with other jobs (through Redis) is measured on
        all of them (None: no measure yet)."""
        if ceiling is not None and not ceiling > 0:
            raise ValueError("a ceiling must be more than 0 (None: no ceiling)")
        self.ceiling = ceiling
        self.growth: Growth = growth or Cubic()
        self.start = start if ceiling is None else min(start, ceiling)
        self.rate = ceiling if ceiling is not None else start
        self.slow_start = ceiling is None
        self.measure = measure
        self.found_elsewhere = False  # the plateau came from another job of the account
        self.plateau: float | None = None  # the accepted rate at the latest cut
        self.repeats = 0  # cuts in a row at about the same plateau
        self.measured = False  # the plateau is a rate the server accepted, not one asked for
        self.cuts = 0
        self.stated: float | None = None  # the limit the headers state, as a rate
        self.stated_why = ""
        self.headers_wrong = False  # the rate-limit headers were contradicted: ignored
        self._stated_at_cut: float | None = None  # `stated` when the plateau was found
        self._epoch: float | None = None  # when growth began: the first answer, a pause's end
        self._began: float | None = None  # the first answer: a second of evidence comes after
        self.seen_at: float | None = None  # the rate the latest cut's 429 came at (sent)
        self._cut_at = -math.inf  # requests started before this were sent at the old rate
        self._accepted: collections.deque[float] = collections.deque()  # their start times
        self._recent: collections.deque[float] = collections.deque()  # the same, for 2 s
        self._history: collections.deque[tuple[float, float]] = collections.deque()  # (since, rate)

    def accepted(self, now: float, started: float) -> None:
        """An answer that is not a 429 (nor a fault) to a request started at `started`."""
        self._accepted.append(started)
        self._recent.append(started)
        self._forget(now)
        if self._epoch is None:
            self._epoch = now
        if self._began is None:
            self._began = now
        self._grow(now)

    def refused(self, now: float, started: float, sent: float | None = None) -> bool:
        """A 429 for the whole job; True when it cut the rate (a new event). `sent`: the rate
        the job was sending at when the refused request started, for the summary."""
        if started < self._cut_at:
            return False
        self._forget(now)
        self.seen_at = sent
        if self._early(now):
            return True
        accepted = self._measured(now, started)
        # A handful of answers is no measure (a 429 a moment after the start or a pause): then
        # the cut is of the rate asked for, as TCP cuts its window without knowing the path.
        self.measured = accepted is not None and accepted >= MIN_EVIDENCE
        plateau = (
            max(MIN_RATE, min(accepted, self.rate))
            if accepted is not None and self.measured
            else self.rate
        )
        if self.stated is not None:
            plateau = min(plateau, self.stated)
        last = self.plateau
        same = last is not None and abs(plateau - last) <= SAME_LEVEL * last
        self.repeats = min(self.repeats + 1, MAX_REPEATS) if same else 0
        self.plateau = plateau
        self._stated_at_cut = self.stated
        self.found_elsewhere = False
        self.slow_start = False
        self.cuts += 1
        self._cut_at = self._epoch = now
        self._set(now, plateau * self.growth.beta)
        return True

    def _early(self, now: float) -> bool:
        """A 429 in the first second of a job that has found no level yet: what was accepted
        so far is what one window (or bucket) allowed, not yet a rate. So no level is taken
        from it: the job starts again from that many a second, in slow start, and the next
        429 (with a second of evidence) finds the level."""
        if self.plateau is not None or self.measure is not None:
            return False
        if self._began is None or now - self._began >= 1.0 or len(self._accepted) < MIN_EVIDENCE:
            return False
        self.slow_start = True
        self.start = max(MIN_RATE, min(float(len(self._accepted)), self.rate))
        self.cuts += 1
        self._cut_at = self._epoch = now
        self._set(now, self.start)
        return True

    def seed(self, plateau: float, now: float) -> None:
        """Start from the level another job of the account found 429s above (`plateau`): at
        the rate a cut there would leave, growing back as after one."""
        if self.ceiling is not None:
            plateau = min(plateau, self.ceiling)
        self.plateau = max(MIN_RATE, plateau)
        self._stated_at_cut = self.stated
        self.measured = self.found_elsewhere = True
        self.slow_start = False
        self._epoch = now
        self._set(now, self.growth.rate(self.plateau, 0.0, 0))

    def resume_at(self, when: float) -> None:
        """The job is paused until `when`: growth counts from there."""
        self._epoch = when if self._epoch is None else max(self._epoch, when)

    def state_limit(self, rate: float, now: float, why: str) -> None:
        """The headers state the limit, as `rate` requests per second (`why`: which header)."""
        rate = max(MIN_RATE, rate)
        # Only a limit stated anew since the 429s (not one that jitters with the latency the
        # rate is derived with) says that the server now takes more than it did: believe it.
        then = self._stated_at_cut
        restated = then is None or abs(rate - then) > RESTATED * then
        if restated and self.plateau is not None and rate > self.plateau:
            self.plateau = None
            self.repeats = 0
        self.stated, self.stated_why = rate, why
        self.slow_start = False
        if self._epoch is None:
            self._epoch = now
        self._grow(now)

    def unstate(self, now: float) -> None:
        """The headers' limit was wrong (the answers contradicted them): search as if they had
        never said it (slow start again, or the ceiling, when nothing was refused yet)."""
        self.headers_wrong = True
        if self.stated is None:
            return
        self.stated, self.stated_why = None, ""
        if self.plateau is None:
            self.slow_start = self.ceiling is None
            self.start, self._epoch = max(self.rate, START_RATE), now
            self._set(now, self.ceiling if self.ceiling is not None else self.start)

    def _measured(self, now: float, started: float) -> float | None:
        """Requests accepted in the second before `started` (the refused one): as the server
        counted them when it refused it, the answers still on their way back included. By
        `measure` (the account's), else by this job's answers."""
        if self.measure is not None:
            return self.measure(now)
        return sum(1 for at in self._recent if started - 1.0 < at <= started)

    def _forget(self, now: float) -> None:
        accepted, recent = self._accepted, self._recent
        while accepted and accepted[0] <= now - 1.0:
            accepted.popleft()
        while recent and recent[0] <= now - 2.0:
            recent.popleft()

    def _target(self, now: float) -> float:
        elapsed = max(0.0, now - (self._epoch if self._epoch is not None else now))
        if self.slow_start:
            target = self.start * math.pow(2.0, elapsed / DOUBLING)
        elif self.plateau is None:
            target = math.inf  # nothing refused yet: the ceiling or the stated limit
        else:
            target = self.growth.rate(self.plateau, elapsed, self.repeats)
        for cap in (self.ceiling, self.stated):
            if cap is not None:
                target = min(target, cap)
        return target

    def _grow(self, now: float) -> None:
        target = self._target(now)
        if target > self.rate and (self.slow_start or self.plateau is not None):
            if self.measure is None:
                span = min(1.0, max(now - (self._epoch or now), _MIN_SPAN))
                target = min(target, max(self.rate, 2.0 * len(self._accepted) / span))
            elif (accepted := self.measure(now)) is not None:
                target = min(target, max(self.rate, 2.0 * accepted))
        if math.isfinite(target):
            self._set(now, target)

    def _set(self, now: float, rate: float) -> None:
        rate = max(MIN_RATE, rate)
        if rate == self.rate and self._history:
            return
        self.rate = rate
        history = self._history
        history.append((now, rate))
        while len(history) > 1 and history[1][0] <= now - SETTLE_SECONDS:
            history.popleft()

    def settled(self, now: float) -> float:
        """The rate the job settled at: its average over the last `SETTLE_SECONDS` (or since
        the first answer, in a shorter job), each rate weighed by the time it was in force."""
        history = self._history
        start = max(history[0][0], now - SETTLE_SECONDS) if history else now
        if now <= start:
            return self.rate
        total = 0.0
        for (since, rate), (until, _) in itertools.pairwise([*history, (now, 0.0)]):
            total += rate * max(0.0, until - max(since, start))
        return total / (now - start)

    def why(self) -> str:
        """Why the rate is where it is, for the summary: `429s at 41/s`, a header, ..."""
        if self.plateau is not None and self.found_elsewhere:
            above = math.ceil(self.plateau - 0.05)
            return f"429s above {above}/s (found by another job of the account)"
        if self.seen_at is not None:  # the rate the job sent at when they came
            return f"429s at {self.seen_at:.0f}/s"
        if self.plateau is not None or self.cuts:
            level = self.plateau if self.plateau is not None else self.start
            return f"429s above {math.ceil(level - 0.05)}/s"
        if self.stated is not None:
            if self.ceiling is not None and self.ceiling < self.stated:
                return f"the --rate {self.ceiling:g} ceiling ({self.stated_why})"
            return self.stated_why
        if self.ceiling is not None:
            return f"the --rate {self.ceiling:g} ceiling, no 429"
        if self.headers_wrong:
            return f"{CLIMBING}: no 429; the rate-limit headers, belied by the answers, ignored"
        return f"{CLIMBING}: no 429 and no rate-limit headers yet"

"""`Holds`: every wait that holds a whole job, whatever called for it, capped and counted.

A job is held by a 429's pause, by rate-limit headers that say nothing is left before a reset,
and by a pause another job of the account shared through Redis. Whatever the source, one rule:

- no hold lasts longer than this job's `--max-pause` from when it began (`seconds()`);
- the time held since the API last took a request counts toward `--give-up-after`, whoever
  caused the hold, so the job ends (exit 3, saying why) instead of waiting without end;
- the progress line shows the hold and when it ends, not a rate (`RateStatus.paused`).

The time is counted ahead, to the end of the hold, when the hold begins: a job that would go
over `--give-up-after` stops then, not after waiting it out. Times are loop times, passed in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(slots=True)
class Holds:
    """The job's holds: the one running (`until`, `why`) and the time held since an answer."""

    max_pause: float
    give_up_after: float = 600.0
    until: float = -math.inf  # loop time at which the latest hold ends
    why: str = ""  # what the latest hold is for, as the progress line says it
    held: float = 0.0  # seconds held since the API last took a request, to the end of the hold
    _sources: dict[str, float] = field(default_factory=dict)  # `held`, by what caused it

    def seconds(self, seconds: float) -> float:
        """A wait as this job honours it: at most `max_pause` (NaN: none at all)."""
        return min(seconds, self.max_pause) if seconds > 0 else 0.0

    def hold(self, now: float, seconds: float, why: str) -> float:
        """Hold the job for `seconds` from `now` (capped), for `why`; the seconds this added."""
        end = now + self.seconds(seconds)
        added = max(0.0, end - max(now, self.until))
        if end > self.until:
            self.until, self.why = end, why
        self.count(added, why)
        return added

    def count(self, seconds: float, why: str) -> None:
        """Time spent waiting with nothing answered that is not a hold of the whole job (a row
        that backs off alone from its own 429s while nothing else is sent)."""
        if seconds > 0:
            self.held += seconds
            self._sources[why] = self._sources.get(why, 0.0) + seconds

    def answered(self) -> None:
        """The API took a request: the time held starts again from zero."""
        if self.held:
            self.held = 0.0
            self._sources.clear()

    def left(self, now: float) -> float | None:
        """Seconds until the running hold ends; None when none is running."""
        return self.until - now if self.until > now else None

    def given_up(self) -> str | None:
        """Why the job must stop, once the time held is over `give_up_after`; else None."""
        if self.held <= self.give_up_after:
            return None
        causes = sorted(self._sources.items(), key=lambda item: -item[1])
        said = ", ".join(f"{why} {seconds:.0f}s" for why, seconds in causes)
        return (
            f"the API looks down: it took no request for {self.held:.0f}s of pauses ({said}), "
            f"more than --give-up-after {self.give_up_after:g}; rerun later with --resume"
        )

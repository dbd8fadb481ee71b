"""`RateStatus`: what a limiter says of its rate, for the progress line and the summary."""

from __future__ import annotations

import math
from dataclasses import dataclass


def per_second(rate: float) -> str:
    """A rate as the progress line says it: `39.6/s`, `0.05/s` (a tenth would say 0.1)."""
    return f"{rate:.1f}/s" if rate >= 1 else f"{rate:.2g}/s"


@dataclass(frozen=True, slots=True)
class RateStatus:
    """The rate a limiter allows now, the rate it settled at and why; None: no limit."""

    current: float | None
    settled: float | None
    why: str
    hint: str | None = None  # a suggestion for the next run (`--rate auto`, ...)
    paused: float | None = None  # seconds until the job's running hold ends, if one is
    paused_why: str = ""  # what the hold is for (`429 Too Many Requests`, ...)

    def progress(self) -> str | None:
        """The progress line's part: `limit 39.6/s`, `paused 4s (429 Too Many Requests)` while
        the job is held (its countdown, not a rate), or None without a limit."""
        if self.paused is not None:
            return f"paused {math.ceil(self.paused)}s ({self.paused_why})"
        return None if self.current is None else f"limit {per_second(self.current)}"

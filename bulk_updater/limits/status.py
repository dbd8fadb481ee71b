"""`RateStatus`: what a limiter says of its rate, for the progress line and the summary."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RateStatus:
    """The rate a limiter allows now, the rate it settled at and why; None: no limit."""

    current: float | None
    settled: float | None
    why: str
    hint: str | None = None  # a suggestion for the next run (`--rate auto`, ...)

    def progress(self) -> str | None:
        """The progress line's part: `limit 39.6/s`, or None without a limit."""
        return None if self.current is None else f"limit {self.current:.1f}/s"

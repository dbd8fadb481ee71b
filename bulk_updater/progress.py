"""Progress for people and for logs: a live bar on a terminal, else a plain line every few seconds.

Both go to stderr. Off a terminal (cron, pipes) nothing but printable text and newlines is written.
"""

from __future__ import annotations

import asyncio
import time
from typing import Final, TextIO

from .models import Outcome, Status

_BAR_WIDTH: Final = 24


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class Progress:
    """Counts outcomes and shows them every `interval` seconds while `run()` is awaited."""

    def __init__(self, stream: TextIO, *, total: int | None, live: bool, interval: float) -> None:
        self.stream = stream
        self.total = total
        self.live = live
        self.interval = interval
        self.done = 0
        self.counts = dict.fromkeys(Status, 0)
        self._started = time.monotonic()
        self._drawn = False

    def update(self, outcome: Outcome) -> None:
        self.done += 1
        self.counts[outcome.status] += 1

    def line(self) -> str:
        elapsed = max(time.monotonic() - self._started, 1e-9)
        rate = self.done / elapsed
        counts = " ".join(f"{s.value} {n}" for s, n in self.counts.items() if n)
        if self.total:
            share = min(self.done / self.total, 1.0)
            left = (self.total - self.done) / rate if rate > 0 else None
            eta = _clock(left) if left is not None else "?"
            head = f"{self.done}/{self.total} rows {share:4.0%}"
            if self.live:
                filled = int(share * _BAR_WIDTH)
                head = f"[{'#' * filled}{'.' * (_BAR_WIDTH - filled)}] {head}"
            return f"{head}  {rate:.1f}/s  ETA {eta}  {counts}".rstrip()
        return f"{self.done} rows  {rate:.1f}/s  {counts}".rstrip()

    def show(self) -> None:
        if self.live:
            self.stream.write("\r\x1b[2K" + self.line())
            self._drawn = True
        else:
            self.stream.write(f"progress: {self.line()}\n")
        self.stream.flush()

    def clear(self) -> None:
        if self.live and self._drawn:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()

    async def run(self) -> None:
        """Show progress until cancelled."""
        try:
            while True:
                await asyncio.sleep(self.interval)
                self.show()
        finally:
            self.clear()

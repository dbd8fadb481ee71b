"""Progress for people and for logs: a live bar on a terminal, else plain lines (a few seconds
apart in the first minute, then a minute apart).

Both go to stderr. The live bar is fitted to the terminal's width, dropping its least useful parts
first, so it never wraps. Off a terminal (cron, pipes) nothing but printable text and newlines is
written. Rate and ETA count only rows that were sent: skipped or invalid rows finish at once and
would make the job look faster than it is.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import Final, TextIO

from .models import Outcome, Status

_BAR_WIDTH: Final = 20
_MIN_BAR: Final = 8
_FIRST_MINUTE: Final = 60.0


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def terminal_width(stream: TextIO) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return 80


class Progress:
    """Counts outcomes and shows them every `interval` seconds while `run()` is awaited."""

    def __init__(
        self,
        stream: TextIO,
        *,
        total: int | None,
        live: bool,
        interval: float,
        width: Callable[[], int] | None = None,
        rate: Callable[[], str | None] | None = None,
        later: float | None = None,
    ) -> None:
        """`later`: after the first minute, a line every `later` seconds instead (a log read
        later, such as cron's mail, wants the start in detail and then a line a minute)."""
        self.stream = stream
        self.total = total
        self.live = live
        self.interval = interval
        self.later = later
        self.done = 0
        self.sent = 0  # rows that needed requests: what the rate and the ETA are made of
        self.counts = dict.fromkeys(Status, 0)
        self._width = width or (lambda: terminal_width(stream))
        self._limit = rate  # what the limiter says of the current rate, if anything
        self._started = time.monotonic()
        self._drawn = False

    def update(self, outcome: Outcome) -> None:
        self.done += 1
        self.counts[outcome.status] += 1
        if outcome.attempts:
            self.sent += 1

    def parts(self) -> list[tuple[int, str]]:
        """The pieces of a progress line, each with its rank (lower: dropped later)."""
        elapsed = max(time.monotonic() - self._started, 1e-9)
        rate = self.sent / elapsed
        parts: list[tuple[int, str]] = []
        if self.total:
            share = min(self.done / self.total, 1.0)
            parts.append((0, f"{self.done}/{self.total} rows {share:4.0%}"))
            left = self.total - self.done
            eta = _clock(left / rate) if rate > 0 else ("0:00" if left <= 0 else "?")
            parts.append((1, f"ETA {eta}"))
        else:
            parts.append((0, f"{self.done} rows"))
        parts.append((2, f"{rate:.1f}/s"))
        limit = self._limit() if self._limit is not None else None
        if limit:
            parts.append((4, limit))
        counts = " ".join(f"{s.value} {n}" for s, n in self.counts.items() if n)
        if counts:
            parts.append((3, counts))
        return parts

    def line(self, width: int | None = None) -> str:
        """One progress line; with a `width`, fitted to it (least useful parts dropped first)."""
        parts = self.parts()
        bar = ""
        if self.live and self.total:
            filled = int(min(self.done / self.total, 1.0) * _BAR_WIDTH)
            bar = f"[{'#' * filled}{'.' * (_BAR_WIDTH - filled)}] "
        text = bar + "  ".join(piece for _, piece in parts)
        if width is None or len(text) < width:
            return text
        for drop in ("bar", *sorted({rank for rank, _ in parts if rank}, reverse=True)):
            if drop == "bar":
                bar = ""
            else:
                parts = [part for part in parts if part[0] != drop]
            text = bar + "  ".join(piece for _, piece in parts)
            if len(text) < width:
                return text
        return text[: max(width - 1, _MIN_BAR)]

    def show(self) -> None:
        if self.live:
            self.stream.write("\r\x1b[2K" + self.line(self._width()))
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
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            while True:
                slow = self.later is not None and loop.time() - started >= _FIRST_MINUTE
                await asyncio.sleep(self.later if slow and self.later else self.interval)
                self.show()
        finally:
            self.clear()

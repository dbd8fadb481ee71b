"""Requests in flight that follow latency: Little's law with headroom, up to a cap.

A rate R at a latency L keeps R * L requests in flight (Little's law,
https://en.wikipedia.org/wiki/Little%27s_law). A fixed concurrency C caps the rate at
C / L without a word (8 workers at 400 ms answers: 20/s, whatever `--rate` says), and a large
one lets a server that slows down pile up requests. So, unless `--concurrency` fixes it, the
limit on requests in flight is `rate * p90 latency * HEADROOM`, at least `FLOOR`, at most the
cap, and it follows the latency as it changes.
"""

from __future__ import annotations

import asyncio
import collections
import math
from typing import Final

#: Room over Little's law: latency varies, and a slot must never wait for a worker.
HEADROOM: Final = 1.5
#: Never fewer in flight than this (the fixed default of earlier versions).
FLOOR: Final = 8
#: The latencies the percentile is taken over.
SAMPLES: Final = 128


class Latencies:
    """The latest answers' latencies, and their 90th percentile."""

    def __init__(self, size: int = SAMPLES) -> None:
        self._ring: collections.deque[float] = collections.deque(maxlen=size)
        self._seen = 0
        self.p90: float | None = None

    def add(self, seconds: float) -> bool:
        """Take in one latency; True when the percentile was computed again."""
        self._ring.append(seconds)
        self._seen += 1
        # Sorting 128 floats costs a few microseconds: every answer at first, then every 16th.
        if self._seen > 32 and self._seen % 16:
            return False
        ordered = sorted(self._ring)
        self.p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
        return True


def needed(rate: float, p90: float | None, cap: int) -> int:
    """Requests in flight that `rate` needs at a 90th-percentile latency of `p90` seconds."""
    if p90 is None:
        return min(FLOOR, cap)
    return max(min(FLOOR, cap), min(cap, math.ceil(rate * p90 * HEADROOM)))


class FlightCap:
    """A semaphore whose size can change: at most `limit` holders; waiters are served in order."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.busy = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    def take(self) -> bool:
        """Hold a place if one is free now, with no waiter before it; else False (`enter()`)."""
        if self.busy < self.limit and not self._waiters:
            self.busy += 1
            return True
        return False

    async def enter(self) -> None:
        if self.busy < self.limit and not self._waiters:
            self.busy += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.leave()  # the place was handed over as the waiter was cancelled: pass it on
            elif waiter in self._waiters:  # a hand-over may have dropped it, cancelled, already
                self._waiters.remove(waiter)
            raise

    def leave(self) -> None:
        self.busy = max(0, self.busy - 1)  # an answer from before a `reset()` finds none held
        if self._waiters:
            self._hand_over()

    def resize(self, limit: int) -> None:
        self.limit = limit
        self._hand_over()

    def wake_all(self) -> None:
        """Let every waiter in (the job is stopping: each will leave at once)."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.busy += 1
                waiter.set_result(None)

    def reset(self) -> None:
        self.busy = 0
        self._waiters.clear()

    def _hand_over(self) -> None:
        while self._waiters and self.busy < self.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.busy += 1
                waiter.set_result(None)

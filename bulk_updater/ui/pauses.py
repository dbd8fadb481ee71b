"""The 429 pause the page counts down: the job's own limiter, watched where it pauses.

`BulkUpdater(limiter=...)` takes any `Limiter`; `PauseWatch` is the one the settings call for
(`limiter_for`), passed through unchanged but for one thing: when a 429 pauses the job, it notes
when the pause ends, so the page can show a countdown while it lasts.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..answers import Reply
from ..limits import Limiter, RateStatus, departure_hook
from ..limits.holds import Holds


class PauseWatch:
    """A `Limiter` that is `inner` and knows until when a 429 pauses the job; `on_pause` is
    called when a pause begins or grows."""

    def __init__(self, inner: Limiter, on_pause: Callable[[], None]) -> None:
        self.inner = inner
        self.until = 0.0  # `time.monotonic()` at which the current pause ends
        self._on_pause = on_pause

    def remaining(self) -> float:
        """Seconds left in the current 429 pause; 0 when none."""
        return max(0.0, self.until - time.monotonic())

    def pause(self, reply: Reply) -> float:
        added = self.inner.pause(reply)
        # What this answer added goes on the end of the pause running, or starts one now.
        self.until = max(self.until, time.monotonic()) + added
        if added:
            self._on_pause()
        return added

    @property
    def on_departure(self) -> Callable[[], None] | None:
        return departure_hook(self.inner)

    async def open(self) -> None:
        await self.inner.open()

    async def close(self) -> None:
        await self.inner.close()

    def begin(self) -> None:
        self.until = 0.0
        self.inner.begin()

    async def acquire(self) -> None:
        await self.inner.acquire()

    def observe(self, reply: Reply | None, latency: float) -> None:
        self.inner.observe(reply, latency)

    @property
    def holds(self) -> Holds:
        return self.inner.holds

    def stop(self) -> None:
        self.inner.stop()

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)

    def describe(self) -> RateStatus:
        return self.inner.describe()

"""`Watchdog`: the timeout of every request in flight, kept by one task.

aiohttp's `ClientTimeout(total=...)` schedules a timer and enters a timer context twice for
every request, the largest part of aiohttp's per-request cost that the client can avoid.
"""

from __future__ import annotations

import asyncio
from typing import Any


class Watchdog:
    """One task that times out every request in flight, instead of one timer per request.

    Each request notes its deadline; every `tick` (an eighth of the timeout, at most a second)
    the watchdog cancels the requests past theirs, and `expired()` tells their `send` that the
    cancellation was a timeout. So a request times out between `timeout` and `timeout + tick`.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.tick = min(1.0, max(timeout / 8, 0.005))
        self.deadlines: dict[asyncio.Task[Any], float] = {}
        self._expired: set[asyncio.Task[Any]] = set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._watch())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def expired(self, task: asyncio.Task[Any]) -> bool:
        """Whether `task` was cancelled for its timeout alone (and, if so, take that back)."""
        return task in self._expired and task.uncancel() == 0

    def forget(self, task: asyncio.Task[Any]) -> None:
        del self.deadlines[task]
        self._expired.discard(task)

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.tick)
            now = loop.time()
            for task, deadline in self.deadlines.items():
                if deadline <= now and task not in self._expired:
                    self._expired.add(task)
                    task.cancel()

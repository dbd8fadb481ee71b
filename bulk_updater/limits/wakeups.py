"""`Wakeups`: sleeps that end early when something changes (the schedule, a stop).

A paced job sleeps once per request, until its start slot. An `Event` waited on under
`asyncio.timeout` ends most of those sleeps by cancelling the task and raising through every
frame of the worker; here a sleep is one future and one timer, and it returns either way.
"""

from __future__ import annotations

import asyncio


def _wake(sleeper: asyncio.Future[None]) -> None:
    if not sleeper.done():
        sleeper.set_result(None)


class Wakeups:
    """The sleeps running now; `wake()` ends them all at once."""

    __slots__ = ("_sleepers",)

    def __init__(self) -> None:
        self._sleepers: set[asyncio.Future[None]] = set()

    async def sleep(self, delay: float) -> None:
        """Sleep `delay` seconds, or until `wake()`, whichever comes first."""
        loop = asyncio.get_running_loop()
        sleeper = loop.create_future()
        timer = loop.call_later(delay, _wake, sleeper)
        self._sleepers.add(sleeper)
        try:
            await sleeper
        finally:
            timer.cancel()
            self._sleepers.discard(sleeper)

    def wake(self) -> None:
        """End every sleep running now (a sleep that starts later is not woken)."""
        sleepers, self._sleepers = self._sleepers, set()
        for sleeper in sleepers:
            _wake(sleeper)

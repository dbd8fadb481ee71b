"""Starts that left late: the records of a shared schedule follow the requests out.

Redis records a start when it grants it (`schedule.lua`), but a request can leave its process
later: its connection had to be opened first, or the host was too busy to run it at once. Then
it may reach the API next to the start after it, and the starts Redis holds to R in any
second are not the requests' departures. So `RedisLimiter` notes each start it grants in the
task that acquired it (`granted`), the client calls `departed()` as that task writes the
request, and a start that left more than `late` seconds after its grant is moved in Redis to
when it left (the script's `depart`). The moves go in one call at a time, carrying every late
start noted while the previous one was on its way: on a busy loop most starts are late, and a
call each would double the calls to Redis.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable
from typing import Final

#: Late starts kept for the next call at most: beyond, Redis is far behind, and the rest go.
MAX_MOVES: Final = 1000

#: The start the current task was granted last, until its request leaves: (the time Redis
#: recorded, the loop time at which it was granted). A request runs in the task that acquired
#: its start, so each request sees its own.
_GRANTED: contextvars.ContextVar[tuple[str, float] | None] = contextvars.ContextVar(
    "bulk_updater_granted", default=None
)


class LateDepartures:
    """The starts that left late, sent to Redis by `move(records)` (space-separated records;
    it returns False when Redis can no longer be used, and the rest are dropped)."""

    def __init__(self, move: Callable[[str], Awaitable[bool]], late: float) -> None:
        self._move = move
        self.late = late
        self._pending: list[str] = []
        self._mover: asyncio.Task[None] | None = None

    def granted(self, recorded: str) -> None:
        """The current task was just granted the start Redis recorded as `recorded`."""
        _GRANTED.set((recorded, asyncio.get_running_loop().time()))

    def departed(self) -> asyncio.Task[None] | None:
        """The current task's request is leaving now; a task that sends the late ones when one
        had to be started (the caller keeps it until it ends)."""
        grant = _GRANTED.get()
        if grant is None:
            return None
        _GRANTED.set(None)  # once per start
        recorded, at = grant
        loop = asyncio.get_running_loop()
        if loop.time() - at <= self.late:
            return None
        if len(self._pending) < MAX_MOVES:
            self._pending.append(recorded)
        if self._mover is not None and not self._mover.done():
            return None  # it takes this one along
        self._mover = loop.create_task(self._send())
        return self._mover

    async def _send(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            if not await self._move(" ".join(batch)):
                self._pending.clear()
                return

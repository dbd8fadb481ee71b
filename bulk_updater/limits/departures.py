"""Late starts of a shared schedule: given back, or their records following the requests out.

Two kinds of lateness, both measured here. A start whose answer came too slowly to act on in
time (`slow`) is given back by `RedisLimiter` and asked for again. A start acted on, but whose
request then left late, is moved.

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
import collections
import contextvars
import logging
from collections.abc import Awaitable, Callable
from typing import Final

log = logging.getLogger("bulk_updater")

#: Late starts kept for the next calls at most: beyond, Redis is far behind, and the rest go.
MAX_MOVES: Final = 1000
#: Late starts moved by one call: each is pushed a microsecond after the one before (to stay
#: distinct), and the schedule's clock follows the latest, so a batch moves it by this many.
BATCH: Final = 100

#: The start the current task was granted last: (the time Redis recorded, about when that was
#: in loop time). A request is written by the task that acquired its start (the client calls
#: `departed()` right after the write), so each request sees its own; a start reported twice is
#: measured again, and moved again if late.
_GRANTED: contextvars.ContextVar[tuple[str, float] | None] = contextvars.ContextVar(
    "bulk_updater_granted", default=None
)


class LateDepartures:
    """Lateness of the starts a process is granted: an answer too slow to act on (`slow`), and
    the starts that left late, sent to Redis by `move(records)` (space-separated records; it
    returns False when Redis can no longer be used, and the rest are dropped)."""

    def __init__(self, move: Callable[[str], Awaitable[bool]], late: float) -> None:
        self._move = move
        self.late = late
        self._round_trips: collections.deque[float] = collections.deque(maxlen=64)
        self._pending: list[str] = []
        self._mover: asyncio.Task[None] | None = None
        self.dropped = 0  # late starts left at their old time: Redis was too far behind

    def slow(self, round_trip: float) -> bool:
        """Whether a start granted during this round trip may leave too late to use.

        Redis records a start when it grants it. If this process was slow to act on the answer
        (descheduled on a busy host, a loop kept busy), the request would reach the server
        later than its record says, maybe next to the one after it. The answer's round trip,
        over the quickest of the latest ones (the network's own share), says so.
        """
        trips = self._round_trips
        trips.append(round_trip)
        return round_trip - min(trips) > self.late

    def granted(self, recorded: str, asked: float) -> None:
        """The current task was granted the start Redis recorded as `recorded` by the call it
        sent at loop time `asked`. Lateness counts from then plus the network's one way (the
        quickest round trip's half): the way back and whatever held up the answer count."""
        _GRANTED.set((recorded, asked + min(self._round_trips, default=0.0) / 2))

    def departed(self) -> asyncio.Task[None] | None:
        """The current task's request is leaving now; a task that sends the late ones when one
        had to be started (the caller keeps it until it ends)."""
        grant = _GRANTED.get()
        if grant is None:
            return None
        recorded, at = grant
        loop = asyncio.get_running_loop()
        if loop.time() - at <= self.late:
            return None
        if len(self._pending) < MAX_MOVES:
            self._pending.append(recorded)
        else:
            if not self.dropped:
                log.debug("Redis is far behind: late starts are left at the times recorded")
            self.dropped += 1
        if self._mover is not None and not self._mover.done():
            return None  # it takes this one along
        self._mover = loop.create_task(self._send())
        return self._mover

    async def _send(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:BATCH], self._pending[BATCH:]
            if not await self._move(" ".join(batch)):
                self.dropped += len(self._pending)
                self._pending.clear()
                return

"""`Window`: the rows read but not yet consumed, at most `size`, which keeps memory flat.

The feeder takes a place before it reads a row; a row's place comes back when its outcome is
consumed. A full window holds the feeder until `REFILL` of it is free again, so that it wakes
once for a batch of rows rather than once a row: a paced job consumes one outcome at a time.
"""

from __future__ import annotations

import asyncio
from typing import Final

#: The share of the window that must be free before a feeder held by a full window reads on.
REFILL: Final = 1 / 8


class Window:
    """At most `size` places taken; one taker (the feeder), which `wait()`s when it is full."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.taken = 0
        self._reopen_at = size - max(1, int(size * REFILL))  # taken places to wake the taker at
        self._room: asyncio.Future[None] | None = None

    def take(self) -> bool:
        """Take a place if one is free; else False (`wait()` for room)."""
        if self.taken < self.size:
            self.taken += 1
            return True
        return False

    async def wait(self) -> None:
        """Until `REFILL` of a full window is free again."""
        room = self._room = asyncio.get_running_loop().create_future()
        try:
            await room
        finally:
            self._room = None

    def give_back(self) -> None:
        """A row's outcome was consumed: its place is free."""
        self.taken -= 1
        room = self._room
        if room is not None and self.taken <= self._reopen_at and not room.done():
            room.set_result(None)

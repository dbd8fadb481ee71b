"""Change notification for the page: a version that grows with each change, and a wait for it.

The page is a view of the server's state at a version. `changed()` may be called from the event
loop or from another thread (the check's); each call wakes the event streams (`wait_change`).
"""

from __future__ import annotations

import asyncio
import threading


class Notifier:
    """The page's version, bumped by `changed()`, and the event streams' wait for the next one."""

    def __init__(self) -> None:
        self.version = 0
        self.closed = False
        self._change = asyncio.Event()
        self.loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()

    def changed(self) -> None:
        """Something the page shows changed; callable from the check's thread too."""
        if threading.get_ident() == self._loop_thread:  # at once: the answer shows the change
            self._bump()
        else:
            self.loop.call_soon_threadsafe(self._bump)

    def _bump(self) -> None:
        self.version += 1
        self._change.set()
        self._change = asyncio.Event()

    async def wait_change(self, seen: int) -> bool:
        """Wait until the version is past `seen`; False once the server is stopping."""
        while self.version <= seen and not self.closed:
            await self._change.wait()
        return not self.closed

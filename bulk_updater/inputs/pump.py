"""Rows from a blocking reader (standard input, a pipe), read by a thread so the loop never waits.

Each row is handed over as soon as it is read, so rows arriving slowly on an open pipe are sent
as they come. At most `_AHEAD` rows wait between the thread and the job; `ready()` gives those at
once, so an interrupted job can still report every row that was read.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Final, TypeVar

T = TypeVar("T")
_AHEAD: Final = 64  # rows read but not yet taken, at most


class Pump(AsyncIterator[T]):
    """An async iterator over a blocking iterator, which a daemon thread drives.

    The thread is a daemon so that a pipe that never ends does not keep the process alive after
    an interrupt; it stops at its next row once `close()` was called.
    """

    def __init__(self, items: Iterator[T]) -> None:
        self._items = items
        self._loop = asyncio.get_running_loop()
        self._buffer: collections.deque[T] = collections.deque()
        self._lock = threading.Condition()
        self._waiter: asyncio.Future[None] | None = None
        self._done = False
        self._error: BaseException | None = None
        self._gone = False
        threading.Thread(target=self._pump, name="bulk-updater-stdin", daemon=True).start()

    def _pump(self) -> None:
        try:
            for item in self._items:
                with self._lock:
                    while len(self._buffer) >= _AHEAD and not self._gone:
                        self._lock.wait(0.5)
                    if self._gone:
                        return
                    self._buffer.append(item)
                self._wake()
        except Exception as exc:  # handed to the loop, which raises it in the job
            self._error = exc
        with self._lock:
            self._done = True
        self._wake()

    def _wake(self) -> None:
        with self._lock:
            waiter, self._waiter = self._waiter, None
        if waiter is not None:
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody is listening
                self._loop.call_soon_threadsafe(_resolve, waiter)

    async def __anext__(self) -> T:
        while True:
            with self._lock:
                if self._buffer:
                    item = self._buffer.popleft()
                    self._lock.notify()
                    return item
                if self._done:
                    if self._error is not None:
                        raise self._error
                    raise StopAsyncIteration
                waiter = self._waiter = self._loop.create_future()
            await waiter

    def ready(self) -> list[T]:
        """The rows already read and waiting, without waiting for more."""
        with self._lock:
            items = list(self._buffer)
            self._buffer.clear()
            self._lock.notify()
        return items

    async def aclose(self) -> None:
        with self._lock:
            self._gone = True
            self._lock.notify()


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)

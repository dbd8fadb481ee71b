"""`Results`: the rows' outcomes, from the workers to the job's one consumer, in finishing order.

What an `asyncio.Queue` would do for one consumer, with no task accounting: a worker's `put()`
appends and wakes the consumer if it waits, and the consumer takes what is there without a
coroutine a row, waiting only when nothing is.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Generic, TypeVar

_T = TypeVar("_T")


class Results(Generic[_T]):
    """A first-in first-out channel with any number of producers and one consumer."""

    def __init__(self) -> None:
        self._items: collections.deque[_T] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None

    def put(self, item: _T) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def empty(self) -> bool:
        return not self._items

    async def get(self) -> _T:
        """The next item, waiting for one if there is none."""
        if not self._items:
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        return self._items.popleft()

    def take(self) -> _T:
        """The next item, which must be there (`empty()` is False)."""
        return self._items.popleft()

"""Rows whose admission takes time (a search for their email) go on in input order; and the key
a lead's rows are ordered by (`lead_key`).

The feeder hands each such row over with what its admission will decide (a coroutine, run as a
task at once, so later rows' searches go on meanwhile); `run()` takes them back in input order,
each when its decision is there, and settles them. Rows behind a slow one wait for it: a row must
join its lead's chain after every earlier row of that lead, or the last row would not win.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
from collections.abc import Awaitable, Callable

from ..inputs import Row
from .admission import Admitted


def lead_key(lead: str) -> str:
    """The key of a lead's chain of rows: its id in lower case.

    SendKit ids are 24-hex ObjectIds, which a Mongo backend reads in either case: `66A0…AA` and
    `66a0…aa` may be one lead, so their rows never go at once (each is sent as written).
    """
    return lead.lower()


class InOrder:
    """The rows waiting for their admission, in input order."""

    def __init__(self, settle: Callable[[Row, Admitted], None]) -> None:
        self.pending: collections.deque[tuple[Row, asyncio.Future[Admitted]]] = collections.deque()
        self._settle = settle
        self._added = asyncio.Event()
        self.drained = asyncio.Event()  # nothing waits: set once the last row was settled
        self.drained.set()

    def add(self, row: Row, admitted: Admitted | Awaitable[Admitted]) -> None:
        if isinstance(admitted, asyncio.Future):
            future: asyncio.Future[Admitted] = admitted
        elif inspect.isawaitable(admitted):
            future = asyncio.ensure_future(admitted)
        else:
            future = asyncio.get_running_loop().create_future()
            future.set_result(admitted)
        self.pending.append((row, future))
        self.drained.clear()
        self._added.set()

    async def run(self) -> None:
        """Settle the rows in input order, each once its admission has decided."""
        pending = self.pending
        while True:
            if not pending:
                self.drained.set()
                self._added.clear()
                await self._added.wait()
                continue
            row, future = pending[0]
            admitted = await future  # a rule's bug propagates: the job fails, rows are reported
            if not pending or pending[0][1] is not future:
                continue  # a stop took the row while this waited: `cancel()` gave its outcome
            pending.popleft()
            self._settle(row, admitted)

    def cancel(self) -> list[tuple[Row, Admitted | None]]:
        """On a stop: every waiting row, with its admission's decision if it had one."""
        waiting: list[tuple[Row, Admitted | None]] = []
        for row, future in self.pending:
            if future.done() and not future.cancelled() and future.exception() is None:
                waiting.append((row, future.result()))
            else:
                future.cancel()
                waiting.append((row, None))
        self.pending.clear()
        self.drained.set()
        return waiting


def discard(pending: object) -> None:
    """Close a decision that will not be awaited (a coroutine never started)."""
    close = getattr(pending, "close", None)
    if close is not None:
        close()

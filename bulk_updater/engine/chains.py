"""`Chains`: the rows waiting for a worker, each lead's rows one behind the other.

A row goes to the queue when no row of its lead is in the pipeline; else it waits in its lead's
chain, and the worker that finishes a row takes the next of that chain. So the rows of one lead
are never in flight together, and they go out in input order: the last row wins.
"""

from __future__ import annotations

import asyncio
import collections

from ..inputs import Row


class Chains:
    """The queue the workers take rows from, and the chains of rows behind a lead's row."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Row] = asyncio.Queue()
        # lead id -> rows waiting behind the one in the pipeline (None: no row waiting yet)
        self._behind: dict[str, collections.deque[Row] | None] = {}

    def add(self, row: Row, lead: str) -> None:
        """Queue the row, or chain it behind the row of the same lead already in the pipeline."""
        behind = self._behind
        if lead not in behind:
            behind[lead] = None
            self.queue.put_nowait(row)
        elif (chain := behind[lead]) is not None:
            chain.append(row)
        else:
            behind[lead] = collections.deque((row,))

    def next(self, lead: str) -> Row | None:
        """The next row of `lead`, whose previous row is finished; None: the lead is free."""
        chain = self._behind[lead]
        if not chain:  # None, or emptied
            del self._behind[lead]
            return None
        return chain.popleft()

    def clear(self) -> list[Row]:
        """Every row still waiting, in the chains and in the queue, taken out (after a stop)."""
        rows = [row for chain in self._behind.values() for row in chain or ()]
        self._behind.clear()
        while not self.queue.empty():
            rows.append(self.queue.get_nowait())
            self.queue.task_done()
        return rows

"""Per-row rules: decide, for each row, to send it (possibly changed) or to answer it at once.

A rule's `admit()` sees every row in input order as the feeder reads it; its `ready()`, if it has
one, sees the row again right before it is sent, once every earlier row of the same lead has
finished (so it knows what they did). Either returns the row to send or the row's final `Outcome`
without sending anything. A rule may also have `prefetch(rows)`, shown each batch of rows before
the first of them is admitted, to look up what they need at once. `Resume` is the first rule:
rows an earlier run finished are `skipped`. A new rule is a new class (here, or in a module of
its own, like `unchanged.py`), added to the list `Rules` applies in order.
"""

from __future__ import annotations

import inspect
import math
import sqlite3
from collections.abc import Awaitable, Container
from typing import Any, Final, Protocol

from ..inputs import Row
from ..models import LeadUpdate, Outcome, Status
from ..report import FinishedRows

Admitted = Row | Outcome


class Admission(Protocol):
    """A per-row rule applied by the feeder, in input order."""

    def admit(self, row: Row) -> Admitted | Awaitable[Admitted]:
        """The row to send (possibly changed, or `invalid`), or its outcome without sending."""

    def close(self) -> None:
        """The job is over."""


class BeforeSend(Protocol):
    """A per-row rule applied right before sending, when the lead's earlier rows are done."""

    def ready(self, row: Row) -> Admitted | Awaitable[Admitted]:
        """The row to send, or its outcome without sending."""


class Prefetch(Protocol):
    """A rule that looks up what it needs for a batch of rows before they are admitted."""

    def prefetch(self, rows: list[Row]) -> None:
        """The next rows to be admitted, in input order (some may be answered by earlier rules)."""


class Rules(Admission, BeforeSend):
    """Several rules, applied in order: the first that answers a row decides for it."""

    def __init__(self, rules: list[Admission]) -> None:
        self.rules = rules
        self.checks: list[BeforeSend] = [r for r in rules if hasattr(r, "ready")]  # type: ignore[misc]
        self.prefetchers: list[Prefetch] = [r for r in rules if hasattr(r, "prefetch")]  # type: ignore[misc]

    def prefetch(self, rows: list[Row]) -> None:
        for rule in self.prefetchers:
            rule.prefetch(rows)

    async def _apply(self, row: Row, steps: list[Any]) -> Admitted:
        for step in steps:
            decided = step(row)
            if inspect.isawaitable(decided):
                decided = await decided
            if isinstance(decided, Outcome):
                return decided
            row = decided
        return row

    def admit(self, row: Row) -> Admitted | Awaitable[Admitted]:
        if len(self.rules) == 1:  # the common case: no coroutine per row
            return self.rules[0].admit(row)
        return self._apply(row, [rule.admit for rule in self.rules])

    def ready(self, row: Row) -> Admitted | Awaitable[Admitted]:
        if len(self.checks) == 1:  # the common case: no coroutine per row
            return self.checks[0].ready(row)
        return self._apply(row, [check.ready for check in self.checks])

    def close(self) -> None:
        for rule in self.rules:
            rule.close()


def outcome_of(row: Row, status: Status, message: str, attempts: int = 0) -> Outcome:
    """The outcome of a row the engine answers itself (nothing was sent, or no answer came)."""
    item = row.item
    return Outcome.trusted(
        row=row.number,
        line=row.line,
        id=item.id,
        status=status,
        http_status=None,
        error_code=None,
        message=message,
        attempts=attempts,
        duration_ms=None,
        email=item.email,
    )


class Resume(Admission):
    """`--resume`: rows the earlier run finished for good are `skipped`, not sent again.

    One exception keeps "the last row wins": once an earlier row of a lead is sent again, every
    later row of that lead is sent after it, even if the earlier run finished it.
    """

    def __init__(self, finished: Container[int]) -> None:
        """`finished`: the earlier run's `FinishedRows`, or any container of row numbers."""
        self.finished = finished
        self._earlier = finished if isinstance(finished, FinishedRows) else None
        self._horizon = self._earlier.horizon if self._earlier is not None else math.inf
        self._resent = LeadSet()

    def admit(self, row: Row) -> Admitted:
        item, number = row.item, row.number
        if number in self.finished and item.id not in self._resent:
            earlier = self._earlier.status_of(number) if self._earlier is not None else None
            what = f" ({earlier.value})" if earlier else ""
            return outcome_of(row, Status.SKIPPED, f"finished by an earlier run{what}")
        if isinstance(item, LeadUpdate) and number <= self._horizon:
            # Sent again after an earlier run: later rows for the same lead that run finished
            # must follow, or an older value would win.
            self._resent.add(item.id)
        return row

    def close(self) -> None:
        self._resent.close()


_PENDING: Final = 4096  # ids held in memory before they are written to the table


class LeadSet:
    """An exact set of lead ids whose memory stays flat: a bit table in front of SQLite.

    The bit table (4 MB) answers most lookups of absent ids without a query; the ids themselves
    live in a private on-disk SQLite database that is deleted when the set is closed.
    """

    def __init__(self, bits: int = 1 << 25) -> None:
        self._table = bytearray(bits // 8)
        self._mask = bits - 1
        self._pending: set[str] = set()
        self._db: sqlite3.Connection | None = None

    def add(self, lead_id: str) -> None:
        slot = hash(lead_id) & self._mask
        byte, bit = slot >> 3, 1 << (slot & 7)
        if self._table[byte] & bit and lead_id in self:
            return
        self._table[byte] |= bit
        self._pending.add(lead_id)
        if len(self._pending) >= _PENDING:
            self._write()

    def __contains__(self, lead_id: object) -> bool:
        if not isinstance(lead_id, str):
            return False
        slot = hash(lead_id) & self._mask
        if not self._table[slot >> 3] & (1 << (slot & 7)):
            return False
        if lead_id in self._pending:
            return True
        if self._db is None:
            return False
        query = "SELECT 1 FROM leads WHERE id = ?"
        return self._db.execute(query, (lead_id,)).fetchone() is not None

    def _write(self) -> None:
        if self._db is None:
            self._db = sqlite3.connect("")  # "": a private temporary database on disk
            self._db.execute("CREATE TABLE leads (id TEXT PRIMARY KEY) WITHOUT ROWID")
        with self._db:
            self._db.executemany(
                "INSERT OR IGNORE INTO leads VALUES (?)", ((i,) for i in self._pending)
            )
        self._pending.clear()

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

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
from collections.abc import Awaitable, Container
from typing import Any, Protocol

from ..inputs import Invalid, Row
from ..models import Outcome, Status
from ..report import FinishedRows
from .diskmap import LeadSet
from .outcomes import outcome_of

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
        self._admits = [rule.admit for rule in rules]
        self._readies = [check.ready for check in self.checks]
        self.prefetchers: list[Prefetch] = [r for r in rules if hasattr(r, "prefetch")]  # type: ignore[misc]
        if len(rules) == 1:  # one rule: its own decision, without a loop around it
            self.admit = rules[0].admit  # type: ignore[method-assign]

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
        return self._decide(row, self._admits)

    def ready(self, row: Row) -> Admitted | Awaitable[Admitted]:
        return self._decide(row, self._readies)

    def _decide(self, row: Row, steps: list[Any]) -> Admitted | Awaitable[Admitted]:
        """Apply the steps without a coroutine until one of them must wait (the usual case)."""
        for at, step in enumerate(steps):
            decided = step(row)
            if type(decided) is Row:  # the usual answer first: cheaper than isawaitable
                row = decided
            elif isinstance(decided, Outcome):
                return decided
            else:
                rest = steps[at + 1 :]
                return self._finish(decided, rest) if rest else decided
        return row

    async def _finish(self, pending: Awaitable[Admitted], steps: list[Any]) -> Admitted:
        decided = await pending
        if isinstance(decided, Outcome):
            return decided
        return await self._apply(decided, steps)

    def close(self) -> None:
        for rule in self.rules:
            rule.close()


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
        lead = item.id or f"email:{(item.email or '').casefold()}"  # a row keyed by email
        if number in self.finished and lead not in self._resent:
            earlier = self._earlier.status_of(number) if self._earlier is not None else None
            what = f" ({earlier.value})" if earlier else ""
            return outcome_of(row, Status.SKIPPED, f"finished by an earlier run{what}")
        if not isinstance(item, Invalid) and number <= self._horizon:
            # Sent again after an earlier run: later rows for the same lead that run finished
            # must follow, or an older value would win.
            self._resent.add(lead)
        return row

    def close(self) -> None:
        self._resent.close()

"""Per-row rules: decide, for each row, to send it (possibly changed) or to answer it at once.

A rule's `admit()` sees every row in input order as the feeder reads it; its `ready()`, if it has
one, sees the row again right before it is sent, once every earlier row of the same lead has
finished (so it knows what they did). Either returns the row to send or the row's final `Outcome`
without sending anything. A rule may also have `prefetch(rows)`, shown each batch of rows before
the first of them is admitted, to look up what they need at once. `Resume` (`resume.py`) is the
first rule: rows an earlier run finished are `skipped`. A new rule is a new class (here, or in a
module of its own, like `unchanged.py`), added to the list `Rules` applies in order. A rule with
`settled(row, outcome)` is told of every row another rule answered, and may answer it otherwise.
A rule with `stopped(row)` may answer a row whose admission the job's stop cut short (else the
row is `aborted`).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from ..inputs import Row
from ..models import Outcome

Admitted = Row | Outcome
Settlers = tuple[Callable[[Row, Outcome], Outcome], ...]  # told of rows another rule answered


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


class Settles(Protocol):
    """A rule that keeps books of rows: told of each row another rule answered."""

    def settled(self, row: Row, outcome: Outcome) -> Outcome:
        """`row` got `outcome` from another rule (it will not reach this one): the outcome it
        keeps (`outcome`, or another this rule knows better)."""


class Stops(Protocol):
    """A rule that knows the outcome of some rows whose admission a stop cut short."""

    def stopped(self, row: Row) -> Outcome | None:
        """The outcome of `row`, which was still being admitted when the job stopped; None: it
        is `aborted`."""


class Rules(Admission, BeforeSend):
    """Several rules, applied in order: the first that answers a row decides for it."""

    def __init__(self, rules: list[Admission]) -> None:
        self.rules = rules
        self.checks: list[BeforeSend] = [r for r in rules if hasattr(r, "ready")]  # type: ignore[misc]
        self._admits = [rule.admit for rule in rules]
        self._readies = [check.ready for check in self.checks]
        self.prefetchers: list[Prefetch] = [r for r in rules if hasattr(r, "prefetch")]  # type: ignore[misc]
        # Rules told of each row another rule answered (`settled(row, outcome)`), in order.
        settles: list[Settles] = [r for r in rules if hasattr(r, "settled")]  # type: ignore[misc]
        self._settlers: Settlers = tuple(r.settled for r in settles)
        self._stoppers: list[Stops] = [r for r in rules if hasattr(r, "stopped")]  # type: ignore[misc]
        if len(rules) == 1:  # one rule: its own decision, without a loop around it
            self.admit = rules[0].admit  # type: ignore[method-assign]

    def prefetch(self, rows: list[Row]) -> None:
        for rule in self.prefetchers:
            rule.prefetch(rows)

    def stopped(self, row: Row) -> Outcome | None:
        """The outcome a rule knows for `row`, cut short by a stop (None: it is `aborted`)."""
        for rule in self._stoppers:
            outcome = rule.stopped(row)
            if outcome is not None:
                return outcome
        return None

    async def _apply(self, row: Row, steps: list[Any], settlers: Settlers) -> Admitted:
        for step in steps:
            decided = step(row)
            if inspect.isawaitable(decided):
                decided = await decided
            if isinstance(decided, Outcome):
                return _answered(row, decided, settlers)
            row = decided
        return row

    def admit(self, row: Row) -> Admitted | Awaitable[Admitted]:
        return self._decide(row, self._admits, self._settlers)

    def ready(self, row: Row) -> Admitted | Awaitable[Admitted]:
        return self._decide(row, self._readies, ())

    def _decide(
        self, row: Row, steps: list[Any], settlers: Settlers
    ) -> Admitted | Awaitable[Admitted]:
        """Apply the steps without a coroutine until one of them must wait (the usual case)."""
        for at, step in enumerate(steps):
            decided = step(row)
            if type(decided) is Row:  # the usual answer first: cheaper than isawaitable
                row = decided
            elif isinstance(decided, Outcome):
                return _answered(row, decided, settlers) if settlers else decided
            else:
                pending: Awaitable[Admitted] = decided
                rest = steps[at + 1 :]
                if rest or settlers:
                    return self._finish(row, pending, rest, settlers)
                return pending
        return row

    async def _finish(
        self,
        row: Row,
        pending: Awaitable[Admitted],
        steps: list[Any],
        settlers: Settlers,
    ) -> Admitted:
        decided = await pending
        if isinstance(decided, Outcome):
            return _answered(row, decided, settlers)
        return await self._apply(decided, steps, settlers)

    def close(self) -> None:
        for rule in self.rules:
            rule.close()


def _answered(row: Row, outcome: Outcome, settlers: Settlers) -> Outcome:
    """`outcome` for `row`, told to the rules that keep books of answered rows (the outcome one
    of them keeps instead, if any)."""
    for settled in settlers:
        outcome = settled(row, outcome)
    return outcome

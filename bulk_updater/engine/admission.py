"""Per-row rules: decide, for each row, to send it (possibly changed) or to answer it at once.

Every rule is an `Admission`: its `admit()` sees every row in input order as the feeder reads
it, and returns the row to send or the row's final `Outcome` without sending anything. A rule
says what else it does by the base classes it names (declared, never guessed from its attributes):

- `BeforeSend`: `ready()` sees the row again right before it is sent, once every earlier row of
  the same lead has finished (so it knows what they did);
- `Prefetch`: `prefetch(rows)` is shown each batch of rows before the first of them is admitted,
  to look up what they need at once;
- `Settles`: `settled(row, outcome)` is told of every row another rule answered, and may answer
  it otherwise;
- `Stops`: `stopped(row)` may answer a row whose admission the job's stop cut short (else the
  row is `aborted`).

`Resume` (`resume.py`) is the first rule: rows an earlier run finished are `skipped`. A new rule
is a new class (here, or in a module of its own, like `unchanged.py`), added to the list `Rules`
applies in order.
"""

from __future__ import annotations

import abc
import inspect
from collections.abc import Awaitable, Callable
from typing import Protocol, cast

from ..inputs import Row
from ..models import Outcome

Admitted = Row | Outcome
Step = Callable[[Row], Admitted | Awaitable[Admitted]]  # a rule's `admit` or `ready`
Settlers = tuple[Callable[[Row, Outcome], Outcome], ...]  # told of rows another rule answered


class Admission(Protocol):
    """A per-row rule applied by the feeder, in input order."""

    def admit(self, row: Row) -> Admitted | Awaitable[Admitted]:
        """The row to send (possibly changed, or `invalid`), or its outcome without sending."""

    def close(self) -> None:
        """The job is over."""


class BeforeSend(abc.ABC):
    """A per-row rule applied right before sending, when the lead's earlier rows are done."""

    @abc.abstractmethod
    def ready(self, row: Row) -> Admitted | Awaitable[Admitted]:
        """The row to send, or its outcome without sending."""


class Prefetch(abc.ABC):
    """A rule that looks up what it needs for a batch of rows before they are admitted."""

    @abc.abstractmethod
    def prefetch(self, rows: list[Row]) -> None:
        """The next rows to be admitted, in input order (some may be answered by earlier rules)."""


class Settles(abc.ABC):
    """A rule that keeps books of rows: told of each row another rule answered."""

    @abc.abstractmethod
    def settled(self, row: Row, outcome: Outcome) -> Outcome:
        """`row` got `outcome` from another rule (it will not reach this one): the outcome it
        keeps (`outcome`, or another this rule knows better)."""


class Stops(abc.ABC):
    """A rule that knows the outcome of some rows whose admission a stop cut short."""

    @abc.abstractmethod
    def stopped(self, row: Row) -> Outcome | None:
        """The outcome of `row`, which was still being admitted when the job stopped; None: it
        is `aborted`."""


class Rules:
    """Several rules, applied in order: the first that answers a row decides for it.

    Each base class a rule names (`BeforeSend`, `Prefetch`, `Settles`, `Stops`) puts it on the
    list of the rules asked at that step; the others are never called there (an attribute of the
    same name, `self.ready = True`, declares nothing).
    """

    def __init__(self, rules: list[Admission]) -> None:
        self.rules = rules
        self.checks = [rule for rule in rules if isinstance(rule, BeforeSend)]
        self._admits: list[Step] = [rule.admit for rule in rules]
        self._readies: list[Step] = [check.ready for check in self.checks]
        self.prefetchers = [rule for rule in rules if isinstance(rule, Prefetch)]
        # Rules told of each row another rule answered (`settled(row, outcome)`), in order.
        self._settlers: Settlers = tuple(r.settled for r in rules if isinstance(r, Settles))
        self._stoppers = [rule for rule in rules if isinstance(rule, Stops)]
        # One rule: its own decision, without a loop around it.
        self.admit: Step = rules[0].admit if len(rules) == 1 else self._admit

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

    async def _apply(self, row: Row, steps: list[Step], settlers: Settlers) -> Admitted:
        for step in steps:
            decided = step(row)
            if inspect.isawaitable(decided):
                decided = await decided
            if isinstance(decided, Outcome):
                return _answered(row, decided, settlers)
            row = decided
        return row

    def _admit(self, row: Row) -> Admitted | Awaitable[Admitted]:
        """The row to send (possibly changed, or `invalid`), or its outcome without sending."""
        return self._decide(row, self._admits, self._settlers)

    def ready(self, row: Row) -> Admitted | Awaitable[Admitted]:
        """The row to send, or its outcome without sending (`BeforeSend` rules only)."""
        return self._decide(row, self._readies, ())

    def _decide(
        self, row: Row, steps: list[Step], settlers: Settlers
    ) -> Admitted | Awaitable[Admitted]:
        """Apply the steps without a coroutine until one of them must wait (the usual case)."""
        for at, step in enumerate(steps):
            decided = step(row)
            if type(decided) is Row:  # the usual answer first: cheaper than isawaitable
                row = decided
            elif isinstance(decided, Outcome):
                return _answered(row, decided, settlers) if settlers else decided
            else:
                pending = cast(Awaitable[Admitted], decided)  # neither a row nor an outcome
                rest = steps[at + 1 :]
                if rest or settlers:
                    return self._finish(row, pending, rest, settlers)
                return pending
        return row

    async def _finish(
        self,
        row: Row,
        pending: Awaitable[Admitted],
        steps: list[Step],
        settlers: Settlers,
    ) -> Admitted:
        decided = await pending
        if isinstance(decided, Outcome):
            return _answered(row, decided, settlers)
        return await self._apply(decided, steps, settlers)

    def close(self) -> None:
        """The job is over: every rule is told."""
        for rule in self.rules:
            rule.close()


def _answered(row: Row, outcome: Outcome, settlers: Settlers) -> Outcome:
    """`outcome` for `row`, told to the rules that keep books of answered rows (the outcome one
    of them keeps instead, if any)."""
    for settled in settlers:
        outcome = settled(row, outcome)
    return outcome

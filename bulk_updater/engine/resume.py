"""`--resume`: rows the earlier run finished for good are `skipped`, not sent again.

One exception keeps "the last row wins": once an earlier row of a lead is sent again, every later
row of that lead is sent after it, even if the earlier run finished it.

A row matched by email has no lead id until its search answers, so two rules share the books:
`Resume` comes first (before `MatchByEmail`) and `Resume.resolved` right after it.

- A row to send again whose lead is not known yet (matched by email) is *unresolved* until its
  search answers; then its lead counts as sent again. Later finished rows wait for the
  unresolved rows before them, so none is skipped while an earlier row may still turn out to
  be of its lead.
- A finished row matched by email, after some row was sent again, is searched (once an email)
  to learn its lead: it is sent again if that lead was, else `skipped`. Before any row was sent
  again, finished rows are skipped at once, with no search.
- A finished row keeps its outcome (`skipped`) when no lead comes of that search: not found,
  ambiguous, or no answer (a failed search, a stop). Rows of its email sent again wait for the same
  search, so none of them has reached its lead; only a row matched by id sent again before it
  could have, and then a search that did not answer leaves the row to be decided by a later run.
  A finished row matched by id that waits for the searches before it keeps its outcome on a stop,
  unless its lead was sent again.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Container
from typing import Literal

from ..inputs import Invalid, Row
from ..inputs.items import ByEmail
from ..models import LeadUpdate, Outcome, Status
from ..report import FinishedRows
from .admission import Admission, Admitted
from .diskmap import LeadSet
from .outcomes import outcome_of


class Resume(Admission):
    """Skips the rows an earlier run finished; see the module docstring."""

    def __init__(
        self, finished: Container[int], match: Literal["id", "email"] | None = None
    ) -> None:
        """`finished`: the earlier run's `FinishedRows`, or any container of row numbers;
        `match`: the job's `match` setting (`email`: every row's lead comes from its email)."""
        self.finished = finished
        self._earlier = finished if isinstance(finished, FinishedRows) else None
        self._horizon = self._earlier.horizon if self._earlier is not None else math.inf
        self._by_email = match == "email"
        self._resent = LeadSet()
        self._any_resent = False  # whether `_resent` holds a lead yet
        self._unresolved: set[int] = set()  # rows whose lead their search is yet to tell
        self._tentative: set[int] = set()  # of those, finished rows searched only to decide
        self._keeps: set[int] = set()  # of those, rows no row sent again by id came before
        self._by_id = False  # whether a row matched by id was sent again yet
        self._changed = asyncio.Event()
        self.resolved = _Resolved(self)

    def _email_row(self, row: Row) -> bool:
        item = row.item
        return isinstance(item, ByEmail) or (self._by_email and isinstance(item, LeadUpdate))

    def admit(self, row: Row) -> Admitted | Awaitable[Admitted]:
        item, number = row.item, row.number
        if isinstance(item, Invalid):
            return self._skipped(row) if number in self.finished else row
        if number not in self.finished:
            if number <= self._horizon:  # sent again: later finished rows of its lead follow
                if self._email_row(row):
                    self._unresolved.add(number)
                else:
                    self._add(item.id)
                    self._by_id = True
            return row
        if self._email_row(row):
            if not self._unresolved and not self._any_resent:
                return self._skipped(row)  # nothing sent again yet: no search needed
            self._unresolved.add(number)
            self._tentative.add(number)
            if not self._by_id:
                self._keeps.add(number)
            return row  # to its search, then `resolved` decides
        if self._unresolved:
            return self._after_earlier(row)
        return row if item.id in self._resent else self._skipped(row)

    async def _after_earlier(self, row: Row) -> Admitted:
        """A finished row's decision, once every unresolved row before it is resolved."""
        number = row.number
        while self._unresolved and min(self._unresolved) < number:
            await self._changed.wait()
        return row if row.item.id in self._resent else self._skipped(row)

    def _skipped(self, row: Row) -> Outcome:
        earlier = self._earlier.status_of(row.number) if self._earlier is not None else None
        what = f" ({earlier.value})" if earlier else ""
        return outcome_of(row, Status.SKIPPED, f"finished by an earlier run{what}")

    def stopped(self, row: Row) -> Outcome | None:
        """A finished row the stop caught before its decision keeps its outcome, if no row sent
        again can have reached its lead (module docstring); None: `aborted`."""
        number, item = row.number, row.item
        if number in self._tentative:
            return self._skipped(row) if number in self._keeps else None
        if number in self.finished and not self._email_row(row) and item.id not in self._resent:
            return self._skipped(row)  # it waited for the searches before it
        return None

    def kept(self, row: Row, outcome: Outcome) -> Outcome:
        """The outcome of an unresolved row whose search told no lead: a finished row keeps its
        earlier one when `outcome` is final too, or when no row sent again can have reached its
        lead; else `outcome`, so that a later run decides."""
        number = row.number
        if number in self._tentative and (outcome.status.is_final or number in self._keeps):
            return self._skipped(row)
        return outcome

    def settle(self, row: Row, lead: str | None) -> Admitted:
        """An unresolved row's lead is known (None: it will not be sent, whatever the reason)."""
        number = row.number
        self._unresolved.discard(number)
        self._keeps.discard(number)
        tentative = number in self._tentative
        self._tentative.discard(number)
        self._changed.set()
        self._changed = asyncio.Event()
        if lead is None:
            return row
        if tentative and lead not in self._resent:
            return self._skipped(row)
        self._add(lead)
        return row

    def _add(self, lead: str) -> None:
        self._resent.add(lead)
        self._any_resent = True

    def close(self) -> None:
        self._resent.close()


class _Resolved(Admission):
    """The rule right after `MatchByEmail`: the rows it resolved, back to `Resume`'s books."""

    def __init__(self, resume: Resume) -> None:
        self._resume = resume

    def admit(self, row: Row) -> Admitted:
        resume = self._resume
        if row.number not in resume._unresolved:
            return row
        item = row.item
        return resume.settle(row, item.id if isinstance(item, LeadUpdate) else None)

    def settled(self, row: Row, outcome: Outcome) -> Outcome:
        """The row was answered before reaching this rule (no lead, a failed search, ...)."""
        resume = self._resume
        if row.number not in resume._unresolved:
            return outcome
        kept = resume.kept(row, outcome)
        resume.settle(row, None)
        return kept

    def close(self) -> None:
        """`Resume` closes the books."""

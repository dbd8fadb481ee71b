"""`--resume`: rows the earlier run finished for good are `skipped`, not sent again.

One exception keeps "the last row wins": a finished row of a lead that a row *before it* (in
input order) sends again is sent again after it. Only rows before it count: a later row of its
lead goes after it anyway, and a finished row is never sent again for a row of another lead.

A row matched by email has no lead id until its search answers, so two rules share the books:
`Resume` comes first (before `MatchByEmail`) and `Resume.resolved` right after it.

- A row to send again whose lead is not known yet (matched by email) is *unresolved* until its
  search answers; then its lead counts as sent again from that row on. A finished row waits for
  the unresolved rows before it, so none is skipped while an earlier row may still turn out to
  be of its lead.
- A finished row matched by email, after some row was sent again, is searched (once an email)
  to learn its lead: it is sent again if a row before it sent that lead again, else `skipped`.
  Before any row was sent again, finished rows are skipped at once, with no search.
- A finished row keeps its outcome (`skipped`) whenever no lead comes of that search: not found,
  ambiguous, a failed search, a stop. That is where the two rules pull apart: a row sent again
  by id before it may have been of its lead, and the search did not say. The row's outcome in
  the report stands (its update was applied once, by the earlier run, and is not sent twice);
  if that earlier row was of its lead, the lead keeps the earlier row's value, and the skipped
  outcome's message says it may. A stop keeps every finished row's outcome but that of a row
  bound to go again behind an earlier row of its lead.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Container
from typing import Literal

from ..errors import InputChangedError
from ..inputs import Invalid, Row
from ..inputs.items import ByEmail
from ..models import LeadUpdate, Outcome, Status
from ..report import FinishedRows
from .admission import Admission, Admitted, Settles, Stops
from .diskmap import DiskMap
from .outcomes import outcome_of


class Resume(Admission, Stops):
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
        # lead -> the first row (in input order) sent again to it, so that a row late to decide
        # counts only the rows before it, whatever later rows were admitted meanwhile
        self._first = DiskMap()
        self._first_resent: float = math.inf  # the first row sent again to a known lead
        self._first_by_id: float = math.inf  # of those, the first matched by id
        self._unresolved: set[int] = set()  # rows sent again whose lead their search is to tell
        self._tentative: set[int] = set()  # finished rows searched only to decide
        self._found: dict[int, str] = {}  # of those, the lead found, while earlier rows resolve
        self._changed = asyncio.Event()
        self.resolved = _Resolved(self)

    def _email_row(self, row: Row) -> bool:
        item = row.item
        return isinstance(item, ByEmail) or (self._by_email and isinstance(item, LeadUpdate))

    def admit(self, row: Row) -> Admitted | Awaitable[Admitted]:
        item, number = row.item, row.number
        if number in self.finished:
            self._check(row)
        if isinstance(item, Invalid):
            return self._skipped(row) if number in self.finished else row
        if number not in self.finished:
            if number <= self._horizon:  # sent again: later finished rows of its lead follow
                if self._email_row(row):
                    self._unresolved.add(number)
                else:
                    self._add(item.id, number)
                    self._first_by_id = min(self._first_by_id, number)
            return row
        if self._email_row(row):
            if not self._unresolved and self._first_resent > number:
                return self._skipped(row)  # nothing sent again before it: no search needed
            self._tentative.add(number)
            return row  # to its search, then `resolved` decides
        return self._decide(row, item.id)

    def _check(self, row: Row) -> None:
        """Refuse a finished row that the report names another lead for: rows given in another
        order (an input with no fingerprint) would be skipped under other rows' outcomes."""
        keys = self._earlier.keys if self._earlier is not None else None
        item = row.item
        if self._email_row(row):
            id, email = None, item.email  # its id is the search's, and may not be known yet
        else:
            id, email = item.id, item.email if isinstance(item, Invalid) else None
        if keys is not None and keys.differs(row.number, id, email):
            now = f"id {id}" if id is not None else f"email {email}"
            raise InputChangedError(
                f"cannot resume: the report holds another lead than row {row.number}'s ({now}) "
                "as finished; the rows are not the ones it was started with, in the same order: "
                "give them as then, pass `fingerprint=` only for the same rows, or start over "
                "without resume"
            )

    def _decide(self, row: Row, lead: str) -> Admitted | Awaitable[Admitted]:
        """A finished row of `lead`: sent again if a row before it sent `lead` again."""
        if self._resent_before(lead, row.number):
            return row  # rows still unresolved cannot undo that
        if not self._waits(row.number):
            return self._skipped(row)
        if row.number in self._tentative:
            self._found[row.number] = lead
        return self._after_earlier(row, lead)

    def _resent_before(self, lead: str, number: int) -> bool:
        first = self._first.get(lead)
        return first is not None and int(first) < number

    def _waits(self, number: int) -> bool:
        """Whether a row before `number` is yet to tell its lead."""
        return bool(self._unresolved) and min(self._unresolved) < number

    async def _after_earlier(self, row: Row, lead: str) -> Admitted:
        """A finished row's decision, once every unresolved row before it is resolved."""
        while self._waits(row.number):
            await self._changed.wait()
        self._forget(row.number)
        return row if self._resent_before(lead, row.number) else self._skipped(row)

    def _forget(self, number: int) -> None:
        self._tentative.discard(number)
        self._found.pop(number, None)

    def _skipped(self, row: Row, unknown: str = "") -> Outcome:
        """`skipped`; `unknown`: why the row's search did not tell its lead, said when a row matched
        by id was sent again before it (it may be of the row's lead: a row matched by another email
        is not, and one by the same email shares its search)."""
        earlier = self._earlier.status_of(row.number) if self._earlier is not None else None
        message = f"finished by an earlier run{f' ({earlier.value})' if earlier else ''}"
        if unknown and self._first_by_id < row.number:
            message += (
                f", and kept: its search did not answer ({unknown}), so whether a row before it "
                "sent again in this run was of its lead is unknown; if one was, the lead holds "
                "that row's value"
            )
        return outcome_of(row, Status.SKIPPED, message)

    def stopped(self, row: Row) -> Outcome | None:
        """A finished row the stop caught before its decision keeps its outcome, unless it was to
        go again behind an earlier row of its lead (module docstring); None: `aborted`."""
        number, item = row.number, row.item
        if number in self._tentative:
            lead = self._found.get(number)
            if lead is not None and self._resent_before(lead, number):
                return None
            return self._skipped(row, "" if lead is not None else "the job stopped first")
        if number in self.finished and not self._email_row(row):
            return None if self._resent_before(item.id, number) else self._skipped(row)
        return None

    def kept(self, row: Row, outcome: Outcome) -> Outcome:
        """A finished row whose search told no lead (`outcome`) keeps its earlier outcome."""
        self._forget(row.number)
        return self._skipped(row, "" if outcome.status.is_final else outcome.message)

    def found(self, row: Row, lead: str | None) -> Admitted | Awaitable[Admitted]:
        """A finished row's search told its lead (None: the row will not be sent anyway)."""
        if lead is None:
            self._forget(row.number)
            return self._skipped(row)
        decided = self._decide(row, lead)
        if isinstance(decided, Row | Outcome):
            self._forget(row.number)
        return decided

    def settle(self, number: int, lead: str | None) -> None:
        """An unresolved row's lead is known (None: it will not be sent, whatever the reason)."""
        self._unresolved.discard(number)
        if lead is not None:
            self._add(lead, number)
        self._changed.set()
        self._changed = asyncio.Event()

    def _add(self, lead: str, number: int) -> None:
        first = self._first.get(lead)
        if first is None or number < int(first):
            self._first.put(lead, str(number))
        self._first_resent = min(self._first_resent, number)

    def close(self) -> None:
        self._first.close()


class _Resolved(Admission, Settles):
    """The rule right after `MatchByEmail`: the rows it resolved, back to `Resume`'s books."""

    def __init__(self, resume: Resume) -> None:
        self._resume = resume

    def admit(self, row: Row) -> Admitted | Awaitable[Admitted]:
        resume, number, item = self._resume, row.number, row.item
        lead = item.id if isinstance(item, LeadUpdate) else None
        if number in resume._tentative:
            return resume.found(row, lead)
        if number in resume._unresolved:
            resume.settle(number, lead)
        return row

    def settled(self, row: Row, outcome: Outcome) -> Outcome:
        """The row was answered before reaching this rule (no lead, a failed search, ...)."""
        resume, number = self._resume, row.number
        if number in resume._tentative:
            return resume.kept(row, outcome)
        if number in resume._unresolved:
            resume.settle(number, None)
        return outcome

    def close(self) -> None:
        """`Resume` closes the books."""

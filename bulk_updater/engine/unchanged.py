"""`skip_unchanged`: a row that would change nothing is `unchanged`, not sent.

`Unchanged` (a rule, after `Resume`) compares what a row sets with what its lead is known to
hold: what the state file remembers, looked up for a whole batch of rows before they are
admitted (`prefetch`), with this run's accepted changes of the lead on top. It decides at
`admit()` when the lead has no earlier row still in the pipeline. Otherwise it decides at
`ready()`, once those rows have finished and their outcomes are recorded. So the comparison is
exact: with `A→x, A→y, A→x`, the third row is compared with `y`.

Write-ahead: before a row's request can go out, the fields it sets are marked unknown in the file
(`StateFile.mark()`, committed at once with the other marks queued: one commit for the rows
admitted meanwhile), and `ready()` lets the row go only once that commit is done. So a run that
ends anyhow (a kill, a stop, a `stream()` left early, a full disk) leaves in the file, for each
lead, the value from before only if no request could have changed it. A mark that cannot be
written stops the job (`StopReason.STATE_UNWRITABLE`): the row is not sent.

`Remember` (a sink) records every outcome. A 2xx adds the row's fields to what the lead is known
to hold and queues them for the file. Any other outcome after a request went out (`failed`,
`aborted`, or `rejected` or `not_found` after an attempt that got no answer) leaves the fields
unknown, in memory too, so the next row that sets them is sent. A row never sent changes nothing.

This run's changes stay in memory until the file has them (`StateFile.committed`) and their lead has
no row in the pipeline, and lookups made before a commit are used only within their batch, so a
change is never lost between memory and file.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final

from ..inputs import Row
from ..models import LeadUpdate, Outcome, Status, StopReason
from ..state import Fields, StateFile, apply, flatten, holds, unknown
from .admission import Admission, Admitted, BeforeSend, Prefetch
from .outcomes import not_sent, outcome_of

UNCHANGED_MESSAGE: Final = "not sent: the lead holds these values (as this tool last set them)"
StopJob = Callable[[StopReason, str], None]


@dataclass(slots=True)
class _Lead:
    """A lead with rows passed on: what the file held when it entered, its rows in order."""

    stored: Fields | None
    rows: collections.deque[int] = field(default_factory=collections.deque)
    waiter: tuple[int, asyncio.Future[None]] | None = None  # a row waiting in `ready()`


class Unchanged(Admission, BeforeSend, Prefetch):
    """The rule of `skip_unchanged`; its `Remember` sink must see every outcome of the run."""

    def __init__(self, store: StateFile) -> None:
        self.store = store
        self._looked_up: dict[str, Fields] = {}  # the current batch's leads, as the file has them
        self._asked: set[str] = set()  # the ids looked up for the current batch
        self._leads: dict[str, _Lead] = {}  # leads with rows passed on, not yet recorded
        self._deferred: set[int] = set()  # rows to decide at `ready()`
        self._wanted: dict[int, Fields] = {}  # what each row passed on sets, flat
        # This run's changes the file may not have yet: lead -> (last sequence number, change).
        self._changes: dict[str, tuple[int, Fields]] = {}
        self._order: collections.deque[tuple[int, str]] = collections.deque()
        self._held: list[str] = []  # committed, but the lead still has rows in the pipeline
        self._marks: dict[int, int] = {}  # row -> the sequence number of its mark in the file
        self._commits: asyncio.Event | None = None  # set at the file's next commit
        self._loop: asyncio.AbstractEventLoop | None = None
        self.stop_job: StopJob | None = None  # how a mark that cannot be written stops the job
        store.on_commit = self._on_commit

    # --- the rule ---------------------------------------------------------------------------

    def prefetch(self, rows: list[Row]) -> None:
        self._forget_committed()  # first: every lookup below sees what was committed so far
        self._asked = {row.item.id for row in rows if isinstance(row.item, LeadUpdate)}
        self._looked_up = self.store.lookup(self._asked)

    def admit(self, row: Row) -> Admitted:
        item = row.item
        if not isinstance(item, LeadUpdate):
            return row
        wanted = flatten(item)
        lead = self._leads.get(item.id)
        if lead is not None:  # an earlier row of the lead is in the pipeline: decide after it
            lead.rows.append(row.number)
            self._deferred.add(row.number)
            self._wanted[row.number] = wanted
            return row
        if item.id not in self._asked:  # an earlier rule gave the row another id
            self._asked.add(item.id)
            self._looked_up.update(self.store.lookup([item.id]))
        stored = self._looked_up.get(item.id)
        if holds(self._known(item.id, stored), wanted):
            return outcome_of(row, Status.UNCHANGED, UNCHANGED_MESSAGE)
        lead = self._leads[item.id] = _Lead(stored)
        lead.rows.append(row.number)
        self._wanted[row.number] = wanted
        self._marks[row.number] = self.store.mark(item.id, wanted)
        return row

    def ready(self, row: Row) -> Admitted | Awaitable[Admitted]:
        if row.number in self._deferred:
            return self._decide(row)
        mark = self._marks.get(row.number, 0)
        return row if mark <= self.store.committed else self._marked(row, mark)

    async def _decide(self, row: Row) -> Admitted:
        """Once every earlier row of the lead is recorded (they have finished already)."""
        item = row.item
        assert isinstance(item, LeadUpdate)
        lead = self._leads[item.id]
        if lead.rows[0] != row.number:
            waiter = asyncio.get_running_loop().create_future()
            lead.waiter = (row.number, waiter)
            try:
                await waiter
            finally:
                lead.waiter = None
        self._deferred.discard(row.number)
        wanted = self._wanted[row.number]
        if holds(self._known(item.id, lead.stored), wanted):
            return outcome_of(row, Status.UNCHANGED, UNCHANGED_MESSAGE)
        self._marks[row.number] = mark = self.store.mark(item.id, wanted)
        return await self._marked(row, mark)

    async def _marked(self, row: Row, mark: int) -> Admitted:
        """The row once the file holds its mark; `aborted`, and the job stopped, if it cannot."""
        if self._commits is None:  # first: a commit from now on wakes this loop
            self._loop = asyncio.get_running_loop()
            self._commits = asyncio.Event()
        store = self.store
        while store.committed < mark:
            if store.problem is not None:
                why = (
                    f"{store.path}: the state file cannot be written ({store.cause}), and a row "
                    "is sent only once it has forgotten the fields the row sets; "
                    "once it can be written, rerun with --resume"
                )
                if self.stop_job is not None:
                    self.stop_job(StopReason.STATE_UNWRITABLE, why)
                return not_sent(row, why)
            await self._commits.wait()
        return row

    def _on_commit(self) -> None:
        """The writer thread committed (or failed to): the rows waiting for it look again."""
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: no one waits
                loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        if self._commits is not None:
            commits, self._commits = self._commits, asyncio.Event()
            commits.set()

    def close(self) -> None:
        pass  # the store is closed by `Remember`, which sees the last outcome

    def _known(self, lead: str, stored: Fields | None) -> Fields | None:
        change = self._changes.get(lead)
        return stored if change is None else apply(stored, change[1])

    # --- outcomes ---------------------------------------------------------------------------

    def record(self, outcome: Outcome, row: Row) -> None:
        """A row's outcome: what it changes of what the lead is known to hold."""
        item = row.item
        lead = self._leads.get(item.id) if isinstance(item, LeadUpdate) else None
        if lead is None or row.number not in lead.rows:
            return  # not passed on by this rule: answered before sending
        assert isinstance(item, LeadUpdate)
        lead.rows.remove(row.number)  # the first, but for rows aborted at a stop
        self._deferred.discard(row.number)
        self._marks.pop(row.number, None)
        wanted = self._wanted.pop(row.number)
        if outcome.status is Status.UPDATED:
            self._note(item.id, wanted)
        elif outcome.attempts:  # sent, and perhaps applied by an attempt that got no answer
            self._note(item.id, unknown(wanted))
        if not lead.rows:
            del self._leads[item.id]
            return
        waiter = lead.waiter
        if waiter is not None and waiter[0] == lead.rows[0] and not waiter[1].done():
            waiter[1].set_result(None)  # its earlier rows are all recorded now

    def _note(self, lead: str, change: Fields) -> None:
        seq = self.store.change(lead, change)
        earlier = self._changes.get(lead)
        self._changes[lead] = (seq, {**earlier[1], **change} if earlier else change)
        self._order.append((seq, lead))

    def _forget_committed(self) -> None:
        """Drop the changes the file has, unless their lead has a row in the pipeline (its
        `stored` predates them)."""
        committed = self.store.committed
        held, self._held = self._held, []
        for lead in held:
            change = self._changes.get(lead)
            if change is not None and change[0] <= committed:
                self._drop(lead)
        while self._order and self._order[0][0] <= committed:
            seq, lead = self._order.popleft()
            change = self._changes.get(lead)
            if change is not None and change[0] == seq:  # else a later change is to come
                self._drop(lead)

    def _drop(self, lead: str) -> None:
        if lead in self._leads:
            self._held.append(lead)
        else:
            del self._changes[lead]


class Remember:
    """The sink of `skip_unchanged`: records outcomes, closes the state file with the counts."""

    def __init__(self, rule: Unchanged) -> None:
        self.rule = rule
        self.counts: collections.Counter[str] = collections.Counter()

    @property
    def what(self) -> str:
        return f"the state file {self.rule.store.path}"

    def write(self, outcome: Outcome, row: Row) -> None:
        self.rule.record(outcome, row)
        counts = self.counts
        counts["rows"] += 1
        if outcome.attempts:
            counts["sent"] += 1
        if outcome.status is Status.UNCHANGED:
            counts["unchanged"] += 1
        elif outcome.status is Status.UPDATED:
            counts["accepted"] += 1

    def flush(self) -> None:
        pass  # the writer thread commits on its own clock, so that writes stay batched

    def close(self) -> None:
        self.rule.store.close(self.counts)

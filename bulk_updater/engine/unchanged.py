"""`skip_unchanged`: a row that would change nothing is `unchanged`, not sent.

`Unchanged` (a rule, after `Resume`) compares what a row sets with what its lead is known to
hold: what the state file remembers, looked up for a whole batch of rows before they are
admitted (`prefetch`), with this run's accepted changes of the lead on top. It decides at
`admit()` when the lead has no earlier row still in the pipeline. Otherwise it decides at
`ready()`, once those rows have finished and their outcomes are recorded. So the comparison is
exact: with `A→x, A→y, A→x`, the third row is compared with `y`.

`Remember` (a sink) records every outcome. A 2xx adds the row's fields to what the lead is known
to hold and queues them for the file. A request that may have been applied without an answer
(`failed` or `aborted` after an attempt) makes the fields it set unknown, so they are sent
again. Nothing else changes anything: `not_found`, `rejected` and `invalid` rows were not
applied.

This run's changes stay in memory until the file has them (`StateFile.committed`) and their lead has
no row in the pipeline, and lookups made before a commit are used only within their batch, so a
change is never lost between memory and file.
"""

from __future__ import annotations

import asyncio
import collections
import os
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

from ..inputs import Row, Rows, Source
from ..models import LeadUpdate, Outcome, Status
from ..settings import Settings
from ..state import Account, Fields, StateFile, apply, flatten, holds, state_path, unknown
from .admission import Admission, Admitted, BeforeSend, Prefetch
from .outcomes import outcome_of

UNCHANGED_MESSAGE: Final = "not sent: the lead holds these values (as this tool last set them)"
_UNCERTAIN: Final = frozenset({Status.FAILED, Status.ABORTED})


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
        return row

    def ready(self, row: Row) -> Admitted | Awaitable[Admitted]:
        if row.number not in self._deferred:
            return row
        return self._decide(row)

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
        if holds(self._known(item.id, lead.stored), self._wanted[row.number]):
            return outcome_of(row, Status.UNCHANGED, UNCHANGED_MESSAGE)
        return row

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
        wanted = self._wanted.pop(row.number)
        if outcome.status is Status.UPDATED:
            self._note(item.id, wanted)
        elif outcome.status in _UNCERTAIN and outcome.attempts:
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


async def open_unchanged(
    settings: Settings, rows: Rows, stopping: asyncio.Event | None = None
) -> Unchanged | None:
    """The rule of a job, its state file opened in a thread: it may wait for another process.

    The file is held for this job until it ends; one of another account is refused. None when
    `stopping` is set first: the thread's wait ends too, and it has let go of the file on return.
    """
    path = state_path(settings)
    opening = _Opening(asyncio.get_running_loop())

    def open_store() -> StateFile:
        store = StateFile(path, account=Account.of(settings), stop=opening.stop)
        try:
            store.begin(input_name(rows))
        except BaseException:
            store.close()
            raise
        return store

    # A thread of its own, not the loop's executor: a loop closing while the thread waits for
    # another process's lock neither waits for it nor leaves the file held.
    threading.Thread(
        target=opening.run, args=(open_store,), name="bulk-updater-state-open", daemon=True
    ).start()
    stopped = asyncio.ensure_future(stopping.wait()) if stopping is not None else None
    try:
        waits: list[asyncio.Future[Any]] = (
            [opening.done] if stopped is None else [opening.done, stopped]
        )
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        opening.abandon()
        raise
    finally:
        if stopped is not None:
            stopped.cancel()
    if not opening.done.done():
        opening.abandon()
        # Soon: the stop ended its wait. Then the next job finds the file free. Shielded, so that
        # a cancel here leaves `ended` for the thread to set.
        await asyncio.shield(opening.ended)
        return None
    return Unchanged(opening.done.result())


class _Opening:
    """A state file opened in a thread, for a loop that may give up on it (a cancel, a stop, or
    the loop's end): then the thread's wait for another process's lock ends (`stop`), and the
    thread closes the file itself if it has it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.done: asyncio.Future[StateFile] = loop.create_future()
        self.ended: asyncio.Future[None] = loop.create_future()  # the thread holds nothing now
        self.stop = threading.Event()
        self._loop = loop
        self._lock = threading.Lock()
        self._abandoned = False
        self._store: StateFile | None = None  # opened, not yet handed to the loop

    def run(self, open_store: Callable[[], StateFile]) -> None:
        try:
            self._open(open_store)
        finally:
            self._hand(self._end, None)

    def _open(self, open_store: Callable[[], StateFile]) -> None:
        try:
            store = open_store()
        except BaseException as exc:  # the loop's to raise, if it still waits
            self._hand(self._fail, exc)
            return
        with self._lock:
            if not self._abandoned:
                self._store = store
                if self._hand(self._give, store):
                    return
            self._store = None
        store.close()

    def _hand(self, deliver: Callable[[Any], None], value: object) -> bool:
        try:
            self._loop.call_soon_threadsafe(deliver, value)
        except RuntimeError:  # the loop is closed: no one waits
            return False
        return True

    def _give(self, store: StateFile) -> None:
        with self._lock:  # abandoned: `abandon()` took the store and closed it
            if not self._abandoned:
                self._store = None
                self.done.set_result(store)

    def _fail(self, exc: BaseException) -> None:
        if not self._abandoned:
            self.done.set_exception(exc)

    def _end(self, _: None) -> None:
        self.ended.set_result(None)

    def abandon(self) -> None:
        """No job wants the file any more: closed now if it is open, else by the thread."""
        self.stop.set()
        with self._lock:
            self._abandoned = True
            store, self._store = self._store, None
        if self.done.done() and not self.done.cancelled() and self.done.exception() is None:
            store = self.done.result()
        if store is not None:
            store.close()


def input_name(rows: Rows) -> str:
    """What the state file says a run read: an absolute path, traceable from anywhere."""
    if not isinstance(rows, Source):
        return "(rows from the library)"
    return rows.name if rows.is_stdin else os.path.abspath(rows.path)

"""The pipeline of one job: rows stream in, workers send them, outcomes stream out.

    rows ─> feeder ─> queue ─> workers (Deliverer: limiter → PATCH → classify → retry) ─> results
            (admission,       (`concurrency` of them;          (consumed by `outcomes()`)
             per-lead chains,  a worker finishes one lead's
             the window)       chain of rows before the next)

Memory stays flat: the feeder admits a row only when the window of rows read but not yet consumed
has room, so neither the queue, nor the per-lead chains, nor the results grow with the input.
The pipeline takes room in the window when it reads a row and gives it back when `outcomes()`
hands that row's outcome on.

Rows for one lead id are never in flight together: while a lead has a row in the pipeline, later
rows for it wait in that lead's chain, and the worker that finishes one row takes the next of the
chain. So they go out in input order and the last row wins.

Stopping: `stop()` (a signal), a refused key or an API that looks down stop the limiter, so no new
attempt starts; rows waiting in the pipeline end `aborted` at once, requests in flight get `grace`
seconds to finish, then are cancelled and end `aborted` too. After a refused key or an outage the
feeder reads the rest of the input and reports every row `aborted`; after an interrupt it stops
reading.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Final

from ..client import Sender
from ..deliver import Deliverer
from ..inputs import Invalid, Numbered, Row
from ..limits import Limiter
from ..models import LeadUpdate, Outcome, StopReason
from ..retry import Counters, RetryPolicy, RowAttempts
from ..settings import Settings
from .admission import Admitted, Rules
from .chains import Chains
from .ordered import InOrder, discard, lead_key
from .outcomes import Finished, answered, not_sent, sent, unanswered, unknown
from .results import Results
from .window import Window

_WINDOW_PER_WORKER: Final = 4
_MIN_WINDOW: Final = 256


def _failure(*tasks: asyncio.Task[None]) -> BaseException | None:
    """The exception a finished task ended with (a bug in a worker, a failing input), if any."""
    for task in tasks:
        if task.done() and not task.cancelled() and (exc := task.exception()) is not None:
            return exc
    return None


class Pipeline:
    """One pass over one input: feeder, per-lead chains, workers and the shutdown of all three."""

    def __init__(
        self,
        settings: Settings,
        sender: Sender,
        limiter: Limiter,
        admission: Rules | None = None,
        hide: Callable[[str], str] = str,
    ) -> None:
        """`hide` takes the job's secrets out of a message that did not come from a server."""
        self.settings = settings
        self.hide = hide
        self.limiter = limiter
        self.use(admission)
        policy = RetryPolicy(settings)
        self.deliverer = Deliverer(
            sender, limiter, policy, self.stop, settings.in_flight_cap, self._in_tail
        )
        self.send = sender.send
        self.chains = Chains()
        self.queue = self.chains.queue
        self.results: Results[Finished | None] = Results()
        self._window = Window(max(_MIN_WINDOW, settings.in_flight_cap * _WINDOW_PER_WORKER))
        self.in_flight: dict[int, tuple[Row, RowAttempts]] = {}
        self.stop_reason: StopReason | None = None
        self.stop_message: str | None = None
        self.read_all = False  # the feeder reached the end of the input
        self.stopping = asyncio.Event()
        self.interrupted = asyncio.Event()  # stop reading, even while draining after a stop
        self.task: asyncio.Task[None] | None = None
        self.crashed: Row | None = None  # the row whose sending raised what stopped the job
        self.in_order = InOrder(self._settle)  # rows whose admission takes time (a search)

    def _in_tail(self) -> bool:
        """Every row is read and none waits for a worker (nor for its admission)."""
        return self.read_all and self.queue.empty() and not self.in_order.pending

    def use(self, admission: Rules | None) -> None:
        """The per-row rules (they may need the pipeline's `deliverer`, so they come after)."""
        self.admission = admission
        self.before_send = admission if admission is not None and admission.checks else None

    @property
    def counters(self) -> Counters:
        return self.deliverer.counters

    def stop(self, reason: StopReason, message: str) -> None:
        if reason is StopReason.INTERRUPTED:
            self.interrupted.set()
        if self.stop_reason is None:
            self.stop_reason = reason
            self.stop_message = message
            self.limiter.stop()
            self.stopping.set()

    def emit(self, outcome: Outcome, row: Row) -> None:
        self.results.put((outcome, row))

    def _abort(self, row: Row) -> None:
        self.emit(not_sent(row, self.stop_message), row)

    async def outcomes(self, items: Numbered) -> AsyncGenerator[Finished, None]:
        """Run the job, yielding each row's outcome (with the row) as it finishes."""
        task = self._start(items)
        try:
            while (finished := await self.results.get()) is not None:
                self._window.give_back()
                yield finished
            await self._finish(task)
        finally:
            await self._cancel(task)

    async def consume(
        self,
        items: Numbered,
        take: Callable[[Outcome, Row], Awaitable[None] | None],
        idle: Callable[[], None],
    ) -> None:
        """Run the job, handing each outcome to `take` as it finishes, and calling `idle()`
        whenever no further outcome is at hand. What `outcomes()` does, without a generator's
        hop per row (the path `run()` takes)."""
        task = self._start(items)
        results, window = self.results, self._window
        empty = results.empty
        try:
            while (finished := results.take() if not empty() else await results.get()) is not None:
                window.give_back()
                pending = take(*finished)
                if pending is not None:
                    await pending
                if empty():
                    idle()
            await self._finish(task)
        finally:
            await self._cancel(task)

    def _start(self, items: Numbered) -> asyncio.Task[None]:
        self.limiter.begin()
        if self.stop_reason is not None:  # stopped before it started: no attempt either
            self.limiter.stop()
        self.task = asyncio.create_task(self._run(items))
        return self.task

    async def _finish(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():  # only the updater's close cancels it, under a running stream
            raise RuntimeError("the BulkUpdater was closed while this stream was running")
        await task

    async def _cancel(self, task: asyncio.Task[None]) -> None:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self, items: Numbered) -> None:
        workers = [asyncio.create_task(self._worker(n)) for n in range(self.settings.in_flight_cap)]
        feeder = asyncio.create_task(self._feed(items))
        ordered = asyncio.create_task(self.in_order.run())
        workers.append(ordered)  # like a worker: a bug in it stops the job, and it ends with them
        idle = asyncio.create_task(self._idle(feeder))
        stopping = asyncio.create_task(self.stopping.wait())
        try:
            await asyncio.wait((idle, stopping, *workers), return_when=asyncio.FIRST_COMPLETED)
            crash = _failure(*workers)  # a bug: the rows it held cannot finish, so no grace
            failure = crash or _failure(feeder)
            if failure is not None:  # rows already read still get their outcomes first
                self.stop(StopReason.INTERRUPTED, f"the job failed: {self.hide(repr(failure))}")
            if self.stop_reason is not None:
                await self._wind_down(feeder, workers, 0 if crash else self.settings.grace)
                failure = failure or _failure(*workers) or _failure(feeder)
            if failure is not None:
                raise failure
            if self.stop_reason is None:
                await idle
        finally:
            tasks = (*workers, feeder, idle, stopping)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.results.put(None)

    async def _idle(self, feeder: asyncio.Task[None]) -> None:
        await feeder
        await self.in_order.drained.wait()
        await self.queue.join()

    async def _wind_down(
        self, feeder: asyncio.Task[None], workers: list[asyncio.Task[None]], grace: float
    ) -> None:
        """After a stop: requests in flight get `grace` seconds, then end `aborted`.

        An interrupt stops reading at once; after a refused key or an outage the feeder reads the
        rest of the input and reports it `aborted`, until it ends or an interrupt comes.
        """
        join = asyncio.create_task(self.queue.join())
        done, _ = await asyncio.wait((join,), timeout=grace) if grace else (set(), set())
        if not done:
            join.cancel()
            for task in workers:
                task.cancel()
            await asyncio.gather(join, *workers, return_exceptions=True)
        self._abort_leftovers()  # empty unless workers were cancelled or one died
        for row, decided in self.in_order.cancel():
            if isinstance(decided, Outcome):
                self.emit(decided, row)
            elif decided is None:
                self._cut_short(row)
            else:
                self._abort(row)
        if not self.interrupted.is_set():
            interrupted = asyncio.create_task(self.interrupted.wait())
            await asyncio.wait((feeder, interrupted), return_when=asyncio.FIRST_COMPLETED)
            interrupted.cancel()
        if not feeder.done():
            feeder.cancel()  # it may be waiting on a pipe; nothing it holds is read yet
        await asyncio.gather(feeder, return_exceptions=True)

    def _cut_short(self, row: Row) -> None:
        """A row whose admission a stop cut short: `aborted`, unless a rule knows its outcome."""
        kept = self.admission.stopped(row) if self.admission is not None else None
        if kept is not None:
            self.emit(kept, row)
        else:
            self._abort(row)

    def _abort_leftovers(self) -> None:
        """Outcomes for the rows the cancelled workers held, and the rows waiting for them."""
        grace, why = self.settings.grace, self.stop_message
        for row, tries in self.in_flight.values():
            tried = tries.attempts
            if row is self.crashed:
                self.emit(unknown(row, tried, why), row)
            else:
                self.emit(unanswered(row, tried, grace, why) if tried else not_sent(row, why), row)
        self.in_flight.clear()
        for row in self.chains.clear():
            self._abort(row)

    async def _feed(self, items: Numbered) -> None:
        """Admit rows while the window has room: each row read gets an outcome, none is lost."""
        admission, window, rows = self.admission, self._window, items.rows
        pending = self.in_order.pending  # rows waiting for their admission, in input order
        try:
            while True:
                while not window.take():  # room first, then read: a stop never strands a row
                    await window.wait()
                if self.interrupted.is_set():
                    for row in items.ready():  # read from a pipe, not yet taken
                        self._abort(row)
                    return
                try:
                    row = await anext(rows)
                except StopAsyncIteration:
                    self.read_all = True
                    return
                admitted = admission.admit(row) if admission is not None else row
                if type(admitted) is Row and not pending:
                    item = admitted.item
                    if type(item) is LeadUpdate and self.stop_reason is None:
                        self.chains.add(admitted, lead_key(item.id))  # the usual row: to its lead
                    else:
                        self._route(admitted)
                    continue
                if isinstance(admitted, (Row, Outcome)) and not pending:  # decided
                    self._settle(row, admitted)
                elif isinstance(admitted, (Row, Outcome)):
                    self.in_order.add(row, admitted)  # it waits for the rows before it
                elif self.stop_reason is not None:  # no search starts once the job stops
                    discard(admitted)
                    self._cut_short(row)
                else:
                    self.in_order.add(row, admitted)
        finally:
            await items.aclose()

    def _settle(self, row: Row, admitted: Admitted) -> None:
        if isinstance(admitted, Outcome):
            self.emit(admitted, row)
        else:
            self._route(admitted)

    def _route(self, row: Row) -> None:
        item = row.item
        if isinstance(item, Invalid):
            self.emit(answered(row, item), row)
        elif self.stop_reason is not None:
            self._abort(row)
        else:
            assert isinstance(item, LeadUpdate)  # rows keyed by email are resolved by a rule
            self.chains.add(row, lead_key(item.id))

    async def _worker(self, slot: int) -> None:
        deliverer, send, in_flight, emit = self.deliverer, self.send, self.in_flight, self.emit
        chains, put = self.chains, self.results.put  # `emit`, without its call
        while True:
            row = await self.queue.get()
            try:
                lead = lead_key(row.item.id)
                while True:
                    ready: Admitted = row
                    if self.before_send is not None:  # a rule that looks once the lead is free
                        ready = await self._ready(slot, row)
                    if isinstance(ready, Outcome):
                        emit(ready, row)
                    else:  # the hot path: no call or coroutine it can do without
                        update = ready.item
                        assert isinstance(update, LeadUpdate)
                        tries = deliverer.row_attempts()
                        in_flight[slot] = (ready, tries)
                        try:
                            result = await deliverer.deliver(send, (update,), tries)
                        except Exception:
                            self.crashed = ready  # it may have failed before it was sent
                            raise
                        del in_flight[slot]
                        put((sent(ready, update, result, self.stop_message), ready))
                    if (after := chains.next(lead)) is None:
                        break
                    row = after
            finally:
                self.queue.task_done()

    async def _ready(self, slot: int, row: Row) -> Admitted:
        """`before_send` for one row, which counts as in flight meanwhile (a stop reports it)."""
        assert self.before_send is not None
        self.in_flight[slot] = (row, self.deliverer.row_attempts())
        ready = self.before_send.ready(row)
        if inspect.isawaitable(ready):
            ready = await ready  # cancelled: left in flight, so that the wind-down reports it
        del self.in_flight[slot]
        return ready

"""`BulkUpdater`: the job. Rows stream in, workers send them, outcomes stream out.

    rows ─> feeder ─> queue ─> workers (Deliverer: pace → PATCH → classify → retry) ─> results
            (numbers rows,     (`concurrency` of them;         (consumer of `stream()`,
             per-lead chains,   a worker finishes one lead's    e.g. `run()` writing the report)
             pending window)    chain of rows before the next)

Memory stays flat: the feeder admits a row only when the window of rows read-but-not-yet-consumed
has room, so neither the queue, nor the per-lead chains, nor the results grow with the input.

Rows for one lead id are never in flight together: while a lead has a row in the pipeline, later
rows for it wait in that lead's chain, and the worker that finishes one row takes the next of the
chain. So they go out in input order and the last row wins.

Stopping: `stop()` (a signal), a refused key or an API that looks down stop the pacer, so no new
attempt starts; rows waiting in the pipeline end `aborted` at once, requests in flight get `grace`
seconds to finish, then are cancelled and end `aborted` too. After a refused key or an outage the
feeder reads the rest of the input and reports every row `aborted`; after an interrupt it stops
reading.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import math
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Container
from os import PathLike
from types import TracebackType
from typing import Final

from .client import Sender, SendKitClient
from .errors import ConfigError
from .models import LeadUpdate, Outcome, Status, StopReason, Summary
from .pacing import Pacer
from .report import FinishedRows, ReportWriter
from .retry import Budget, Counters, Deliverer, RetryPolicy
from .settings import DEFAULT_BASE_URL, Settings
from .sources import Invalid, RowItem, Rows, Source, numbered

_WINDOW_PER_WORKER: Final = 4
_MIN_WINDOW: Final = 256

Work = tuple[int, LeadUpdate]


def _outcome(
    row: int,
    update: LeadUpdate | Invalid,
    status: Status,
    message: str,
    attempts: int = 0,
) -> Outcome:
    return Outcome.trusted(
        row=row,
        id=update.id,
        status=status,
        http_status=None,
        error_code=None,
        message=message,
        attempts=attempts,
        duration_ms=None,
        email=update.email,
    )


class _LeadBits:
    """A set of lead ids as bits of a fixed table (4 MB), so memory stays flat on resume.

    A false positive only sends a finished row again, and every later row of its lead after it
    (a PATCH with the same body is idempotent), so the last row still wins.
    """

    def __init__(self, bits: int = 1 << 25) -> None:
        self._table = bytearray(bits // 8)
        self._mask = bits - 1

    def add(self, lead_id: str) -> None:
        slot = hash(lead_id) & self._mask
        self._table[slot >> 3] |= 1 << (slot & 7)

    def __contains__(self, lead_id: object) -> bool:
        slot = hash(lead_id) & self._mask
        return bool(self._table[slot >> 3] & (1 << (slot & 7)))


def _failure(*tasks: asyncio.Task[None]) -> BaseException | None:
    """The exception a finished task ended with (a bug in a worker, a failing input), if any."""
    for task in tasks:
        if task.done() and not task.cancelled() and (exc := task.exception()) is not None:
            return exc
    return None


class _Job:
    """One pass over one input: feeder, workers and the shutdown of both."""

    def __init__(self, settings: Settings, sender: Sender, skip: Container[int] | None) -> None:
        self.settings = settings
        self.skip = skip
        self.pacer = Pacer(settings.rate)
        policy = RetryPolicy(
            max_attempts=settings.max_attempts,
            backoff_base=settings.backoff_base,
            backoff_max=settings.backoff_max,
            max_pause=settings.max_pause,
            streak_limit=settings.streak_limit,
        )
        self.deliverer = Deliverer(sender, self.pacer, policy, self.stop)
        self.queue: asyncio.Queue[Work] = asyncio.Queue()
        self.results: asyncio.Queue[Outcome | None] = asyncio.Queue()
        self.window = asyncio.Semaphore(max(_MIN_WINDOW, settings.concurrency * _WINDOW_PER_WORKER))
        # lead id -> rows waiting behind the one in the pipeline (None: no row waiting yet)
        self.chains: dict[str, collections.deque[Work] | None] = {}
        self.in_flight: dict[int, tuple[int, LeadUpdate, Budget]] = {}
        self.stop_reason: StopReason | None = None
        self.stop_message: str | None = None
        self.stopping = asyncio.Event()
        self.interrupted = asyncio.Event()  # stop reading, even while draining after a stop

    @property
    def counters(self) -> Counters:
        return self.deliverer.counters

    def stop(self, reason: StopReason, message: str) -> None:
        if reason is StopReason.INTERRUPTED:
            self.interrupted.set()
        if self.stop_reason is None:
            self.stop_reason = reason
            self.stop_message = message
            self.pacer.stop()
            self.stopping.set()

    def emit(self, outcome: Outcome) -> None:
        self.results.put_nowait(outcome)

    def _abort(self, row: int, item: LeadUpdate | Invalid) -> None:
        self.emit(_outcome(row, item, Status.ABORTED, f"not sent: {self.stop_message}"))

    async def run(self, items: AsyncIterator[RowItem]) -> None:
        workers = [asyncio.create_task(self._worker(n)) for n in range(self.settings.concurrency)]
        feeder = asyncio.create_task(self._feed(items))
        idle = asyncio.create_task(self._idle(feeder))
        stopping = asyncio.create_task(self.stopping.wait())
        try:
            await asyncio.wait((idle, stopping, *workers), return_when=asyncio.FIRST_COMPLETED)
            crash = _failure(*workers)  # a bug: the rows it held cannot finish, so no grace
            failure = crash or _failure(feeder)
            if failure is not None:  # rows already read still get their outcomes first
                self.stop(StopReason.INTERRUPTED, f"the job failed: {failure!r}")
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
            self.results.put_nowait(None)

    async def _idle(self, feeder: asyncio.Task[None]) -> None:
        await feeder
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
        if not self.interrupted.is_set():
            interrupted = asyncio.create_task(self.interrupted.wait())
            await asyncio.wait((feeder, interrupted), return_when=asyncio.FIRST_COMPLETED)
            interrupted.cancel()
        if not feeder.done():
            feeder.cancel()  # it may be waiting on a pipe; nothing it holds is read yet
        await asyncio.gather(feeder, return_exceptions=True)

    def _abort_leftovers(self) -> None:
        """Outcomes for the rows the cancelled workers held, and the rows waiting for them."""
        for row, update, budget in self.in_flight.values():
            if not budget.attempts:
                self._abort(row, update)
                continue
            message = (
                f"sent, but no answer within the {self.settings.grace:g}s grace period "
                f"(the lead may be updated): {self.stop_message}"
            )
            self.emit(_outcome(row, update, Status.ABORTED, message, attempts=budget.attempts))
        self.in_flight.clear()
        for chain in self.chains.values():
            for row, update in chain or ():
                self._abort(row, update)
        self.chains.clear()
        while not self.queue.empty():
            row, update = self.queue.get_nowait()
            self._abort(row, update)
            self.queue.task_done()

    async def _feed(self, items: AsyncIterator[RowItem]) -> None:
        """Admit rows while the window has room: each row read gets an outcome, none is lost."""
        skip: Container[int] = self.skip or ()
        horizon = skip.horizon if isinstance(skip, FinishedRows) else math.inf
        resent = _LeadBits() if self.skip is not None else None  # leads re-sent: later rows follow
        window = self.window
        try:
            while True:
                await window.acquire()  # room first, then read: a stop never strands a read row
                if self.interrupted.is_set():
                    return
                try:
                    row, item = await anext(items)
                except StopAsyncIteration:
                    return
                if resent is not None and row in skip and item.id not in resent:
                    earlier = skip.status_of(row) if isinstance(skip, FinishedRows) else None
                    what = f" ({earlier.value})" if earlier else ""
                    self.emit(
                        _outcome(row, item, Status.SKIPPED, f"finished by an earlier run{what}")
                    )
                elif isinstance(item, Invalid):
                    self.emit(_outcome(row, item, Status.INVALID, item.message))
                elif self.stop_reason is not None:
                    self._abort(row, item)
                else:
                    if resent is not None and row <= horizon:
                        # Sent again after an earlier run: later rows for the same lead that
                        # that run finished must follow, or an older value would win.
                        resent.add(item.id)
                    self._dispatch(row, item)
        finally:
            aclose = getattr(items, "aclose", None)
            if aclose is not None:
                await aclose()

    def _dispatch(self, row: int, update: LeadUpdate) -> None:
        """Queue the row, or chain it behind the row of the same lead already in the pipeline."""
        chains = self.chains
        if update.id not in chains:
            chains[update.id] = None
            self.queue.put_nowait((row, update))
        elif (chain := chains[update.id]) is not None:
            chain.append((row, update))
        else:
            chains[update.id] = collections.deque(((row, update),))

    async def _worker(self, slot: int) -> None:
        loop = asyncio.get_running_loop()
        deliverer = self.deliverer
        while True:
            row, update = await self.queue.get()
            try:
                while True:
                    budget = deliverer.budget()
                    self.in_flight[slot] = (row, update, budget)
                    started = loop.time()
                    result = await deliverer.deliver(update, budget)
                    del self.in_flight[slot]
                    message = result.message
                    if result.status is Status.ABORTED and self.stop_message:
                        message = (
                            f"{message}: {self.stop_message}" if message else self.stop_message
                        )
                    self.emit(
                        Outcome.trusted(
                            row=row,
                            id=update.id,
                            status=result.status,
                            http_status=result.http_status,
                            error_code=result.error_code,
                            message=message,
                            attempts=result.attempts,
                            duration_ms=int((loop.time() - started) * 1000),
                            email=update.email,
                        )
                    )
                    chain = self.chains[update.id]
                    if chain is None or not chain:
                        del self.chains[update.id]
                        break
                    row, update = chain.popleft()
            finally:
                self.queue.task_done()


class BulkUpdater:
    """Sends one PATCH /v1/leads/{id} per row through a paced pool of workers with retries.

    Use it as an async context manager; settings are keyword-only and checked here:

    - `api_key`: the SendKit key (sent as `X-Api-Key`, never logged).
    - `rate`: at most this many request starts in any one-second window, retries included;
      0 removes the limit. `concurrency`: requests in flight at most.
    - `max_attempts`: attempts per row for transient failures (429s do not count).
    - `timeout`: seconds per request. `base_url`: https, or plain http on loopback only.
    - `workspace_id`: sent as `X-Workspace-Id`, needed with platform keys (`sk_user_...`).
    - `backoff_base` / `backoff_max`: retry backoff; `max_pause`: cap on a 429 pause.
    - `streak_limit`: consecutive transient failures after which the job stops (API down).
    - `grace`: seconds requests in flight may take to finish once the job stops.
    - `sender`: send through this object instead of HTTP (tests, dry runs).
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        rate: float = 10.0,
        concurrency: int = 8,
        max_attempts: int = 5,
        timeout: float = 30.0,
        workspace_id: str | None = None,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        max_pause: float = 120.0,
        streak_limit: int = 50,
        grace: float = 5.0,
        sender: Sender | None = None,
    ) -> None:
        self.settings = Settings.build(
            api_key=api_key or None,
            base_url=base_url,
            rate=rate,
            concurrency=concurrency,
            max_attempts=max_attempts,
            timeout=timeout,
            workspace_id=workspace_id,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            max_pause=max_pause,
            streak_limit=streak_limit,
            grace=grace,
        )
        if sender is None and not api_key:
            raise ConfigError("no API key: set SENDKIT_API_KEY or pass api_key=")
        self._sender = sender
        self._client: SendKitClient | None = None
        self._job: _Job | None = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> BulkUpdater:
        if self._sender is None:
            s = self.settings
            self._client = SendKitClient(
                api_key=s.api_key.get_secret_value() if s.api_key else "",
                base_url=s.base_url,
                timeout=s.timeout,
                concurrency=s.concurrency,
                workspace_id=s.workspace_id,
            )
            await self._client.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():  # a stream() left unfinished: end its job
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self._job = None
        if self._client is not None:
            await self._client.__aexit__(exc_type, exc, tb)
            self._client = None

    def __repr__(self) -> str:  # never show the key
        s = self.settings
        return f"BulkUpdater(base_url={s.base_url!r}, rate={s.rate}, concurrency={s.concurrency})"

    def stop(self, message: str = "interrupted") -> None:
        """Stop the running job as an interrupt: stop reading, let requests in flight finish."""
        if self._job is not None:
            self._job.stop(StopReason.INTERRUPTED, message)

    async def stream(
        self, rows: Rows, *, skip: Container[int] | None = None
    ) -> AsyncIterator[Outcome]:
        """Send every row; yield each row's `Outcome` as it finishes (not in input order).

        `rows` is a `Source`, or any iterable or async iterable of dicts or `LeadUpdate`s;
        rows whose number is in `skip` are yielded as `skipped` without being sent. To leave
        early, close the stream (`contextlib.aclosing`); leaving the `async with` block also
        ends a job still running.
        """
        job = self._new_job(skip)
        async with contextlib.aclosing(self._outcomes(job, rows)) as outcomes:
            async for outcome in outcomes:
                yield outcome

    def _ready_sender(self) -> Sender:
        sender = self._sender or self._client
        if sender is None:
            raise RuntimeError("BulkUpdater is not open; use `async with BulkUpdater(...)`")
        if self._job is not None:
            raise RuntimeError(
                "a job is already running on this BulkUpdater; finish or close its stream() "
                "(contextlib.aclosing) first"
            )
        return sender

    def _new_job(self, skip: Container[int] | None) -> _Job:
        self._job = _Job(self.settings, self._ready_sender(), skip)
        return self._job

    async def _outcomes(self, job: _Job, rows: Rows) -> AsyncGenerator[Outcome, None]:
        task = self._task = asyncio.create_task(job.run(numbered(rows)))
        try:
            while (outcome := await job.results.get()) is not None:
                job.window.release()
                yield outcome
            if task.cancelled():  # only __aexit__ cancels it: the updater closed under the stream
                raise RuntimeError("the BulkUpdater was closed while this stream was running")
            await task
        finally:
            self._job = self._task = None
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            if isinstance(rows, Source):
                rows.close()

    async def run(
        self,
        rows: Rows,
        *,
        report: str | PathLike[str] | None = None,
        resume: bool = False,
        fingerprint: str | None = None,
        on_outcome: Callable[[Outcome], None] | None = None,
    ) -> Summary:
        """Send every row, write the report (if given), return the `Summary`.

        With `resume=True` an existing report is continued: rows it holds as final are skipped
        (unless an earlier row of the same lead has to be sent again). `fingerprint` identifies
        the input (a `Source` file's sha256 by default); resuming with another one is refused.
        """
        try:
            self._ready_sender()  # before the report is touched
            if isinstance(rows, Source) and fingerprint is None:
                fingerprint = rows.fingerprint()
                if resume and fingerprint is None:
                    raise ConfigError(f"{rows.name}: resuming needs an input file read again")
            writer = (
                ReportWriter(report, resume=resume, fingerprint=fingerprint) if report else None
            )
        except BaseException:
            if isinstance(rows, Source):
                rows.close()
            raise
        counts = dict.fromkeys(Status, 0)
        earlier = dict.fromkeys(Status, 0)
        started = time.monotonic()
        try:
            skip = writer.finished if writer is not None and writer.resumed else None
            job = self._new_job(skip)
            async with contextlib.aclosing(self._outcomes(job, rows)) as outcomes:
                async for outcome in outcomes:
                    counts[outcome.status] += 1
                    if outcome.status is Status.SKIPPED and skip is not None:
                        was = skip.status_of(outcome.row)
                        earlier[was or Status.SKIPPED] += 1
                    if writer is not None:
                        if outcome.status is not Status.SKIPPED:
                            writer.write(outcome)
                        if job.results.empty():  # about to wait: push what is written to disk
                            writer.flush()
                    if on_outcome is not None:
                        on_outcome(outcome)
        finally:
            if writer is not None:
                writer.close()
        duration = time.monotonic() - started
        counters = job.counters
        return Summary(
            counts=counts,
            rows=sum(counts.values()),
            requests=counters.requests,
            retries=counters.retries,
            rate_limited=counters.rate_limited,
            duration_s=round(duration, 3),
            achieved_rate=round(counters.requests / duration, 2) if duration > 0 else 0.0,
            stopped=job.stop_reason,
            stop_message=job.stop_message,
            report=str(writer.path) if writer is not None else None,
            earlier={status: n for status, n in earlier.items() if n},
        )

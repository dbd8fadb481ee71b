"""`BulkUpdater`: the library's entry point, an async context manager around one HTTP session.

It turns settings into a job: a `Pipeline` fed by the rows, paced by a `Limiter`, its outcomes
streamed to the caller (`stream()`) or consumed by sinks (`run()`: tally, report, callback).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Callable, Container, Mapping
from os import PathLike
from pathlib import Path
from types import TracebackType
from typing import TypeVar, Unpack

from ..answers import Redactor
from ..client import Sender, SendKitClient
from ..errors import ConfigError
from ..inputs import Rows, check_rows
from ..limits import Lifecycle, Limiter, departure_hook, limiter_for
from ..models import Outcome, StopReason, Summary
from ..report import RejectsWriter, ReportWriter
from ..setting_keywords import Options
from ..settings import Settings
from ..state import state_path
from ..state.paths import Account
from ..urls import scrub
from .admission import Admission, Rules
from .emails import MatchByEmail
from .feed import close_input, hold_input_file, ids_from, keys_of, numbered_rows
from .limit import FirstRows
from .pipeline import Pipeline
from .resume import Resume
from .sink import (
    Callback,
    OnOutcome,
    RejectsSink,
    ReportSink,
    Sink,
    Tally,
    claim_report,
    closed_with,
    finished_rows,
    handlers,
    open_rejects,
    reworded,
)
from .state_opening import open_unchanged
from .stream import OutcomeStream, Streams
from .summarize import rate_of, summarize
from .unchanged import Remember, Unchanged

_S = TypeVar("_S", bound=Sink)
log = logging.getLogger("bulk_updater")


class BulkUpdater:
    """Sends one PATCH /v1/leads/{id} per row through a paced pool of workers with retries.

    Use it as an async context manager. Settings are keyword-only (see `Settings` for each one's
    meaning and default) or a whole `settings=`, with keywords on top; they are checked here.
    `api_key`, `base_url` and `workspace_id` default to `SENDKIT_API_KEY`, `SENDKIT_BASE_URL`
    and `SENDKIT_WORKSPACE_ID`. `sender` replaces HTTP (tests, dry runs); `limiter` replaces the
    limiter the settings call for (the fixed-rate `Pacer`, or with `redis_url` the budget shared
    through Redis); it is opened on entering the block and closed on leaving it.
    """

    def __init__(
        self,
        *,
        settings: Settings | None = None,
        sender: Sender | None = None,
        limiter: Limiter | None = None,
        **options: Unpack[Options],
    ) -> None:
        self.settings = Settings.build(settings, **options)
        if sender is None and self.settings.api_key is None:
            raise ConfigError("no API key: set SENDKIT_API_KEY or pass api_key=")
        s = self.settings
        if s.skip_unchanged and s.state is None and s.api_key is None:
            raise ConfigError("skip_unchanged: without an API key to name the account, pass state=")
        self._sender = sender
        # Chosen here, so that a limiter that cannot be had (a missing extra) fails at once.
        self._limiter = limiter or limiter_for(self.settings)
        self._client: SendKitClient | None = None
        self._opened = contextlib.AsyncExitStack()  # what `__aenter__` opened: limiter, client
        self._pipeline: Pipeline | None = None
        self._streams = Streams()
        self._stop_asked: str | None = None  # `stop()` before the job's pipeline exists
        self._stopping: asyncio.Event | None = None  # set by `stop()` while a setup waits
        self._state_waits: Callable[[], None] | None = None  # ends the job's state file's waits

    async def __aenter__(self) -> BulkUpdater:
        async with contextlib.AsyncExitStack() as stack:
            # The limiter first: a shared budget that cannot be reached is an error before any
            # request (and before any report is opened).
            limiter: Lifecycle = self._limiter
            stack.push_async_callback(limiter.close)  # first: an open cut short closes too
            await limiter.open()
            if self._sender is None:
                on_departure = departure_hook(self._limiter)
                client = SendKitClient.for_settings(self.settings, on_departure)
                self._client = await stack.enter_async_context(client)
            self._opened = stack.pop_all()  # closed in `__aexit__`, the client first
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self._streams.close()  # every stream's job, held or dropped, ended as it should
            pipeline, self._pipeline = self._pipeline, None
            task = pipeline.task if pipeline is not None else None
            if task is not None and not task.done():  # a stream read in another task: end it
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        finally:  # even when cancelled meanwhile: the limiter and the client are closed
            self._stop_asked = None
            opened, self._opened = self._opened, contextlib.AsyncExitStack()
            self._client = None
            await opened.__aexit__(exc_type, exc, tb)

    def __repr__(self) -> str:  # never show the key
        s = self.settings
        concurrency = "auto" if s.concurrency is None else s.concurrency
        return f"BulkUpdater(base_url={s.base_url!r}, rate={s.rate}, concurrency={concurrency})"

    def rate_now(self) -> str | None:
        """What the running job's limiter allows now (`limit 39.6/s`), for a progress line."""
        status = rate_of(self._pipeline.limiter) if self._pipeline is not None else None
        return status.progress() if status is not None else None

    def stop(self, message: str = "interrupted") -> None:
        """Stop the running job as an interrupt: stop reading, let requests in flight finish.

        A job still being set up (the updater opening, the state file waited for) stops as it
        starts: it reads no row. A stop between two jobs of the block stops the next one.
        """
        if self._pipeline is not None:
            self._pipeline.stop(StopReason.INTERRUPTED, message)
            if self._state_waits is not None:  # the writer waits no longer for another's lock
                self._state_waits()
            return
        self._stop_asked = message
        if self._stopping is not None:
            self._stopping.set()

    def stream(
        self,
        rows: Rows,
        *,
        skip: Container[int] | None = None,
        columns: Mapping[str, str] | None = None,
        ignore_unknown_columns: bool = False,
    ) -> OutcomeStream:
        """Send every row; yield each row's `Outcome` as it finishes (not in input order).

        `rows` is a `Source`, or any iterable or async iterable of dicts or `LeadUpdate`s;
        rows whose number is in `skip` are yielded as `skipped` without being sent. `columns`
        and `ignore_unknown_columns` say what the keys of dict rows mean, as for a `Source`.
        `async with updater.stream(rows) as outcomes:` ends the job on leaving the block; a
        plain `async for` left early ends it once the stream is dropped (see `OutcomeStream`).
        """
        check_rows(rows)
        outcomes = self._outcomes(rows, skip, columns, ignore_unknown_columns)
        return self._streams.new(outcomes)

    async def _outcomes(
        self,
        rows: Rows,
        skip: Container[int] | None,
        columns: Mapping[str, str] | None,
        ignore_unknown_columns: bool,
    ) -> AsyncGenerator[Outcome, None]:
        async with contextlib.AsyncExitStack() as stack:
            stack.callback(close_input, rows)
            keys = keys_of(rows, columns, ignore_unknown_columns)
            await self._streams.ended()
            self._ready_sender()
            hold_input_file(stack, rows, Account.of(self.settings))
            unchanged = await self._open_state(rows)
            remember = closed_with(stack, Remember(unchanged)) if unchanged is not None else None
            pipeline = self._new_pipeline(skip, unchanged)
            stack.callback(self._end_job, pipeline)
            pipeline.deliverer.ids_from = ids_from(rows, keys)
            items = numbered_rows(rows, keys, pipeline, self._first_rows(skip))
            outcomes = pipeline.outcomes(items)
            async with contextlib.aclosing(outcomes):
                async for outcome, row in outcomes:
                    if remember is not None:  # before the caller sees it, as a sink would
                        remember.write(outcome, row)
                    yield outcome

    def _ready_sender(self) -> Sender:
        sender = self._sender or self._client
        if sender is None:
            raise RuntimeError("BulkUpdater is not open; use `async with BulkUpdater(...)`")
        if self._pipeline is not None:
            raise RuntimeError(
                "a job is already running on this BulkUpdater; finish its stream() or close it "
                "(`async with updater.stream(rows) as outcomes:` closes it on leaving) first"
            )
        return sender

    def _new_pipeline(
        self, finished: Container[int] | None, unchanged: Unchanged | None = None
    ) -> Pipeline:
        """A job's pipeline and its per-row rules, in the order they apply (`admission.py`):
        resume decides first, then rows keyed by email are resolved, then `skip_unchanged`
        compares what is left with what their leads hold."""
        sender = self._ready_sender()
        pipeline = Pipeline(self.settings, sender, self._limiter, hide=self.hide_secrets)
        self._pipeline = pipeline
        if self._stop_asked is not None:  # a stop during the setup: the job reads no row
            pipeline.stop(StopReason.INTERRUPTED, self._stop_asked)
        rules: list[Admission] = []
        resume = Resume(finished, self.settings.match) if finished is not None else None
        if resume is not None:
            rules.append(resume)
        rules.append(MatchByEmail(self.settings.match, sender, pipeline.deliverer))
        if resume is not None:  # the leads of rows matched by email, back to resume's books
            rules.append(resume.resolved)
        if unchanged is not None:
            rules.append(unchanged)
            unchanged.stop_job = pipeline.stop
            self._state_waits = unchanged.store.stop_waiting
        pipeline.use(Rules(rules))
        return pipeline

    def hide_secrets(self, text: str) -> str:
        """`text` (a message about the job: an unexpected failure's repr) without any secret the
        job knows: the key, the workspace id, the proxy's login, the Redis password."""
        s = self.settings
        client = self._client
        key = s.api_key.get_secret_value() if s.api_key is not None else None
        text = Redactor(key, s.workspace_id, *(client.secrets if client is not None else ()))(text)
        # The client knows the proxy's login (from the environment too); without it, the setting.
        for url in (s.redis_url, s.proxy if client is None else None):
            text = scrub(text, url) if url else text
        return text

    def state_path(self) -> Path:
        """The state file `skip_unchanged` uses: `state`, else the account's default file."""
        return state_path(self.settings)

    async def _open_state(self, rows: Rows) -> Unchanged | None:
        if not self.settings.skip_unchanged or self._stop_asked is not None:
            return None
        self._stopping = asyncio.Event()  # of this loop: an updater may serve several
        try:  # a stop ends the wait for another process's lock: the job then reads no row
            return await open_unchanged(self.settings, rows, self._stopping)
        finally:
            self._stopping = None

    def _end_job(self, pipeline: Pipeline) -> None:
        """The end of a job, however it ends: the updater free again, the rules closed."""
        self._pipeline = None
        self._stop_asked = None  # applied to this job
        self._state_waits = None
        if pipeline.admission is not None:
            pipeline.admission.close()

    async def run(
        self,
        rows: Rows,
        *,
        report: str | PathLike[str] | None = None,
        resume: bool = False,
        fingerprint: str | None = None,
        on_outcome: OnOutcome | None = None,
        rejects: str | PathLike[str] | None = None,
        columns: Mapping[str, str] | None = None,
        ignore_unknown_columns: bool = False,
        reword: Callable[[str], str] | None = None,
        on_start: Callable[[], None] | None = None,
    ) -> Summary:
        """Send every row, write the report (if given), return the `Summary`.

        With `resume=True` an existing report is continued: rows it holds as final are skipped
        (unless an earlier row of the same lead has to be sent again). `fingerprint` identifies
        the input (a `Source` file's sha256 by default); resuming with another one is refused.
        `on_outcome` is called with every outcome as it comes (a coroutine function is awaited).
        `rejects` writes the rows that did not end `updated`, as read, ready to fix and feed back.
        `reword` gives each row's message in other words, wherever it goes (the report, the
        rejects, `on_outcome`): `bulk-updater ui` says what to do on its page.
        `on_start` is called once the run holds its locks and opened its outputs, before any row
        is read: a run refused there (another holds the report) leaves what it would write alone.
        """
        check_rows(rows)
        async with contextlib.AsyncExitStack() as stack:  # closed in reverse, however it ends
            stack.callback(close_input, rows)
            await self._streams.ended()
            self._ready_sender()  # before the report is touched
            keys = keys_of(rows, columns, ignore_unknown_columns)
            opened = await self._outputs(stack, rows, report, resume, fingerprint, rejects)
            writer, unchanged, sinks = opened
            if on_start is not None:
                on_start()
            finished = finished_rows(writer)
            tally = Tally(finished)
            if on_outcome is not None:
                sinks.append(Callback(on_outcome))
            started = time.monotonic()
            first = self._first_rows(finished)
            pipeline = self._new_pipeline(finished, unchanged)
            stack.callback(self._end_job, pipeline)
            pipeline.deliverer.ids_from = ids_from(rows, keys)
            items = numbered_rows(rows, keys, pipeline, first)
            take, idle = handlers([tally, *sinks])
            await pipeline.consume(items, reworded(take, reword), idle)
        duration = time.monotonic() - started
        store = unchanged.store if unchanged is not None else None
        return summarize(
            pipeline, tally, duration, rows=rows, keys=keys, writer=writer, store=store, first=first
        )

    async def _outputs(
        self,
        stack: contextlib.AsyncExitStack,
        rows: Rows,
        report: str | PathLike[str] | None,
        resume: bool,
        fingerprint: str | None,
        rejects: str | PathLike[str] | None,
    ) -> tuple[ReportWriter | None, Unchanged | None, list[Sink]]:
        """The report, the state of `skip_unchanged` and the rejects of a run, each closed with
        `stack`; their sinks in the order outcomes go to them (the state's first: a later row of
        the lead may wait on it, and the caller's callback comes after)."""
        s = self.settings
        # Every lock taken and every file checked before any is written: a run refused
        # (another run holds the state file, say) leaves the report and rejects as they were.
        account = Account.of(s)
        writer = claim_report(rows, report, resume, fingerprint, s.match, s.limit, account)
        reporting = closed_with(stack, ReportSink(writer)) if writer is not None else None
        hold_input_file(stack, rows, account)  # after the report's: a run on it names the report
        unchanged = await self._open_state(rows)
        remembering = closed_with(stack, Remember(unchanged)) if unchanged is not None else None
        rejected = open_rejects(rejects, rows, start=False) if rejects is not None else None
        rejecting = None
        if rejected is not None:
            rejecting = closed_with(stack, RejectsSink(rejected, finished_rows(writer)))
        for output in (writer, rejected):
            if isinstance(output, (ReportWriter, RejectsWriter)):
                output.start()
        sinks: tuple[Sink | None, ...] = (remembering, reporting, rejecting)
        return writer, unchanged, [sink for sink in sinks if sink is not None]

    def _first_rows(self, finished: Container[int] | None) -> FirstRows | None:
        limit = self.settings.limit
        return FirstRows(limit, finished) if limit is not None else None

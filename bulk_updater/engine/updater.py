"""`BulkUpdater`: the library's entry point, an async context manager around one HTTP session.

It turns settings into a job: a `Pipeline` fed by the rows, paced by a `Limiter`, its outcomes
streamed to the caller (`stream()`) or consumed by sinks (`run()`: tally, report, callback).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Container, Iterator, Mapping
from os import PathLike
from pathlib import Path
from types import TracebackType
from typing import Final, Unpack

from ..client import Sender, SendKitClient
from ..errors import ConfigError
from ..inputs import ColumnMap, KeyPlan, Numbered, Rows, Source, check_rows, numbered
from ..inputs.schema import REF_KEY, id_source
from ..limits import Limiter, RateStatus, departure_hook, limiter_for
from ..models import Outcome, Status, StopReason, Summary
from ..report import RejectsWriter, ReportWriter
from ..settings import Options, Settings
from ..state import StateFile, state_path
from .admission import Admission, Rules
from .emails import MatchByEmail
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
    handlers,
    open_rejects,
)
from .stream import OutcomeStream, Streams
from .unchanged import Remember, Unchanged, open_unchanged


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
        self._pipeline: Pipeline | None = None
        self._streams = Streams()

    async def __aenter__(self) -> BulkUpdater:
        # The limiter first: a shared budget that cannot be reached is an error before any
        # request (and before any report is opened).
        await self._limiter.open()
        if self._sender is None:
            s = self.settings
            self._client = SendKitClient(
                api_key=s.api_key.get_secret_value() if s.api_key else "",
                base_url=s.base_url,
                timeout=s.timeout,
                concurrency=s.in_flight_cap,
                workspace_id=s.workspace_id,
                proxy=s.proxy,
                on_departure=departure_hook(self._limiter),
            )
            try:
                await self._client.__aenter__()
            except BaseException:
                self._client = None
                await self._limiter.close()
                raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._streams.ended()  # a dropped stream's job: closed as it should be
        pipeline, self._pipeline = self._pipeline, None
        task = pipeline.task if pipeline is not None else None
        if task is not None and not task.done():  # a stream() left unfinished: end its job
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        try:
            if self._client is not None:
                await self._client.__aexit__(exc_type, exc, tb)
                self._client = None
        finally:
            await self._limiter.close()

    def __repr__(self) -> str:  # never show the key
        s = self.settings
        concurrency = "auto" if s.concurrency is None else s.concurrency
        return f"BulkUpdater(base_url={s.base_url!r}, rate={s.rate}, concurrency={concurrency})"

    def rate_now(self) -> str | None:
        """What the running job's limiter allows now (`limit 39.6/s`), for a progress line."""
        status = _describe(self._pipeline.limiter) if self._pipeline is not None else None
        return status.progress() if status is not None else None

    def stop(self, message: str = "interrupted") -> None:
        """Stop the running job as an interrupt: stop reading, let requests in flight finish."""
        if self._pipeline is not None:
            self._pipeline.stop(StopReason.INTERRUPTED, message)

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
        keys = _keys(rows, columns, ignore_unknown_columns)
        try:
            await self._streams.ended()
            self._ready_sender()
            unchanged = await self._open_state(rows)
        except BaseException:
            if isinstance(rows, Source):
                rows.close()
            raise
        remember = Remember(unchanged) if unchanged is not None else None
        try:
            pipeline = self._new_pipeline(skip, unchanged)
            pipeline.deliverer.ids_from = _ids_from(rows, keys)
            with self._job(rows, pipeline):
                items = _numbered(rows, keys, pipeline, self._first_rows(skip))
                async with contextlib.aclosing(pipeline.outcomes(items)) as outcomes:
                    async for outcome, row in outcomes:
                        if remember is not None:  # before the caller sees it, as a sink would
                            remember.write(outcome, row)
                        yield outcome
        finally:
            if remember is not None:
                remember.close()

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
        pipeline = self._pipeline = Pipeline(self.settings, sender, self._limiter)
        rules: list[Admission] = []
        resume = Resume(finished, self.settings.match) if finished is not None else None
        if resume is not None:
            rules.append(resume)
        rules.append(MatchByEmail(self.settings.match, sender, pipeline.deliverer))
        if resume is not None:  # the leads of rows matched by email, back to resume's books
            rules.append(resume.resolved)
        if unchanged is not None:
            rules.append(unchanged)
        pipeline.use(Rules(rules))
        return pipeline

    def state_path(self) -> Path:
        """The state file `skip_unchanged` uses: `state`, else the account's default file."""
        return state_path(self.settings)

    async def _open_state(self, rows: Rows) -> Unchanged | None:
        if not self.settings.skip_unchanged:
            return None
        return await open_unchanged(self.settings, rows)

    @contextlib.contextmanager
    def _job(self, rows: Rows, pipeline: Pipeline) -> Iterator[None]:
        """The end of a job, however it ends: the updater free again, the rules and input closed."""
        try:
            yield
        finally:
            self._pipeline = None
            if pipeline.admission is not None:
                pipeline.admission.close()
            if isinstance(rows, Source):
                rows.close()

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
    ) -> Summary:
        """Send every row, write the report (if given), return the `Summary`.

        With `resume=True` an existing report is continued: rows it holds as final are skipped
        (unless an earlier row of the same lead has to be sent again). `fingerprint` identifies
        the input (a `Source` file's sha256 by default); resuming with another one is refused.
        `on_outcome` is called with every outcome as it comes (a coroutine function is awaited).
        `rejects` writes the rows that did not end `updated`, as read, ready to fix and feed back.
        """
        check_rows(rows)
        writer = rejected = unchanged = None
        try:
            await self._streams.ended()
            self._ready_sender()  # before the report is touched
            keys = _keys(rows, columns, ignore_unknown_columns)
            match, limit = self.settings.match, self.settings.limit
            # Every lock taken and every file checked before any is written: a run refused
            # (another run holds the state file, say) leaves the report and rejects as they were.
            writer = claim_report(rows, report, resume, fingerprint, match, limit)
            unchanged = await self._open_state(rows)
            if rejects is not None:
                rejected = open_rejects(rejects, rows, start=False)
            for output in (writer, rejected):
                if isinstance(output, (ReportWriter, RejectsWriter)):
                    output.start()
        except BaseException:
            for output in (writer, rejected):
                if output is not None:
                    output.close()  # not started: left as it was
            if unchanged is not None:
                unchanged.store.close()
            if isinstance(rows, Source):
                rows.close()
            raise
        finished = writer.finished if writer is not None and writer.resumed else None
        tally = Tally(finished)
        sinks: list[Sink] = [tally]
        if unchanged is not None:  # before the callback: a later row of the lead may wait on it
            sinks.append(Remember(unchanged))
        if writer is not None:
            sinks.append(ReportSink(writer))
        if rejected is not None:
            sinks.append(RejectsSink(rejected, finished))
        if on_outcome is not None:
            sinks.append(Callback(on_outcome))
        started = time.monotonic()
        first = self._first_rows(finished)
        try:
            pipeline = self._new_pipeline(finished, unchanged)
            pipeline.deliverer.ids_from = _ids_from(rows, keys)
            with self._job(rows, pipeline):
                items = _numbered(rows, keys, pipeline, first)
                await pipeline.consume(items, *handlers(sinks))
        finally:
            for sink in sinks:
                sink.close()
        dropped = rows.dropped if isinstance(rows, Source) else list(keys.dropped)
        store = unchanged.store if unchanged is not None else None
        outputs = (writer, store, first)
        summary = _summary(pipeline, tally, time.monotonic() - started, dropped, *outputs)
        if isinstance(rows, Source) and rows.notes():  # a footer left out, suspect tags cells
            summary = summary.model_copy(update={"warnings": [*rows.notes(), *summary.warnings]})
        return summary

    def _first_rows(self, finished: Container[int] | None) -> FirstRows | None:
        limit = self.settings.limit
        return FirstRows(limit, finished) if limit is not None else None


def _numbered(rows: Rows, keys: KeyPlan, pipeline: Pipeline, first: FirstRows | None) -> Numbered:
    """The job's rows (the first ones, with a limit), each batch shown first to the rules that
    look ahead (`prefetch`)."""
    rules = pipeline.admission
    lookahead = rules.prefetch if isinstance(rules, Rules) and rules.prefetchers else None
    items = numbered(rows, keys, lookahead=lookahead)
    return first.cut(items) if first is not None else items


def _ids_from(rows: Rows, keys: KeyPlan) -> str:
    """The column the rows' ids come from, for a message that blames it."""
    if isinstance(rows, Source):
        return id_source(rows.header, rows.columns)
    return id_source(None, keys.mapping)


def _keys(rows: Rows, columns: Mapping[str, str] | None, ignore_unknown: bool) -> KeyPlan:
    if isinstance(rows, Source) and (columns or ignore_unknown):
        raise TypeError("a Source has its own columns=: give them to Source(path, columns=...)")
    return KeyPlan(ColumnMap(columns), ignore_unknown=ignore_unknown, kept=(REF_KEY,))


def _summary(
    pipeline: Pipeline,
    tally: Tally,
    duration: float,
    dropped: list[str],
    writer: ReportWriter | None,
    store: StateFile | None,
    first: FirstRows | None,
) -> Summary:
    counters = pipeline.counters
    counts = tally.counts
    rate = _describe(pipeline.limiter)
    stopped, message = pipeline.stop_reason, pipeline.stop_message
    warnings = _warnings(writer, store, first)
    if stopped in _TOO_LATE and pipeline.read_all and not counts[Status.ABORTED]:
        # The interrupt, or the stop on ids not this account's, came once every row was sent:
        # it stopped nothing. What the ids look like is still worth a word.
        if stopped is StopReason.UNKNOWN_IDS and message is not None:
            warnings.append(message)
        stopped = message = None
    return Summary(
        counts=counts,
        rows=sum(counts.values()),
        requests=counters.requests,
        searches=counters.searches,
        retries=counters.retries,
        rate_limited=counters.rate_limited,
        duration_s=round(duration, 3),
        achieved_rate=round(counters.requests / duration, 2) if duration > 0 else 0.0,
        stopped=stopped,
        stop_message=message,
        report=str(writer.path) if writer is not None else None,
        earlier={status: n for status, n in tally.earlier.items() if n},
        warnings=warnings,
        dropped_columns=dropped,
        state_file=str(store.path) if store is not None else None,
        settled_rate=None if rate is None or rate.settled is None else round(rate.settled, 1),
        settled_why=rate.why if rate is not None else None,
        rate_hint=rate.hint if rate is not None else None,
    )


#: Stops that change nothing when they come after the last row was sent.
_TOO_LATE: Final = (StopReason.INTERRUPTED, StopReason.UNKNOWN_IDS)


def _describe(limiter: Limiter) -> RateStatus | None:
    """What a limiter says of its rate; None for one of the caller's own that cannot say."""
    describe = getattr(limiter, "describe", None)
    return describe() if describe is not None else None


def _warnings(
    writer: ReportWriter | None, store: StateFile | None, first: FirstRows | None
) -> list[str]:
    warnings = []
    if writer is not None and writer.unsorted is not None:
        warnings.append(
            f"the report could not be put in input order ({writer.unsorted}); it is complete, "
            "in the order rows finished, and --resume can read it"
        )
    if store is not None:
        warnings.extend(f"state: {warning}" for warning in store.warnings)
    if first is not None and (cut := first.warning()) is not None:
        warnings.append(cut)
    return warnings

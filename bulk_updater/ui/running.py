"""The run step: one job through `BulkUpdater.run`, its live progress, its stop and its resume.

The job writes its report and rejects in its own folder; the page downloads only those two files.
A stop is the engine's graceful one (requests in flight finish, the report is complete), so
`Resume` continues from the report with `resume=True`, as `bulk-updater run --resume` would.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import traceback
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from pydantic import SecretStr

from ..engine import BulkUpdater
from ..errors import BulkUpdaterError
from ..inputs import ColumnMap, Source
from ..limits import Limiter, limiter_for
from ..models import Outcome, Status, Summary
from ..report.earlier import answered
from ..report.meta import report_account
from ..settings import Settings
from ..state.paths import Account
from .detect import ReadOptions, named
from .kept import JobRecord, KeptJob, report_counts
from .wording import page_words

log = logging.getLogger("bulk_updater")

REPORT: Final = "report.csv"
#: How often a running job's limiter is asked whether a hold began (the page counts it down).
_HOLDS_EVERY: Final = 0.2
#: A rejects file is of its input's kind: a workbook's a workbook, JSON lines', JSON lines.
_REJECTS: Final = {".xlsx": ".xlsx", ".xlsm": ".xlsx", ".jsonl": ".jsonl", ".ndjson": ".jsonl"}


@dataclass(frozen=True)
class Connection:
    """Where the rows go: the API's address, the workspace, and the key (never shown)."""

    api_key: SecretStr
    base_url: str
    workspace_id: str | None = None
    sandbox: bool = False

    def settings(self) -> Settings:
        return Settings.build(
            api_key=self.api_key.get_secret_value(),
            base_url=self.base_url,
            workspace_id=self.workspace_id,
        )


@dataclass
class Job:
    """A job on one input file, in its own folder; `describe()` is the page's view of it."""

    folder: Path
    record: JobRecord
    published: Callable[[], None]
    state: str = "starting"  # then running, stopping, stopped, finished, failed
    total: int | None = None
    counts: dict[str, int] = field(default_factory=dict)
    started: float = 0.0
    ended: float | None = None
    limit: str | None = None
    summary: Summary | None = None
    error: str | None = None
    _updater: BulkUpdater | None = None
    _limiter: Limiter | None = None
    _stop_asked: bool = False  # Stop before the engine ran: it never starts

    @classmethod
    def restore(cls, kept: KeptJob, published: Callable[[], None]) -> Job | None:
        """The job a server before this one left unfinished, stopped, ready to resume."""
        record = kept.load()
        if record is None:
            return None
        job = cls(kept.root, record, published, state="stopped")
        job.counts = report_counts(job.report)
        return job

    @property
    def input(self) -> Path:
        return self.folder / self.record.input

    @property
    def options(self) -> ReadOptions:
        record = self.record
        return ReadOptions(record.encoding, record.sheet, record.header_row, record.tags_separator)

    @property
    def report(self) -> Path:
        return self.folder / REPORT

    @property
    def rejects(self) -> Path:
        suffix = _REJECTS.get(Path(self.record.input).suffix, ".csv")
        return self.folder / f"rejects{suffix}"

    @property
    def rejects_options(self) -> ReadOptions:
        """How the rejects file reads: as the input, but a workbook's has one sheet of its own
        (the title rows above the header are kept, empty in a workbook)."""
        record = self.record
        return ReadOptions(
            encoding=record.encoding,
            header_row=record.header_row,
            tags_separator=record.tags_separator,
        )

    @property
    def active(self) -> bool:
        return self.state in ("starting", "running", "stopping")

    def refuse_resume(self, connection: Connection) -> str | None:
        """Why this job cannot go on with `connection`, or None: it goes where it was going, or
        anywhere while no row of its report got a final answer from the API."""
        record = self.record
        if record.sandbox:
            return None if connection.sandbox else "this job was sent to the local sandbox"
        if not connection.sandbox and not answered(self.report):
            return None  # no row got an answer (a key the API refused): it goes on (`retarget`)
        if connection.sandbox or connection.base_url != record.base_url:
            again = f"`bulk-updater ui --base-url {record.base_url}`"
            return f"this job was sent to {record.base_url}; restart with {again}"
        if connection.workspace_id != record.workspace_id:
            where = f"workspace {record.workspace_id}" if record.workspace_id else "no workspace"
            return f"this job was sent to {where}; give that workspace id"
        # The key is known by its hash, in the report's meta: job.json never holds it.
        held = report_account(self.report)
        if held is not None and not held.same(Account.of(connection.settings())):
            return "this job was sent with another API key; give that key"
        return None

    def retarget(self, connection: Connection) -> bool:
        """Send the rest where `connection` says (once `refuse_resume` let it): whether the
        record changed, to be kept."""
        record = self.record
        where = connection.base_url, connection.workspace_id
        if record.sandbox or where == (record.base_url, record.workspace_id):
            return False
        self.record = replace(record, base_url=where[0], workspace_id=where[1])
        return True

    def begin(self) -> None:
        """The job is `active` from now: called by the request that starts it, before `run`,
        so that a second request sees it at once."""
        self.state, self.counts, self.summary, self.error = "starting", {}, None, None
        self.ended, self._stop_asked = None, False
        self.published()

    async def run(self, connection: Connection, *, resume: bool = False) -> None:
        """Run the begun job to its end (or its stop); the outcome is in `state` and `summary`."""
        updater: BulkUpdater | None = None
        try:
            settings = connection.settings()
            limiter = self._limiter = limiter_for(settings)
            updater = BulkUpdater(settings=settings, limiter=limiter)
            source = self.options.source(self.input, ColumnMap(self.record.columns))
            if not await self._read_through(source):
                self.state = "stopped"  # before its first row: Resume starts it from the top
                return
            self._updater, self.started, self.state = updater, time.monotonic(), "running"
            self.published()
            async with updater, _watching(self._watch_holds(limiter)):
                self.summary = await updater.run(
                    source,
                    report=self.report,
                    rejects=self.rejects,
                    resume=resume,
                    on_outcome=self._outcome,
                    reword=page_words,  # the page's downloads say what to do on the page
                )
            self.state = "stopped" if self.summary.stopped is not None else "finished"
        except BulkUpdaterError as exc:
            self.state, self.error = "failed", str(named(exc, self.input, self.record.name))
        except OSError as exc:  # a full disk: what is done stays in the report
            self.state, self.error = "failed", f"{exc.strerror or exc}; fix it, then Resume"
        except Exception as exc:  # a bug: the page and the server's log say so, with no secret
            shown = updater.hide_secrets(repr(exc)) if updater is not None else type(exc).__name__
            self.state, self.error = "failed", f"the job failed: {shown}; Resume may go on"
            # Its frames, not its words: an exception's text may quote a secret.
            log.error("%s\n%s", self.error, "".join(traceback.format_tb(exc.__traceback__)))
        finally:
            self._updater, self.ended = None, time.monotonic()
            self.published()

    async def _read_through(self, source: Source) -> bool:
        """Check and count the input's rows; False (the source closed) when Stop came meanwhile.

        Both read the whole file: in a thread, so the page stays live on a big file.
        """
        try:
            if not self._stop_asked:
                await asyncio.to_thread(source.check)
            if not self._stop_asked:
                self.total = await asyncio.to_thread(source.count)
        except BaseException:  # a file that cannot be read: closed here, `run` says why
            source.close()
            raise
        if self._stop_asked:
            source.close()
        return not self._stop_asked

    def _outcome(self, outcome: Outcome) -> None:
        status = outcome.status.value
        self.counts[status] = self.counts.get(status, 0) + 1
        if self._updater is not None and self._paused()[0] is None:
            self.limit = self._updater.rate_now()  # a hold's own countdown says it, apart
        self.published()

    def stop(self) -> None:
        """Stop gracefully: no new row is read, requests in flight finish, Resume continues.

        A job still `starting` (its input copied, read through) stops before its first row.
        """
        if self.state == "starting":
            self.state, self._stop_asked = "stopping", True
            self.published()
        elif self._updater is not None and self.state == "running":
            self.state = "stopping"
            self._updater.stop("stopped from the page; Resume continues where it stopped")
            self.published()

    async def _watch_holds(self, limiter: Limiter) -> None:
        """Publish when a hold of the job begins or grows: nothing else happens then (no row
        ends), and the page counts the hold down from what it is told."""
        until = limiter.holds.until
        while True:
            await asyncio.sleep(_HOLDS_EVERY)
            if limiter.holds.until != until:
                until = limiter.holds.until
                self.published()

    def _paused(self) -> tuple[float | None, str | None]:
        """Seconds left in the running job's hold (whatever holds it), and why; or Nones."""
        if self._limiter is None or not self.active:
            return None, None
        status = self._limiter.describe()
        if status.paused is None:
            return None, None
        return round(status.paused, 1), status.paused_why

    def _not_updated(self) -> bool:
        """Whether some rows of the job are in its rejects: by the summary once it ran; by the
        rows counted when it has none (restored from its report, or failed), once it ended."""
        if self.summary is not None:
            counts = {status.value: n for status, n in self.summary.counts.items()}
        elif self.active:
            return False  # its rejects are still being written
        else:
            counts = self.counts
        settled = {status.value for status in _SETTLED}  # the counts are keyed by value
        return any(n for status, n in counts.items() if status not in settled)

    def describe(self) -> dict[str, Any]:
        done = sum(self.counts.values())
        elapsed = (self.ended or time.monotonic()) - self.started if self.started else 0.0
        # Rows a resume skips take no time: the rate, and the ETA from it, count the others.
        sent = done - self.counts.get(Status.SKIPPED.value, 0)
        rate = sent / elapsed if elapsed > 0 else 0.0
        left = self.total - done if self.total is not None else None
        summary = self.summary
        paused, why = self._paused()
        return {
            "name": self.record.name,
            "state": self.state,
            "done": done,
            "total": self.total,
            "rate": round(rate, 1),
            "limit": _shown(self.limit),
            "eta_s": round(left / rate) if left is not None and rate > 0 else None,
            "paused_s": paused,
            "paused_why": _shown(why),
            "counts": self.counts,
            "error": _shown(self.error),
            "summary": _summary(summary) if summary is not None else None,
            "has_report": self.report.exists(),
            "has_rejects": self.rejects.exists() and self._not_updated(),
        }


#: Outcomes that leave nothing to fix: a rejects file holds none of them.
_SETTLED: Final = frozenset({Status.UPDATED, Status.UNCHANGED, Status.SKIPPED})


@contextlib.asynccontextmanager
async def _watching(watch: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    """`watch` runs in a task while the block does, and is cancelled at its end."""
    task = asyncio.ensure_future(watch)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _summary(summary: Summary) -> dict[str, Any]:
    return {
        "counts": {status.value: n for status, n in summary.counts.items() if n},
        "earlier": {status.value: n for status, n in summary.earlier.items() if n},
        "rows": summary.rows,
        "requests": summary.requests,
        "duration_s": summary.duration_s,
        "stopped": _shown(summary.stop_message),
        "all_updated": summary.all_updated,
        "warnings": [page_words(warning) for warning in summary.warnings],
    }


def _shown(message: str | None) -> str | None:
    return page_words(message) if message is not None else None

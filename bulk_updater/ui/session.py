"""The page's state, held by the server: the connection, the file, its columns, the check, the job.

The page is a view of `snapshot()`: reloading it, or a second tab, shows the same steps, and a
job keeps running whatever the browser does. Every change calls `changed()`, which wakes the
event streams (`wait_change`, both in `notify.py`). The key is kept here only, in memory:
`snapshot()` never holds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..errors import BulkUpdaterError
from .check import BadRow, Check, recheck, run_check, write_fixed
from .detect import Detected, ReadOptions, detect, named
from .history import Earlier, set_aside
from .kept import JobRecord, KeptJob
from .mapping import (
    Choice,
    Remembered,
    choose,
    column_map,
    command_line,
    needs_decision,
    page_separator,
)
from .notify import Notifier
from .running import Connection, Job
from .wording import page_words
from .workspace import Workspace


class JobBusy(BulkUpdaterError):
    """A start while a job starts or runs (a double click): the page answers 409."""


class Session(Notifier):
    """Everything one user does on the page, from the file to the job's end."""

    def __init__(
        self,
        workspace: Workspace,
        connection: Connection | None,
        remembered: Remembered,
        kept: KeptJob,
    ) -> None:
        super().__init__()
        self.workspace = workspace
        self.kept = kept
        self.connection = connection
        self.remembered = remembered
        self.file: Detected | None = None
        self.file_error: str | None = None
        self.chosen: dict[str, str] = {}
        self.choices: list[Choice] = []
        self.check: Check | None = None
        self.job: Job | None = Job.restore(kept, self.changed)
        self.earlier: list[Earlier] = []  # the jobs before `job`, in the order they ran
        self.tasks: set[asyncio.Task[None]] = set()
        self._launching = False  # a start's request is under way (see `launching`)
        self.streams = 0  # event streams open (pages following the state)

    # -- its tasks ------------------------------------------------------------------------------

    def spawn(self, coroutine: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def close(self) -> None:
        """At the server's stop: the event streams end, the check too, the job stops gracefully
        (waited for); the kept job's folder goes unless the job did not finish."""
        self.closed = True
        self._bump()
        if self.check is not None:
            self.check.cancelled.set()
        if self.job is not None:
            self.job.stop()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.job is None or self.job.state == "finished":
            self.kept.discard()  # an unfinished job stays, for the next start to resume

    # -- the page's view ------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        connection = self.connection
        file = self.file
        header = file.raw_header if file is not None else []
        return {
            "version": self.version,
            "connection": None
            if connection is None
            else {"base_url": connection.base_url, "sandbox": connection.sandbox},
            "file": file.describe() if file is not None else None,
            "file_error": page_words(self.file_error) if self.file_error is not None else None,
            "columns": [choice.describe() for choice in self.choices],
            "needs_decision": needs_decision(self.choices) if self.choices else False,
            "command": self._command(),
            "tags_separator": file.options.tags_separator if file is not None else None,
            "check": self.check.describe(header) if self.check is not None else None,
            "job": self.job.describe() if self.job is not None else None,
            "earlier": [earlier.describe() for earlier in self.earlier],
        }

    def _command(self) -> str | None:
        if self.file is None or not self.choices:
            return None
        file = self.file
        options = file.options
        return command_line(
            file.name,
            self.choices,
            file.encoding,
            file.sheet,
            options.header_row,
            options.tags_separator,
        )

    # -- the steps ------------------------------------------------------------------------------

    def use_connection(self, connection: Connection) -> None:
        self.connection = connection
        self.changed()

    async def open_file(self, path: Path, name: str, options: ReadOptions) -> None:
        """A new file: detected, mapped, checked when nothing needs a decision."""
        self._cancel_check()
        if self.file is not None and self.file.path != path:
            self.workspace.discard(self.file.path)  # the file before: a new one replaces it
        self.file, self.file_error, self.choices, self.check = None, None, [], None
        try:
            detected = await asyncio.to_thread(detect, path, name, options)
        except BulkUpdaterError as exc:
            self.workspace.discard(path)  # a file refused is not kept until the server stops
            self.file_error = str(exc)
            self.changed()
            return
        separator = self.remembered.tags_separator(detected.header)
        if separator is not None:  # the lists of the same headers last month: same separator
            detected.options = dataclasses.replace(detected.options, tags_separator=separator)
        self._use(detected)

    def upload_cut(self, name: str) -> None:
        """An upload that ended before its file did (the page closed, the network gone)."""
        self.file_error = f"{name}: the upload stopped before the file's end; choose it again"
        self.changed()

    async def read_again(self, options: ReadOptions) -> None:
        """The same file read otherwise (encoding, sheet, header row); a reading that fails is
        refused (`BulkUpdaterError`) and the one before stays, so the user can try another."""
        file = self.file
        if file is None:
            raise BulkUpdaterError("choose a file first")
        options = dataclasses.replace(options, tags_separator=file.options.tags_separator)
        detected = await asyncio.to_thread(detect, file.path, file.name, options)
        self._cancel_check()
        self.check = None
        self._use(detected)

    def _use(self, file: Detected) -> None:
        self.file, self.file_error, self.chosen = file, None, {}
        self.choices = choose(file.header, {}, self.remembered.get(file.header))
        self.changed()
        if not needs_decision(self.choices):
            self.start_check()

    def set_columns(self, chosen: Mapping[str, str]) -> None:
        """The user's choice for some headers; the others keep theirs."""
        if self.file is None:
            raise BulkUpdaterError("choose a file first")
        known = set(self.file.header)
        self.chosen.update({k: v for k, v in chosen.items() if k in known})
        remembered = self.remembered.get(self.file.header)
        self.choices = choose(self.file.header, self.chosen, remembered)
        self._cancel_check()
        self.check = None
        self.changed()

    def set_tags_separator(self, value: str) -> None:
        """What separates the tags in the file's `tags` cells (`;` unless the user says)."""
        file = self.file
        if file is None:
            raise BulkUpdaterError("choose a file first")
        separator = page_separator(value)
        file.options = dataclasses.replace(file.options, tags_separator=separator)
        self._cancel_check()
        self.check = None
        self.changed()

    def start_check(self) -> None:
        """Check every row with the mapping shown; a check of the mapping confirms it."""
        file = self.file
        if file is None:
            raise BulkUpdaterError("choose a file first")
        self._cancel_check()
        columns = column_map(self.choices)
        try:  # a bad mapping fails here, at once
            source = file.options.source(file.path, columns)
        except BulkUpdaterError as exc:
            raise named(exc, file.path, file.name) from None
        self.remembered.save(self.choices, file.options.tags_separator)
        check = self.check = Check()
        self.changed()
        self.spawn(asyncio.to_thread(run_check, source, check, self.changed))

    def _cancel_check(self) -> None:
        if self.check is not None:
            self.check.cancelled.set()

    def fix_row(self, row: int, cells: Mapping[str, str]) -> None:
        """Edit an invalid row's cells and check it again."""
        file, check = self.file, self.check
        if file is None or check is None or check.running:
            raise BulkUpdaterError("check the rows first")
        bad = _find(check.bad, row)
        recheck(
            bad,
            file.raw_header,
            column_map(self.choices),
            cells,
            file.format,
            file.options.tags_separator,
        )
        self.changed()

    @contextlib.contextmanager
    def launching(self) -> Iterator[None]:
        """Held by a start from its request until its job is `active`; entered before any await.

        A second start meanwhile is refused at once (`JobBusy`): it never touches the job that
        runs nor the kept folder the first one is copying into.
        """
        if self._launching or (self.job is not None and self.job.active):
            raise JobBusy("a job is starting or running; wait for it to end, or stop it first")
        self._launching = True
        try:
            yield
        finally:
            self._launching = False

    async def start(self) -> None:
        """Start the job on the checked file, with the fixed rows in a copy of it."""
        with self.launching():
            await self._start()

    async def _start(self) -> None:
        file, check = self.file, self.check
        if file is None or check is None:
            raise BulkUpdaterError("check the rows first")
        if check.sent:
            raise BulkUpdaterError(
                "this file was sent already; check it again (or choose it again) to send it again"
            )
        if not check.ready:
            raise BulkUpdaterError("check the rows first")
        fixes = {bad.row: bad.cells for bad in check.bad if bad.fixed}
        columns = {choice.header: choice.field for choice in self.choices}
        path, options = file.path, file.options
        if fixes:
            suffix = {"jsonl": ".jsonl", "xlsx": ".xlsx"}.get(file.format, ".csv")
            path = self.workspace.scratch(suffix)
            options = ReadOptions(tags_separator=file.options.tags_separator)
            source = file.options.source(file.path, column_map(self.choices))
            await asyncio.to_thread(write_fixed, source, fixes, path)
        await self.start_file(path, options, file.name, columns)
        check.sent = True

    async def start_file(
        self, path: Path, options: ReadOptions, name: str, columns: dict[str, str]
    ) -> None:
        """Start a job on a copy of `path`, read with `columns`, in the kept folder; its caller
        holds `launching()`."""
        connection = self.connection
        if connection is None:
            raise BulkUpdaterError("say where to send first: a key, or the local sandbox")
        if not self._launching:
            raise RuntimeError("start_file is called within launching()")
        if self.job is not None:  # its report and rejects stay downloadable
            number = len(self.earlier) + 1
            folder = self.workspace.folder("job")
            self.earlier.append(await set_aside(self.job, number, folder))
        folder = self.kept.replace()
        record = JobRecord(
            name=name,
            input="input" + path.suffix.lower(),
            encoding=options.encoding,
            sheet=options.sheet,
            columns=columns,
            base_url=connection.base_url,
            workspace_id=connection.workspace_id,
            sandbox=connection.sandbox,
            header_row=options.header_row,
            tags_separator=options.tags_separator,
        )
        # The job is shown `starting` while its input is copied, so Stop can stop it then too.
        job = self.job = Job(folder, record, self.changed)
        job.begin()
        try:  # the job's own copy: a 1 GB file is copied in a thread, the page stays live
            await asyncio.to_thread(shutil.copyfile, path, folder / record.input)
            self.kept.save(record)
        except OSError as exc:  # a full disk: nothing was sent
            self.job = None
            self.kept.discard()
            self.changed()
            raise BulkUpdaterError(f"the job cannot start: {exc.strerror or exc}") from None
        self.spawn(job.run(connection))

    def stop(self) -> None:
        if self.job is None or not self.job.active:
            raise BulkUpdaterError("no job is running")
        self.job.stop()

    def resume(self) -> None:
        with self.launching():  # the job is `active` when it ends
            self._resume()

    def _resume(self) -> None:
        job, connection = self.job, self.connection
        if job is None or job.state not in ("stopped", "failed"):
            raise BulkUpdaterError("no stopped job to resume")
        if connection is None:
            raise BulkUpdaterError("say where to send first: a key, or the local sandbox")
        refused = job.refuse_resume(connection)
        if refused is not None:
            raise BulkUpdaterError(f"{refused}; Resume sends the rest there only")
        if job.retarget(connection):
            self.kept.save(job.record)
        job.begin()
        self.spawn(job.run(connection, resume=True))


def _find(bad: list[BadRow], row: int) -> BadRow:
    for candidate in bad:
        if candidate.row == row:
            return candidate
    raise BulkUpdaterError(f"row {row} is not among the invalid rows shown")

"""Sinks: what consumes the outcomes of a run (the tally, the report, the caller's callback).

`BulkUpdater.run()` hands every outcome to each sink in turn, calls `flush()` whenever it has no
further outcome at hand (so a crash loses nothing already done), and `close()` at the end. A new
output (a rejects file, the state of `skip_unchanged`) is a new sink. `claim_report()` and
`open_rejects()` open the report and rejects files of a run without writing them; the engine
`start()`s them once it holds every lock, so a run refused anywhere leaves them as they were.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Container, Mapping
from dataclasses import replace
from os import PathLike
from types import TracebackType
from typing import Protocol, TypeVar

from ..errors import ConfigError
from ..inputs import Hidden, Row, Rows, Source
from ..inputs.numbers import Number
from ..inputs.values import Typed
from ..models import LeadUpdate, Outcome, Status
from ..report import FinishedRows, RejectsWriter, ReportWriter
from ..report.rejects import TextShape, shape_of
from ..report.sheet_rejects import SheetRejectsWriter, Stored
from ..state.paths import Account

_S = TypeVar("_S", bound="Output")
log = logging.getLogger("bulk_updater")

OnOutcome = Callable[[Outcome], None] | Callable[[Outcome], Awaitable[None]]
#: What takes each outcome with its row: every sink in turn (`handlers()`).
Take = Callable[[Outcome, Row], Awaitable[None] | None]


class Sink(Protocol):
    def write(self, outcome: Outcome, row: Row) -> Awaitable[None] | None:
        """Take one row's outcome, and the row as read (may return a coroutine to await)."""

    def flush(self) -> None:
        """No further outcome is at hand: push what was written out."""

    def close(self) -> None:
        """The run is over (or failed): finish up."""


class Output(Sink, Protocol):
    """A sink that writes a file, closed however the job ends (`closed_with`)."""

    @property
    def what(self) -> str:
        """What it writes, in the user's words: `the report out.csv`."""


class Tally(Sink):
    """Counts per status; on resume, also the earlier status of every row counted `skipped`."""

    def __init__(self, earlier: Container[int] | None) -> None:
        self.counts = dict.fromkeys(Status, 0)
        self.earlier = dict.fromkeys(Status, 0)
        self._finished = earlier if isinstance(earlier, FinishedRows) else None
        self.skipping = earlier is not None

    def write(self, outcome: Outcome, row: Row) -> None:
        self.counts[outcome.status] += 1
        if outcome.status is Status.SKIPPED and self.skipping:
            was = self._finished.status_of(outcome.row) if self._finished is not None else None
            self.earlier[was or Status.SKIPPED] += 1

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class ReportSink(Sink):
    """The report file: one line per row this run decided (skipped rows keep their old line)."""

    def __init__(self, writer: ReportWriter) -> None:
        self.writer = writer

    @property
    def what(self) -> str:
        return f"the report {self.writer.path}"

    def write(self, outcome: Outcome, row: Row) -> None:
        if outcome.status is not Status.SKIPPED or _left_out(outcome, row):
            self.writer.write(outcome)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def _left_out(outcome: Outcome, row: Row) -> bool:
    """Whether a `skipped` row was skipped by this run for being hidden in its sheet (not
    because an earlier run finished it, whose line the report keeps): its line is written."""
    item = row.item
    return isinstance(item, Hidden) and outcome.message == item.message


class Callback(Sink):
    """The caller's `on_outcome`, a plain function or a coroutine function."""

    def __init__(self, on_outcome: OnOutcome) -> None:
        self.on_outcome = on_outcome

    def write(self, outcome: Outcome, row: Row) -> Awaitable[None] | None:
        result = self.on_outcome(outcome)
        return None if result is None or not inspect.isawaitable(result) else result

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class RejectsSink(Sink):
    """`--rejects`: every row that did not end `updated` (or `unchanged`), as read, with `_status`
    and `_message`.

    On resume, a row skipped because an earlier run finished it is a reject too if that run did
    not update it, so the file is right for the whole report, not only this run.
    """

    def __init__(
        self, writer: RejectsWriter | SheetRejectsWriter, earlier: Container[int] | None
    ) -> None:
        self.writer = writer
        self._finished = earlier if isinstance(earlier, FinishedRows) else None

    @property
    def what(self) -> str:
        return f"the rejects file {self.writer.path}"

    def write(self, outcome: Outcome, row: Row) -> None:
        status = outcome.status
        message = outcome.message
        if status is Status.SKIPPED and self._finished is not None:
            status = self._finished.status_of(outcome.row) or Status.SKIPPED
            message = f"{status.value} in an earlier run (its report has the details)"
        if status not in _NOT_REJECTED:
            item = row.item
            fallback = (
                item.model_dump(exclude_none=True, exclude={"ref"})  # the caller's, not a field
                if isinstance(item, LeadUpdate)
                else {}
            )
            fallback = fallback or {"id": item.id}
            if isinstance(self.writer, SheetRejectsWriter):
                cells = row.raw if isinstance(row.raw, tuple) else ()
                self.writer.write(row.number, [stored(c) for c in cells], status, message)
            else:
                self.writer.write(row.number, row.raw, status, message, fallback)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def stored(cell: str) -> Stored:
    """What a workbook's cell (as read) holds, so that its rejects cell reads back the same."""
    if isinstance(cell, Number):
        return cell.value, cell.pattern
    if isinstance(cell, Typed) and isinstance(cell.value, bool):
        return cell.value
    return str(cell)


_NOT_REJECTED = frozenset({Status.UPDATED, Status.SKIPPED, Status.UNCHANGED})


def rejected_rows(counts: Mapping[Status, int], earlier: Mapping[Status, int]) -> int:
    """How many rows a rejects file holds, from a run's counts (`earlier`: on resume, the
    statuses an earlier run left the skipped rows in, as `RejectsSink` reads them)."""
    tallies = (counts, earlier)
    return sum(n for tally in tallies for s, n in tally.items() if s not in _NOT_REJECTED)


def claim_report(
    rows: Rows,
    report: str | PathLike[str] | None,
    resume: bool,
    fingerprint: str | None,
    match: str | None = None,
    limit: int | None = None,
    account: Account | None = None,
) -> ReportWriter | None:
    """The report of a run, locked and checked (the input checked first, if a file), not yet
    written: `start()` it.

    `match` (the job's setting) is kept with how the input was read: resuming with another
    would send the rest of the rows to other leads than the finished ones went to. `limit` is
    kept in the report's meta file: the rows past it were not read. `account` is kept there
    too: rows finished for one account are not finished for another.
    """
    options: dict[str, object] = {"match": match or "default"}
    size, prefix = None, None
    if isinstance(rows, Source):
        if fingerprint is None:
            fingerprint = rows.fingerprint()
            if resume and fingerprint is None:
                raise ConfigError(f"{rows.name}: resuming needs an input file read again")
            size, prefix = rows.fingerprinted_size, rows.prefix_sha256
        options = rows.options() | options
    if not report:
        return None
    keep = rows.keep if isinstance(rows, Source) else ()
    return ReportWriter(
        report,
        resume=resume,
        fingerprint=fingerprint,
        options=options,
        limit=limit,
        keep=keep,
        start=False,
        account=account,
        input_size=size,
        prefix=prefix,
    )


def open_rejects(
    path: str | PathLike[str], rows: Rows, *, start: bool = True
) -> RejectsWriter | SheetRejectsWriter:
    """The rejects file of an input, in its encoding, delimiter, BOM, line ending and quoting;
    a workbook's, a workbook (written only at its end). `start=False`: a text file is opened
    but not emptied until `start()`."""
    if not isinstance(rows, Source) or (rows.header is None and rows.encoding is None):
        return RejectsWriter(path, header=None, start=start)  # records given in Python: JSON lines
    if rows.format == "xlsx" and rows.header is not None:
        return SheetRejectsWriter(path, header=rows.header, header_row=rows.header_line)
    encoding = str(rows.encoding) if rows.encoding is not None else "utf-8"
    titles = rows.titles()
    shape = None
    if rows.encoding is not None:
        shape = (
            shape_of(rows.path, encoding, rows.delimiter, titles)
            if rows.rereadable
            else TextShape(None if rows.encoding.how == "BOM" else b"")  # a pipe: read once
        )
    if rows.header is not None:  # a table: CSV, as read
        delimiter = rows.delimiter or ","
        return RejectsWriter(
            path,
            header=rows.header,
            delimiter=delimiter,
            encoding=encoding,
            shape=shape,
            titles=titles,
            start=start,
        )
    return RejectsWriter(path, header=None, encoding=encoding, shape=shape, start=start)


def handlers(sinks: list[Sink]) -> tuple[Take, Callable[[], None]]:
    """Every outcome to every sink; `flush()` whenever no further outcome is at hand."""
    if len(sinks) == 1:  # the tally alone, as for a run without a report: straight to it
        return sinks[0].write, sinks[0].flush

    writes = [sink.write for sink in sinks]

    def take(outcome: Outcome, row: Row) -> Awaitable[None] | None:
        waits = None
        for write in writes:
            if (wait := write(outcome, row)) is not None:
                waits = [wait] if waits is None else [*waits, wait]
        return _all(waits) if waits is not None else None

    def idle() -> None:
        for sink in sinks:
            sink.flush()

    return take, idle


def reworded(take: Take, reword: Callable[[str], str] | None) -> Take:
    """`take`, given each outcome with its message in `reword`'s words (`run(reword=...)`)."""
    if reword is None:
        return take

    def give(outcome: Outcome, row: Row) -> Awaitable[None] | None:
        if outcome.message:
            item, message = row.item, reword(outcome.message)
            if isinstance(item, Hidden) and item.message == outcome.message:  # `_left_out`
                row = row._replace(item=replace(item, message=message))
            outcome = outcome.model_copy(update={"message": message})
        return take(outcome, row)

    return give


async def _all(waits: list[Awaitable[None]]) -> None:
    for wait in waits:
        await wait


def closed_with(stack: contextlib.AsyncExitStack, sink: _S) -> _S:
    """`sink`, closed when `stack` is (its file left as it was if it was never started).

    A close that fails while an exception ends the job does not replace it: the caller sees
    the job's own exception, the close's failure noted on it and logged, in user words: what
    the sink writes (`the report out.csv`), and why.
    """

    def close(
        exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        try:
            sink.close()
        except Exception as failure:
            if exc is None:
                raise
            reason = failure.strerror if isinstance(failure, OSError) else None
            told = f"closing {sink.what} failed too: {reason or failure}"
            log.warning("%s", told)
            exc.add_note(told)
        return False

    stack.push(close)
    return sink


def finished_rows(writer: ReportWriter | None) -> FinishedRows | None:
    """The rows an earlier run finished, when the report is resumed."""
    return writer.finished if writer is not None and writer.resumed else None

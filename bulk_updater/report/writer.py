"""The report file: one line per row, flushed as rows finish, in input order once the run ends.

Its lock and the input's fingerprint that `--resume` checks are `meta.py`'s (with the `limit` of
the run that last wrote it: the rows past it were not read, so not done). A writer is built in
two steps, so that a run refused anywhere leaves every file as it was: the report locked and
checked (`ReportWriter(..., start=False)`), then, once the run holds all it needs, `start()`.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final

from ..errors import ConfigError, InputChangedError
from ..models import Outcome
from ..state.paths import Account
from . import sort
from .earlier import FinishedRows, RowKeys, drop_partial_line, is_jsonl, read_lines
from .line import COLUMNS, csv_cells, json_line, kept_columns
from .meta import (
    INPUT_SIZE,
    ReportLock,
    check_account,
    check_meta_folder,
    forget_meta,
    meta_folder,
    meta_path,
    moved_meta,
    read_meta,
    write_meta,
)

_BOM: Final = "\ufeff"
#: The default of an option given as None, or left out of the meta (versions before 2026-12-08
#: did so at its default): `--header-row` not given reads the header from the first line.
_DEFAULTS: Final = {"tags_separator": ";", "header_row": 1}
#: The flag that sets each option of how an input is read, to name in a refusal.
_FLAGS: Final = {
    "format": "--format",
    "encoding": "--encoding",
    "delimiter": "--delimiter",
    "sheet": "--sheet",
    "columns": "--map",
    "tags_separator": "--tags-separator",
    "header_row": "--header-row",
    "hidden_rows": "--hidden-rows",
    "match": "--match",
}


def check_report_path(path: str | os.PathLike[str]) -> Path:
    """The report's path, if its name says a format we write."""
    report = Path(path)
    if report.suffix.lower() not in (".csv", ".jsonl", ".ndjson"):
        raise ConfigError(f"{report}: a report must end in .csv or .jsonl")
    return report


def companions(report: str | os.PathLike[str]) -> tuple[Path, ...]:
    """The files a report comes with: its meta file (the lock is on the report itself)."""
    return (meta_path(Path(os.path.realpath(report))),)


def default_report_path(input_path: str) -> Path:
    """`<input>.report.csv` beside the input; `bulk-updater.report.csv` here for `-` (standard
    input, or any input that can be read only once, such as a pipe)."""
    return Path("bulk-updater.report.csv" if input_path == "-" else f"{input_path}.report.csv")


class ReportWriter:
    """Opens, locks and writes one report; `close()` puts its lines in input order."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        resume: bool = False,
        fingerprint: str | None = None,
        options: Mapping[str, Any] | None = None,
        limit: int | None = None,
        keep: Sequence[str] = (),
        start: bool = True,
        account: Account | None = None,
        input_size: int | None = None,
        prefix: Callable[[int], str | None] | None = None,
    ) -> None:
        """`fingerprint` and `options` say which input, read how, and `account` where its rows
        go: `--resume` needs the same, or an input that only grew: `input_size` is how many
        bytes `fingerprint` covers, `prefix(size)` the sha256 of the input's first bytes now.
        `limit`: the run reads only its first rows (kept in the meta file, for the reader).
        `keep`: input columns written after the report's own, from each outcome's `ref`.
        `start=False`: the report is locked and checked, nothing written until `start()`."""
        self.path = check_report_path(path)
        self.keep = kept_columns(keep)
        self.jsonl = is_jsonl(self.path)
        # Through a link, the file itself is locked, written and sorted: the link stays a link,
        # and a second run through another name of the same file finds it locked.
        self._real = Path(os.path.realpath(self.path))
        self.finished = FinishedRows()
        self._prefix = prefix
        self._grew = False  # resumed over an input that rows were added to since
        self.unsorted: str | None = None  # why the final sort failed, if it did
        self._started = False
        new = not os.path.lexists(self._real)
        try:
            self._lock = ReportLock(self._real, self.path)
        except OSError as exc:
            raise ConfigError(f"{self.path}: cannot write the report ({exc.strerror})") from None
        try:
            self.resumed = resume and drop_partial_line(self._real) > 0
            meta = read_meta(self._real) if self.resumed else None
            said = True  # the meta names this run's account (an older version's names none)
            if self.resumed:
                meta = self._check_input(meta, fingerprint, options)
                self._read_finished(keys=fingerprint is None or self._grew)
                answered = self.finished.answered
                said = meta is None or check_account(self.path, meta, account, answered)
            check_meta_folder(self._real)
        except BaseException as exc:
            self._let_go(remove=new)
            if isinstance(exc, OSError):
                raise ConfigError(
                    f"{self.path}: cannot write the report ({exc.strerror})"
                ) from None
            raise
        self._new = new
        self._meta = (fingerprint, options, limit, account, input_size)
        # Not yet where it belongs (moved, or left by an older version), or this run's limit is
        # not the last one's: written anew once the run starts.
        self._moved = meta.get("report") if meta is not None else None
        self._meta_kept = (
            said
            and meta is not None
            and self._moved == os.fspath(self._real)
            and meta.get("limit") == limit
            and not self._grew
        )
        if start:
            self.start()

    def start(self) -> None:
        """Write: the report started over (or continued), then its meta."""
        file = None
        try:
            file = self._file = self._open(append=self.resumed)
            if not self._meta_kept:
                write_meta(self._real, *self._meta)
                if isinstance(self._moved, str) and self._moved != os.fspath(self._real):
                    forget_meta(self._moved)
            self._started = True
        except BaseException as exc:
            if file is not None:
                file.close()
            self._let_go(remove=False)
            if isinstance(exc, OSError):
                raise ConfigError(
                    f"{self.path}: cannot write the report ({exc.strerror})"
                ) from None
            raise

    def _let_go(self, *, remove: bool) -> None:
        """Release the lock of a run that ends before it starts; the empty report it made, gone."""
        try:
            if remove and self._lock.holds(self._real) and self._real.stat().st_size == 0:
                self._real.unlink()
        except OSError:
            pass
        finally:
            self._new = False  # once: the name may be another run's after the release
            self._lock.release()

    def _open(self, *, append: bool) -> IO[str]:
        if not append:
            self._lock.truncate()
        file = open(  # noqa: SIM115 - closed by close()
            self._real, "a", encoding="utf-8", newline="", errors="replace"
        )
        if not self._lock.same_file(file.fileno()):
            file.close()
            raise ConfigError(f"{self.path}: was replaced while this run started; run it again")
        self._csv = csv.writer(file, lineterminator="\n")
        if not append and not self.jsonl:
            file.write(_BOM)  # so that Excel on Windows reads the report as UTF-8
            self._csv.writerow((*COLUMNS, *self.keep))
            file.flush()
        return file

    def _check_input(
        self,
        meta: dict[str, Any] | None,
        fingerprint: str | None,
        options: Mapping[str, Any] | None,
    ) -> dict[str, Any] | None:
        """The meta that lets this report resume with this input, or why none does."""
        if meta is None and fingerprint is not None:
            meta = moved_meta(fingerprint)  # this report, moved since: its input says so
            if meta is None:
                raise InputChangedError(
                    f"{self.path}: cannot resume, what --resume checks of this report is not in "
                    f"{meta_folder()}: the report was moved since its run (and the input with "
                    "it changed), or XDG_STATE_HOME differs from that run's (a cron job's may); "
                    "resume with that run's XDG_STATE_HOME, or start over without --resume"
                )
        stored = meta.get("input_sha256") if meta is not None else None
        read_as = meta.get("input_options") if meta is not None else None
        if fingerprint is not None and stored != fingerprint and not self._grown(meta, stored):
            raise InputChangedError(
                f"{self.path}: cannot resume, the input is not the one this report was started "
                "from; run without --resume (or with another --report) to start over"
            )
        if options is not None and isinstance(read_as, dict):
            kept, keep = read_as.get("keep", []), options.get("keep", [])
            if kept != keep:  # the lines appended would not have the columns of the others
                was = ", ".join(kept) or "none"
                raise InputChangedError(
                    f"{self.path}: cannot resume, the run that started this report kept the "
                    f"columns {was} (now {', '.join(keep) or 'none'}); give the same --keep, or "
                    "start over without --resume"
                )
            was_read, now = _filled(read_as), _filled(options)
            told = (now.keys() & was_read.keys()) - {"keep"}
            changed = sorted(k for k in told if was_read[k] != now[k])
            if changed:
                was = ", ".join(
                    f"{_FLAGS.get(k, k)} {_shown(was_read[k])} (now {_shown(now[k])})"
                    for k in changed
                )
                raise InputChangedError(
                    f"{self.path}: cannot resume, the run that started this report read the "
                    f"input with {was}; give the same options, or start over without --resume"
                )
        return meta

    def _grown(self, meta: dict[str, Any] | None, stored: object) -> bool:
        """Whether the input only grew since this report's run: its first bytes are the ones
        that run fingerprinted, up to a line break (an export it read while it was written)."""
        size = meta.get(INPUT_SIZE) if meta is not None else None
        if not isinstance(size, int) or not isinstance(stored, str) or self._prefix is None:
            return False
        self._grew = self._prefix(size) == stored
        return self._grew

    def _read_finished(self, *, keys: bool) -> None:
        """`keys`: keep which lead each row was too; an input with no fingerprint is checked
        row by row as it is read again."""
        self.finished = FinishedRows(RowKeys() if keys else None)
        for row, status, id, email in read_lines(self._real):
            self.finished.mark(row, status, id, email)

    def write(self, outcome: Outcome) -> None:
        """Append one row's line; `flush()` pushes lines out (the engine calls it whenever it would
        wait for the next outcome, so a crash loses nothing already done)."""
        if self.jsonl:
            self._file.write(json_line(outcome, self.keep))
        else:
            self._csv.writerow(csv_cells(outcome, self.keep))

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        """Close the file and rewrite it in input order, one line per row.

        If the sort fails (a full disk), the report stays as written, complete and resumable,
        only not in input order; `unsorted` says why.
        """
        if not self._started:  # nothing was written
            self._let_go(remove=self._new)
            return
        try:
            self._file.close()
            try:
                sort.sort_report(self._real, jsonl=self.jsonl)
            except OSError as exc:
                self.unsorted = exc.strerror or str(exc)
        finally:
            self._lock.release()

    def __enter__(self) -> ReportWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _filled(options: Mapping[str, Any]) -> dict[str, Any]:
    """How an input was read, with an option left out or None at its default (`_DEFAULTS`)."""
    return {**options, **{k: v for k, v in _DEFAULTS.items() if options.get(k) is None}}


def _shown(value: Any) -> str:
    return "none" if value is None else repr(value) if isinstance(value, str) else str(value)

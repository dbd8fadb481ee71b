"""The report file: one line per row, flushed as rows finish, in input order once the run ends.

Its lock and the input's fingerprint that `--resume` checks are `meta.py`'s (with the `limit` of
the run that last wrote it: the rows past it were not read, so not done).
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final

from ..errors import ConfigError, InputChangedError
from ..models import Outcome
from ..printable import escape_json
from . import sort
from .cells import cell, email_cell, id_cell, one_line
from .meta import ReportLock, lock_path, meta_path, read_meta, write_meta
from .resume import FinishedRows, drop_partial_line, is_jsonl, read_statuses

COLUMNS: Final = (
    "row",
    "line",
    "id",
    "status",
    "http_status",
    "error_code",
    "message",
    "attempts",
    "duration_ms",
    "email",
)
_BOM: Final = "\ufeff"


def check_report_path(path: str | os.PathLike[str]) -> Path:
    """The report's path, if its name says a format we write."""
    report = Path(path)
    if report.suffix.lower() not in (".csv", ".jsonl", ".ndjson"):
        raise ConfigError(f"{report}: a report must end in .csv or .jsonl")
    return report


def companions(report: str | os.PathLike[str]) -> tuple[Path, Path]:
    """The lock file beside a report (beside its target, for a link) and its meta file."""
    real = Path(os.path.realpath(report))
    return lock_path(real), meta_path(real)


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
    ) -> None:
        """`fingerprint` and `options` say which input, read how: `--resume` needs the same.
        `limit`: the run reads only its first rows (kept in the meta file, for the reader).
        `keep`: input columns written after the report's own, from each outcome's `ref`."""
        self.path = check_report_path(path)
        self.keep = _kept_columns(keep)
        self.jsonl = is_jsonl(self.path)
        # Through a link, the file itself is locked, written and sorted: the link stays a link,
        # and a second run through another name of the same file finds it locked.
        self._real = Path(os.path.realpath(self.path))
        self.finished = FinishedRows()
        self.unsorted: str | None = None  # why the final sort failed, if it did
        try:
            self._lock = ReportLock(self._real, self.path)
        except OSError as exc:
            raise ConfigError(f"{self.path}: cannot write the report ({exc.strerror})") from None
        try:
            resuming = resume and self._real.exists() and drop_partial_line(self._real) > 0
            meta = read_meta(self._real) if resuming else None
            if resuming:
                self._check_input(meta, fingerprint, options)
                self._read_finished()
            # Not yet where it belongs, or this run's limit is not the last one's.
            if not resuming or meta is None or "report" not in meta or meta.get("limit") != limit:
                write_meta(self._real, fingerprint, options, limit)
            self._file = self._open(append=resuming)
        except OSError as exc:
            self._lock.release()
            raise ConfigError(f"{self.path}: cannot write the report ({exc.strerror})") from None
        except BaseException:
            self._lock.release()
            raise
        self.resumed = resuming

    def _open(self, *, append: bool) -> IO[str]:
        file = open(  # noqa: SIM115 - closed by close()
            self._real, "a" if append else "w", encoding="utf-8", newline="", errors="replace"
        )
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
    ) -> None:
        stored = meta.get("input_sha256") if meta is not None else None
        read_as = meta.get("input_options") if meta is not None else None
        if fingerprint is not None and stored != fingerprint:
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
            changed = [k for k, v in options.items() if k in read_as and read_as[k] != v]
            if changed:
                was = ", ".join(f"{k} {read_as[k]!r} (now {options[k]!r})" for k in changed)
                raise InputChangedError(
                    f"{self.path}: cannot resume, the run that started this report read the "
                    f"input with {was}; give the same options, or start over without --resume"
                )

    def _read_finished(self) -> None:
        for row, status in read_statuses(self._real):
            self.finished.mark(row, status)

    def write(self, outcome: Outcome) -> None:
        """Append one row's line; `flush()` pushes lines out (the engine calls it whenever it would
        wait for the next outcome, so a crash loses nothing already done)."""
        if self.jsonl:
            record = {
                "row": outcome.row,
                "line": outcome.line,
                "id": one_line(outcome.id),
                "status": outcome.status.value,
                "http_status": outcome.http_status,
                "error_code": outcome.error_code,
                "message": outcome.message,
                "attempts": outcome.attempts,
                "duration_ms": outcome.duration_ms,
                "email": outcome.email,
            }
            if self.keep:
                record.update(zip(self.keep, _kept(outcome, self.keep), strict=True))
            self._file.write(escape_json(json.dumps(record, ensure_ascii=False)) + "\n")
        else:
            self._csv.writerow(
                (
                    outcome.row,
                    "" if outcome.line is None else outcome.line,
                    id_cell(outcome.id),
                    outcome.status.value,
                    "" if outcome.http_status is None else outcome.http_status,
                    cell(outcome.error_code),
                    cell(outcome.message),
                    outcome.attempts,
                    "" if outcome.duration_ms is None else outcome.duration_ms,
                    email_cell(outcome.email),
                    *(cell(text) for text in _kept(outcome, self.keep)),
                )
            )

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        """Close the file and rewrite it in input order, one line per row.

        If the sort fails (a full disk), the report stays as written, complete and resumable,
        only not in input order; `unsorted` says why.
        """
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


def _kept_columns(keep: Sequence[str]) -> tuple[str, ...]:
    for name in keep:
        if name in COLUMNS:
            raise ConfigError(f"--keep {name}: the report has its own `{name}` column")
    return tuple(keep)


def _kept(outcome: Outcome, keep: Sequence[str]) -> list[str]:
    """The kept cells of an outcome's row (its `ref`, from `Source(keep=...)`), by column."""
    ref = outcome.ref
    if not keep:
        return []
    cells = ref if isinstance(ref, Mapping) else {}
    return [text if isinstance(text := cells.get(name), str) else "" for name in keep]

"""The report file: one line per row, flushed as rows finish, in input order once the run ends.

Also owns what lives beside a report: its lock (`<report>.lock`, so two runs cannot write one
report), its meta file (`<report>.meta.json`, the input's fingerprint that `--resume` checks), and
the reading of an earlier report for `--resume`.
"""

from __future__ import annotations

import csv
import fcntl
import json
import os
import re
import stat
import tempfile
from array import array
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final

from .errors import ConfigError, InputChangedError, ReportLockedError
from .models import Outcome, Status

COLUMNS: Final = (
    "row",
    "id",
    "status",
    "http_status",
    "error_code",
    "message",
    "attempts",
    "duration_ms",
    "email",
)
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
_FORMULA_START: Final = ("=", "+", "-", "@")  # tab and CR are escaped before this check
_PLAIN_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,128}")
_PLAIN_EMAIL: Final = re.compile(r"[^\s@=\x00-\x1f\x7f\"',;]+@[^\s@\x00-\x1f\x7f\"',;]+")
_BOM: Final = "\ufeff"


def _one_line(text: str) -> str:
    """Control characters shown as escapes, so every report record is one physical line."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _cell(text: str | None) -> str:
    """A text cell that a spreadsheet will show as text, never run as a formula."""
    if not text:
        return ""
    text = _one_line(text)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _id_cell(text: str) -> str:
    """An id as read when it is a plain token (`-abc123` stays), else neutralised as text."""
    return text if _PLAIN_ID.fullmatch(text) else _cell(text)


def _email_cell(text: str | None) -> str:
    """An email as read when it is a plain address (`+tag@ex.com` stays), else as text."""
    if text and _PLAIN_EMAIL.fullmatch(text):
        return text
    return _cell(text)


def check_report_path(path: str | os.PathLike[str]) -> Path:
    """The report's path, if its name says a format we write."""
    report = Path(path)
    if report.suffix.lower() not in (".csv", ".jsonl", ".ndjson"):
        raise ConfigError(f"{report}: a report must end in .csv or .jsonl")
    return report


def companions(report: str | os.PathLike[str]) -> tuple[Path, Path]:
    """The lock and meta files that live beside a report (beside its target, for a link)."""
    real = Path(os.path.realpath(report))
    return real.with_name(real.name + ".lock"), real.with_name(real.name + ".meta.json")


_STATUSES: Final = tuple(Status)


class FinishedRows:
    """What an earlier run reported per row: one byte each (0: nothing, else the status)."""

    def __init__(self) -> None:
        self._status = bytearray()

    def mark(self, row: int, status: Status) -> None:
        if row >= len(self._status):
            self._status.extend(bytes(row + 1 - len(self._status)))
        self._status[row] = _STATUSES.index(status) + 1

    def status_of(self, row: int) -> Status | None:
        """The row's last status in the earlier run, if it reported one."""
        code = self._status[row] if 0 <= row < len(self._status) else 0
        return _STATUSES[code - 1] if code else None

    def __contains__(self, row: object) -> bool:
        """Whether the row was finished for good (so `--resume` does not send it again)."""
        status = self.status_of(row) if isinstance(row, int) else None
        return status is not None and status.is_final

    def __len__(self) -> int:
        return sum(1 for row in range(len(self._status)) if row in self)

    @property
    def horizon(self) -> int:
        """The highest row the earlier run reported on."""
        return len(self._status) - 1


def _is_jsonl(path: Path) -> bool:
    return path.suffix.lower() in (".jsonl", ".ndjson")


def default_report_path(input_path: str) -> Path:
    """`<input>.report.csv` beside the input; `bulk-updater.report.csv` here for `-` (standard
    input, or any input that can be read only once, such as a pipe)."""
    return Path("bulk-updater.report.csv" if input_path == "-" else f"{input_path}.report.csv")


class ReportWriter:
    """Opens, locks and writes one report; `close()` puts its lines in input order."""

    def __init__(
        self, path: str | os.PathLike[str], *, resume: bool = False, fingerprint: str | None = None
    ) -> None:
        self.path = check_report_path(path)
        self.jsonl = _is_jsonl(self.path)
        # Through a link, the file itself is locked, written and sorted: the link stays a link,
        # and a second run through another name of the same file finds it locked.
        self._real = Path(os.path.realpath(self.path))
        lock_path, self.meta_path = companions(self.path)
        self.finished = FinishedRows()
        self.unsorted: str | None = None  # why the final sort failed, if it did
        try:
            self._lock = _lock(lock_path, self.path)
        except OSError as exc:
            raise ConfigError(f"{self.path}: cannot write the report ({exc.strerror})") from None
        try:
            resuming = resume and self._real.exists() and _drop_partial_line(self._real) > 0
            if resuming:
                self._check_fingerprint(fingerprint)
                self._read_finished()
            self._file = self._open(append=resuming)
            if not resuming:
                self._write_meta(fingerprint)
        except OSError as exc:
            self._lock.close()
            raise ConfigError(f"{self.path}: cannot write the report ({exc.strerror})") from None
        except BaseException:
            self._lock.close()
            raise
        self.resumed = resuming

    def _open(self, *, append: bool) -> IO[str]:
        file = open(  # noqa: SIM115 - closed by close()
            self._real, "a" if append else "w", encoding="utf-8", newline="", errors="replace"
        )
        self._csv = csv.writer(file, lineterminator="\n")
        if not append and not self.jsonl:
            file.write(_BOM)  # so that Excel on Windows reads the report as UTF-8
            self._csv.writerow(COLUMNS)
            file.flush()
        return file

    def _write_meta(self, fingerprint: str | None) -> None:
        self.meta_path.write_text(json.dumps({"input_sha256": fingerprint}) + "\n")

    def _check_fingerprint(self, fingerprint: str | None) -> None:
        try:
            stored = json.loads(self.meta_path.read_text()).get("input_sha256")
        except (OSError, ValueError, AttributeError):
            stored = None
        if fingerprint is not None and stored != fingerprint:
            raise InputChangedError(
                f"{self.path}: cannot resume, the input is not the one this report was started "
                "from; run without --resume (or with another --report) to start over"
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
                "id": _one_line(outcome.id),
                "status": outcome.status.value,
                "http_status": outcome.http_status,
                "error_code": outcome.error_code,
                "message": outcome.message,
                "attempts": outcome.attempts,
                "duration_ms": outcome.duration_ms,
                "email": outcome.email,
            }
            self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        else:
            self._csv.writerow(
                (
                    outcome.row,
                    _id_cell(outcome.id),
                    outcome.status.value,
                    "" if outcome.http_status is None else outcome.http_status,
                    _cell(outcome.error_code),
                    _cell(outcome.message),
                    outcome.attempts,
                    "" if outcome.duration_ms is None else outcome.duration_ms,
                    _email_cell(outcome.email),
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
                sort_report(self._real, jsonl=self.jsonl)
            except OSError as exc:
                self.unsorted = exc.strerror or str(exc)
        finally:
            self._lock.close()

    def __enter__(self) -> ReportWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _drop_partial_line(path: Path, block: int = 1 << 16) -> int:
    """Cut a last line left unfinished (power loss, full disk) and return the size left.

    Half a line could read as a finished row, or open a quote that swallows the lines after it;
    dropped, its row is simply sent again.
    """
    with open(path, "rb+") as file:
        end = file.seek(0, os.SEEK_END)
        position = end
        while position > 0:
            start = max(0, position - block)
            file.seek(start)
            newline = file.read(position - start).rfind(b"\n")
            if newline >= 0:
                keep = start + newline + 1
                break
            position = start
        else:
            keep = 0
        if keep < end:
            file.truncate(keep)
        return keep


def _lock(lock_path: Path, report: Path) -> IO[str]:
    """An exclusive lock tied to this process: the kernel frees it when the process dies."""
    handle = open(lock_path, "a+")  # noqa: SIM115 - the handle is the lock
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip()
        handle.close()
        who = f" (pid {holder})" if holder.isdigit() else ""
        raise ReportLockedError(
            f"{report}: another run is writing this report{who}; "
            "wait for it to finish or use another --report"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def read_statuses(path: Path) -> Iterator[tuple[int, Status]]:
    """(row, status) for every line of a report, in file order (later lines win on --resume)."""
    with open(path, encoding="utf-8-sig", newline="", errors="replace") as file:
        if _is_jsonl(path):
            for line in file:
                record = _json_record(line)
                if record is not None:
                    yield record
            return
        for cells in csv.reader(file):
            if len(cells) > 2 and cells[0].isdigit():
                try:
                    yield int(cells[0]), Status(cells[2])
                except ValueError:
                    continue


def _json_record(line: str) -> tuple[int, Status] | None:
    try:
        data: Any = json.loads(line)
        return int(data["row"]), Status(data["status"])
    except (ValueError, TypeError, KeyError):
        return None


def _row_of(line: bytes, jsonl: bool) -> int | None:
    if jsonl:
        match = re.match(rb'\{"row": ?(\d+)', line)
        return int(match.group(1)) if match else None
    head = line.split(b",", 1)[0]
    return int(head) if head.isdigit() else None


def sort_report(path: Path, *, jsonl: bool) -> None:
    """Rewrite a report in row order keeping each row's last line; memory is 16 bytes per row."""
    offsets = array("q")
    lengths = array("q")
    header = b""
    with open(path, "rb") as src:
        position = 0
        for line in src:
            row = _row_of(line, jsonl)
            if row is None:
                if position == 0 and not jsonl:
                    header = line
            else:
                if row >= len(offsets):
                    grow = row + 1 - len(offsets)
                    offsets.extend(array("q", [-1]) * grow)
                    lengths.extend(array("q", [0]) * grow)
                offsets[row] = position
                lengths[row] = len(line)
            position += len(line)
        # A name of its own: a leftover of an earlier failed sort is never in the way.
        handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".sorting")
        tmp = Path(name)
        try:
            os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))  # the report's own permissions
            with open(handle, "wb", buffering=1 << 16) as dst:
                dst.write(header)
                for offset, length in zip(offsets, lengths, strict=True):
                    if offset >= 0:
                        src.seek(offset)
                        dst.write(src.read(length))
                dst.flush()
                os.fsync(dst.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

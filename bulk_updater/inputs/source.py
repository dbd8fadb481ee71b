"""`Source`: an input file (or standard input), opened and checked as a whole before any request.

Every record read becomes exactly one `(row, LeadUpdate | Invalid)` pair: a record that cannot be
sent becomes `Invalid` with a message naming the column and the problem, and reading goes on. Only
problems with the file as a whole (unreadable, not text, no id column, unknown column) raise
`InputError`, and they do so when the source is opened.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import stat
import sys
from collections.abc import Iterator
from typing import IO, Final, Literal

from ..errors import ConfigError, InputError
from .columns import CsvColumns, Invalid, Item, parse_mapping
from .records import MAX_RECORD, CsvParser, Record, csv_records, json_lines

log = logging.getLogger("bulk_updater")
Format = Literal["csv", "jsonl"]
RowItem = tuple[int, Item]
_SNIFF_BYTES: Final = 8192
_TOO_LARGE: Final = f"the record is larger than {MAX_RECORD >> 20} MiB; it was not read"


def _surrogates(text: str) -> bool:
    """Whether bad UTF-8 survived decoding (as lone surrogates) in `text`."""
    return max(text, default="\0") >= "\udc80" and any("\udc80" <= c <= "\udcff" for c in text)


class Source:
    """A CSV or JSON-lines file, or standard input (`-`), opened and checked as a whole."""

    def __init__(self, path: str | os.PathLike[str], *, format: Format | None = None) -> None:
        path = os.fspath(path)
        self.path = path
        self.name = "standard input" if path == "-" else path
        self.format: Format = format or _format_of(path)
        self.is_stdin = path == "-"
        self._raw = self._open()
        # A pipe, FIFO or terminal can be read once, and a read may block: such input is read in
        # a thread, and cannot be counted in advance or fingerprinted for --resume.
        self.rereadable = not self.is_stdin and stat.S_ISREG(os.fstat(self._raw.fileno()).st_mode)
        if not self.rereadable:
            log.debug("%s: waiting for the first lines", self.name)
        self._sniff()
        self._text = _text(self._raw)
        self._columns: CsvColumns | None = None
        self._records: Iterator[Record] = iter(())
        if self.format == "csv":
            self._records = csv_records(self._text)
            self._columns = self._read_header()
        else:
            self._records = json_lines(self._text)

    def _open(self) -> IO[bytes]:
        if self.is_stdin:
            # Our own reader of file descriptor 0, not `sys.stdin`: a thread blocked in it must
            # not hold a lock that the interpreter needs when it exits.
            try:
                return open(os.dup(sys.stdin.fileno()), "rb")
            except io.UnsupportedOperation:  # no file descriptor: an in-process stand-in
                buffer: IO[bytes] = sys.stdin.buffer
                return buffer
            except (OSError, ValueError, AttributeError):
                raise InputError("standard input cannot be read (is it closed?)") from None
        try:
            if os.path.isdir(self.path):
                raise InputError(f"{self.path}: is a folder; give the path of a CSV or JSONL file")
            return open(self.path, "rb")
        except FileNotFoundError:
            raise InputError(f"{self.path}: no such file; check the path") from None
        except PermissionError:
            raise InputError(f"{self.path}: permission denied; make the file readable") from None
        except OSError as exc:
            raise InputError(f"{self.path}: cannot be read ({exc.strerror})") from None

    def _sniff(self) -> None:
        peek = getattr(self._raw, "peek", None)
        head: bytes = peek(_SNIFF_BYTES)[:_SNIFF_BYTES] if peek else b""
        if b"\x00" in head:
            self.close()
            raise InputError(
                f"{self.name}: is not a text file (binary data found); "
                f"export it as UTF-8 {self.format.upper()}"
            )

    def _read_header(self) -> CsvColumns:
        self._parser = CsvParser()
        try:
            header = self._first_record()
        except InputError:
            self.close()
            raise
        if not header:
            self.close()
            raise InputError(f"{self.name}: is empty; the first line must name the columns")
        if any(_surrogates(cell) for cell in header):
            self.close()
            raise InputError(f"{self.name}: is not UTF-8 text; save it as UTF-8 CSV")
        try:
            return CsvColumns(header, self.name)
        except InputError:
            self.close()
            raise

    def _first_record(self) -> list[str]:
        for _, text in self._records:
            if text is None:
                raise InputError(f"{self.name}: the header line is larger than 1 MiB")
            try:
                cells = self._parser.parse(text)
            except csv.Error as exc:
                raise InputError(
                    f"{self.name}: the header line cannot be read as CSV ({exc})"
                ) from None
            if cells:
                return cells
        return []

    def __iter__(self) -> Iterator[RowItem]:
        try:
            yield from self._csv_rows() if self._columns else self._jsonl_rows()
        finally:
            self.close()

    def _csv_rows(self) -> Iterator[RowItem]:
        assert self._columns is not None
        convert, parse = self._columns.convert, self._parser.parse
        width = len(self._columns.names)
        row = 0
        for _, text in self._records:
            if text is None:
                row += 1
                yield row, Invalid("", _TOO_LARGE)
                continue
            try:
                cells = parse(text)
            except csv.Error as exc:
                row += 1
                yield row, Invalid("", f"the row cannot be read as CSV ({exc}); check its quotes")
                continue
            if not cells or (cells == [""] and width > 1):
                continue  # a blank line is not a record
            row += 1
            yield row, convert(cells)

    def _jsonl_rows(self) -> Iterator[RowItem]:
        row = 0
        for _, line in self._records:
            if line is None:
                row += 1
                yield row, Invalid("", _TOO_LARGE)
                continue
            if not line.strip():
                continue
            row += 1
            yield row, _parse_json_line(line)

    def close(self) -> None:
        if not self.is_stdin:  # a thread may be blocked reading it: it ends with the process
            self._raw.close()

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def fingerprint(self) -> str | None:
        """sha256 of the file's bytes, to tell on `--resume` whether the input changed; None
        for input that can be read only once (standard input, a pipe)."""
        if not self.rereadable:
            return None
        digest = hashlib.sha256()
        with open(self.path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
        return digest.hexdigest()

    def count(self) -> int | None:
        """How many records the file holds (one extra pass), or None for input read only once."""
        if not self.rereadable:
            return None
        with open(self.path, "rb") as fh:
            text = _text(fh)
            if self.format == "jsonl":
                return sum(1 for _, line in json_lines(text) if line is None or line.strip())
            parser = CsvParser()
            width = len(self._columns.names) if self._columns else 1
            records = 0
            for _, record in csv_records(text):
                try:
                    cells = parser.parse(record) if record is not None else ["x"]
                except csv.Error:
                    cells = ["x"]
                if cells and (cells != [""] or width == 1):
                    records += 1
            return records - 1  # the header


def _text(raw: IO[bytes]) -> io.TextIOWrapper:
    """The bytes as text, split at LF only and kept as they are (CRLF stays whole; a lone CR
    belongs to its line); bad UTF-8 survives as surrogates, so one row can be blamed for it."""
    return io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="\n")


def _parse_json_line(line: str) -> Item:
    if _surrogates(line):
        return Invalid("", "the line is not valid UTF-8 text")
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        return Invalid("", f"the line is not valid JSON ({exc.msg} at column {exc.colno})")
    except RecursionError:
        return Invalid("", "the line's JSON is nested too deeply")
    if not isinstance(record, dict):
        return Invalid("", 'the line must be a JSON object like {"id": "...", ...}')
    return parse_mapping(record)


def _format_of(path: str) -> Format:
    if path == "-":
        raise ConfigError("reading standard input needs --format csv or --format jsonl")
    lowered = path.lower()
    if lowered.endswith(".csv"):
        return "csv"
    if lowered.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    raise ConfigError(f"{path}: cannot tell the format; name it .csv or .jsonl, or pass --format")

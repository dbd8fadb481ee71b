"""Records out of a text stream, in bounded memory: CSV records and JSON lines, with line numbers.

A record is at most `MAX_RECORD` characters. A longer one is skipped to its true end, holding no
more than one chunk of it at a time, and given as `None`, so it becomes one `invalid` row and the
record after it is read as it should be. A CSV record's end is found here, by following the quoting
rules of Python's `csv` module (strict mode, the same dialect), and only then is the record parsed:
so no text inside a cell can ever be taken for a record of its own, whatever goes wrong in it.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from typing import Final, TextIO

MAX_RECORD: Final = 1 << 20  # characters of one CSV record or JSON line
CHUNK: Final = 1 << 16  # characters read at a time
#: What becomes of a record longer than `MAX_RECORD`: one `invalid` row.
TOO_LARGE: Final = f"the record is larger than {MAX_RECORD >> 20} MiB; it was not read"

# Where the CSV quoting rules stand at a point of a record.
_START: Final = 0  # at the start of a field
_PLAIN: Final = 1  # inside a field that is not quoted
_QUOTED: Final = 2  # inside a quoted field
_QUOTE: Final = 3  # just after a quote inside a quoted field (its end, or half of "")

csv.field_size_limit(MAX_RECORD + 1)  # the record limit above is the one that applies

TextRecord = tuple[int, str | None]  # (line number where the record starts, its text or None)


def _advance(text: str, state: int, delimiter: str) -> int:
    """The quoting state after `text` (no line break in it), from `state`."""
    position, end = 0, len(text)
    while position < end:
        if state == _QUOTED:
            quote = text.find('"', position)
            if quote < 0:
                return _QUOTED
            position, state = quote + 1, _QUOTE
        elif state == _QUOTE:
            char = text[position]
            if char == '"':
                position, state = position + 1, _QUOTED
            elif char == delimiter:
                position, state = position + 1, _START
            else:
                state = _PLAIN  # malformed; parsing the record reports it
        else:
            if state == _START and text[position] == '"':
                position, state = position + 1, _QUOTED
                continue
            comma = text.find(delimiter, position)
            if comma < 0:
                return _PLAIN
            position, state = comma + 1, _START
    return state


def _line_break(chunk: str) -> int:
    """How many characters of line break end the chunk: 2 for CRLF, 1 for LF, else 0."""
    if not chunk.endswith("\n"):
        return 0
    return 2 if chunk.endswith("\r\n") else 1


def _csv_break(chunk: str) -> int:
    """How many characters of line break end the chunk: 2 for CRLF, 1 for LF or CR, else 0."""
    last = chunk[-1:]
    if last == "\n":
        return 2 if chunk.endswith("\r\n") else 1
    return 1 if last == "\r" else 0


def csv_records(
    stream: TextIO,
    delimiter: str = ",",
    limit: int = MAX_RECORD,
    start: int = 1,
    first: str | Sequence[str] = "",
) -> Iterator[TextRecord]:
    """Each CSV record of `stream`, whole, with its first line (the stream's first is `start`).

    `stream` is opened with `newline=""`: a line ends in LF, CRLF or a bare CR (classic Mac), all
    kept as they are, so a line break inside a quoted cell stays what it was. `first` is what
    was read of the stream already (to find the delimiter: a line, or the lines), read again here
    first.
    """
    read = stream.readline
    line = start - 1
    # The lines read already, last first; then, after a CR, what was read to see whether an LF
    # comes next.
    ahead = [first] if isinstance(first, str) else list(first)
    ahead = [text for text in reversed(ahead) if text]
    pending: str | None = ahead.pop() if ahead else None
    while True:
        if pending is None:
            chunk = ahead.pop() if ahead else read(CHUNK)
        else:
            chunk, pending = pending, None
        if chunk.endswith("\n") and '"' not in chunk and len(chunk) <= limit:
            line += 1  # the usual record: a whole line, nothing quoted in it
            yield line, chunk
            continue
        pending = chunk  # read again below, by the rules for any record
        parts: list[str] = []
        size, state, start = 0, _START, line + 1
        while True:
            if pending is None:
                chunk = ahead.pop() if ahead else read(CHUNK)
            else:
                chunk, pending = pending, None
            if chunk.endswith("\r"):  # a CRLF may have been split by the size of a read
                more = ahead.pop() if ahead else read(CHUNK)
                if more.startswith("\n"):
                    chunk, more = chunk + "\n", more[1:]
                pending = more or None
            if not chunk:
                if parts or size:
                    yield start, "".join(parts) if size <= limit else None
                return
            cut = _csv_break(chunk)
            body = chunk[: len(chunk) - cut] if cut else chunk
            if cut and state == _START and '"' not in body:
                state = _PLAIN  # the common case: a whole record on one line, nothing quoted
            else:
                state = _advance(body, state, delimiter)
            size += len(chunk)
            if size <= limit:
                parts.append(chunk)
            elif parts:
                parts = []  # too large: keep reading to its end, without keeping it
            if cut:
                line += 1
                if state != _QUOTED:
                    break
        yield start, "".join(parts) if size <= limit else None


def json_lines(stream: TextIO, limit: int = MAX_RECORD) -> Iterator[TextRecord]:
    """Each line of `stream`, with its number; `None` for a line longer than `limit`."""
    read = stream.readline
    line = 0
    while True:
        chunk = read(CHUNK)
        if not chunk:
            return
        line += 1
        if _line_break(chunk):
            yield line, chunk
            continue
        size, parts = len(chunk), [chunk]
        while (more := read(CHUNK)) and not _line_break(more):
            size += len(more)
            if size <= limit:
                parts.append(more)
        size += len(more)
        if size <= limit:
            parts.append(more)
        yield line, "".join(parts) if size <= limit else None


class CsvParser:
    """Parses one whole record at a time with a single `csv.reader` (cheaper than one each)."""

    def __init__(self, delimiter: str = ",") -> None:
        self._text: str | None = None
        self._reader = csv.reader(self, delimiter=delimiter, strict=True)

    def __iter__(self) -> CsvParser:
        return self

    def __next__(self) -> str:
        text, self._text = self._text, None
        if text is None:
            raise StopIteration
        return text

    def parse(self, text: str) -> list[str]:
        """The cells of one record; raises `csv.Error` for a malformed one."""
        self._text = text
        try:
            return next(self._reader)
        except StopIteration:
            return []
        finally:
            self._text = None

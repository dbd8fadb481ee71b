"""`--rejects`: the rows that did not end `updated`, as they were read, ready to fix and reload.

A CSV gives a CSV with the input's own header and cells, in the input's own delimiter and
encoding (its BOM or none, line endings and quoting too; each row as its own text when it was
read as text), followed by `_status` and `_message`; JSON lines and dicts give JSON lines, each
record with `_status` and `_message` added, in the input's encoding too (a workbook gives a
workbook: `sheet_rejects.py`). The reader ignores those two columns, so the file goes back in as
the input with the same options. Lines are written as rows finish and put in input order when
the run ends.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Final, Literal

from ..errors import ConfigError
from ..inputs.schema import RAW_COLUMN, REJECTS_COLUMNS
from ..models import Status
from ..printable import escape_json
from .formulas import cell
from .sort import LineIndex, rewrite

_WIDE: Final = {"utf-16": ("utf-16-le", b"\xff\xfe"), "utf-32": ("utf-32-le", b"\xff\xfe\x00\x00")}
_UTF8: Final = ("utf-8", "utf-8-sig")
# UTF-32 LE's BOM begins with UTF-16 LE's: the longer ones first.
_BOM_CODECS: Final = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_HEAD: Final = 1 << 16


@dataclass(frozen=True, slots=True)
class TextShape:
    """How an input file's bytes are laid out beyond its cells, so that its rejects file keeps
    them and a diff against the input shows only the rows."""

    bom: bytes | None = None  # the input's BOM, b"" for none; None: the encoding's usual one
    line_end: str = "\n"
    quote_all: bool = False  # every cell of the header quoted: every cell is written quoted


def shape_of(
    path: str | os.PathLike[str], encoding: str, delimiter: str | None, above: str = ""
) -> TextShape:
    """The shape of a text file, from its header (the line after the text `above` it): its
    BOM, line ending, and quoting."""
    with open(path, "rb") as file:
        head = file.read(_HEAD)
    bom = next((b for b, _ in _BOM_CODECS if head.startswith(b)), b"")
    codec = next((c for b, c in _BOM_CODECS if b == bom), _codec(encoding)[0])
    text = head[len(bom) :].decode(codec, errors="replace")[len(above) :]
    end = min((i for i in (text.find("\r"), text.find("\n")) if i >= 0), default=-1)
    if end < 0:
        return TextShape(bom)
    line_end = "\r\n" if text.startswith("\r\n", end) else text[end]
    first = text[:end]
    cells = next(csv.reader([first], delimiter=delimiter or ","), [])
    quoted = (delimiter or ",").join('"' + c.replace('"', '""') + '"' for c in cells)
    return TextShape(bom, line_end, quote_all=bool(cells) and first == quoted)


class RejectsWriter:
    """Writes one rejects file; `close()` puts its lines in input order."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        header: tuple[str, ...] | None,
        delimiter: str = ",",
        encoding: str = "utf-8-sig",
        shape: TextShape | None = None,
        titles: str = "",
        start: bool = True,
    ) -> None:
        """`shape`: the input's BOM, line ending and quoting, kept (by default, LF, the cells
        quoted only when they must be, and the encoding's usual BOM). `titles`: the input's
        lines above its header, kept so that the same `--header-row` reads the file.
        `start=False`: the file is opened, not yet emptied, until `start()`."""
        self._started = False
        self.path = Path(path)
        self.table = header is not None
        suffixes = (".csv", ".tsv", ".txt") if self.table else (".jsonl", ".ndjson")
        if self.path.suffix.lower() not in suffixes:
            kind = (
                "a table, so the rejects file is CSV: name it .csv"
                if self.table
                else ("JSON lines or records, so the rejects file is JSON lines: name it .jsonl")
            )
            raise ConfigError(f"--rejects {self.path}: the input is {kind}")
        names = [h.strip() for h in header or ()]
        while names and not names[-1]:  # empty columns at the end: debris the reader leaves out
            names.pop()
        self._keep = [i for i, h in enumerate(names) if h not in REJECTS_COLUMNS]
        # A row of a header with no rejects columns goes back as its own text: only then is every
        # cell of it kept in its place.
        self._width = len(header or ()) if len(self._keep) == len(names) else -1
        self._trailing = len(header or ()) - len(names)
        self._delimiter = delimiter
        shape = shape or TextShape()
        self._line_end = shape.line_end
        self._quoting: Literal[0, 1] = csv.QUOTE_ALL if shape.quote_all else csv.QUOTE_MINIMAL
        codec, bom = _codec(encoding)
        if shape.bom is not None:  # the input's own, and the byte order it says
            bom = shape.bom
            codec = next((c for b, c in _BOM_CODECS if b == bom and bom), codec)
        elif not self.table and not codec.startswith(("utf-16", "utf-32")):
            bom = b""  # JSON lines: no UTF-8 BOM, as for the JSON-lines report
        self._codec = codec
        self._index = LineIndex()
        self._header = bom + self._encode(titles)
        if header is not None:
            self._header += self._encode(
                self._csv([*(header[i] for i in self._keep), *REJECTS_COLUMNS])
            )
        self._position = len(self._header)
        self._file = self._claim()
        if start:
            self.start()

    def _claim(self) -> BinaryIO:
        """The file opened for writing, not yet emptied: a run refused later leaves it as it was."""
        self._new = not os.path.lexists(self.path)
        try:
            if not self._new and not stat.S_ISREG(os.stat(self.path).st_mode):
                raise ConfigError(
                    f"{self.path}: not a regular file (a FIFO, a device or a folder); choose "
                    "another --rejects"
                )
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_NONBLOCK | os.O_CLOEXEC, 0o666)
        except OSError as exc:
            raise ConfigError(f"{self.path}: cannot write the rejects ({exc.strerror})") from None
        os.set_blocking(fd, True)
        return open(fd, "wb")

    def start(self) -> None:
        """Empty the file and write its header: the run goes ahead."""
        self._file.truncate(0)
        self._file.write(self._header)
        self._started = True

    def _csv(
        self, cells: list[str], quoting: Literal[0, 1] | None = None, end: str | None = None
    ) -> str:
        buffer = io.StringIO()
        # "\r\n" so that a cell holding a bare CR is quoted too; the line ends as the input's.
        csv.writer(
            buffer,
            delimiter=self._delimiter,
            lineterminator="\r\n",
            quoting=self._quoting if quoting is None else quoting,
        ).writerow(cells)
        return buffer.getvalue()[:-2] + (self._line_end if end is None else end)

    def _encode(self, text: str) -> bytes:
        # Bad UTF-8 read from standard input goes back out as the bytes it was.
        errors = "surrogateescape" if self._codec == "utf-8" else "replace"
        return text.encode(self._codec, errors=errors)

    def _json(self, record: dict[str, Any]) -> bytes:
        line = escape_json(json.dumps(record, ensure_ascii=False, default=str)) + self._line_end
        try:
            return line.encode(self._codec, errors="surrogateescape")
        except UnicodeEncodeError:  # not all of it fits the encoding: escaped, so nothing is lost
            return self._encode(json.dumps(record, default=str) + self._line_end)

    def write(
        self, number: int, raw: object, status: Status, message: str, fallback: dict[str, Any]
    ) -> None:
        """One rejected row: `raw` as read (cells, a JSON line, a dict); `fallback` stands for
        it when nothing was kept (a record too large, a `LeadUpdate` given in Python)."""
        if self.table:
            data = self._encode(self._table_line(raw, status, message))
        else:
            record = _record(raw, fallback)
            record.update(_status=status.value, _message=message)
            data = self._json(record)
        self._file.write(data)
        self._index.add(number, self._position, len(data))
        self._position += len(data)

    def _table_line(self, raw: object, status: Status, message: str) -> str:
        if isinstance(raw, str):  # a record that cannot be read: its text as read, to fix
            return _body(raw)[0] + self._delimiter + self._csv([status.value, cell(message)])
        cells: tuple[str, ...] = raw if isinstance(raw, tuple) else ()
        text = getattr(raw, "text", None)  # a CSV record's text as read (`inputs.items.Cells`)
        if isinstance(text, str) and len(cells) == self._width:
            line = self._own_line(cells, text, status, message)
            if line is not None:
                return line
        kept = [cells[i] if i < len(cells) else "" for i in self._keep]
        extra = [c for c in cells[max(self._keep, default=-1) + 1 :] if c.strip()]
        return self._csv([*kept, status.value, cell(message), *extra])

    def _own_line(
        self, cells: tuple[str, ...], text: str, status: Status, message: str
    ) -> str | None:
        """The row's own text, its quoting and its line break, with `_status` and `_message`
        added in its style; None when its text cannot stay as it was.

        The header's empty columns at its end are where the two go (the reader refuses a column
        with no name before them), so the row's own empty cells there give way to them. A record
        with no line break (the file's last) gets the file's: rows are written as they finish,
        and the next must not join it."""
        body, end = _body(text)
        if self._trailing:
            empties = self._delimiter * self._trailing
            if any(cells[-self._trailing :]) or not body.endswith(empties):
                return None
            body, cells = body[: -len(empties)], cells[: -self._trailing]
        quoted = self._delimiter.join('"' + c.replace('"', '""') + '"' for c in cells)
        quoting: Literal[0, 1] = csv.QUOTE_ALL if cells and body == quoted else csv.QUOTE_MINIMAL
        added = self._csv([status.value, cell(message)], quoting, end or self._line_end)
        return body + self._delimiter + added

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        """Close the file and put its lines in input order (a file never started: untouched)."""
        mine = os.fstat(self._file.fileno())
        self._file.close()
        if not self._started and self._new:  # made by this run, which never began: gone
            with contextlib.suppress(OSError):
                found = os.stat(self.path)
                if (found.st_dev, found.st_ino, found.st_size) == (mine.st_dev, mine.st_ino, 0):
                    self.path.unlink()
        if self._started and not self._index.ordered:
            rewrite(self.path, self._header, self._index)


def _body(text: str) -> tuple[str, str]:
    """A record's text without its line break, and that break (CRLF, LF, CR or none)."""
    cut = 2 if text.endswith("\r\n") else 1 if text.endswith(("\n", "\r")) else 0
    return text[: len(text) - cut], text[len(text) - cut :]


def _codec(encoding: str) -> tuple[str, bytes]:
    """The codec a rejects file is written in, and its BOM: the input's encoding, read back the
    same way with the same options (UTF-16 and UTF-32 with a BOM; UTF-8 with one, as Excel
    wants; any spelling of a name: `UTF_8_SIG`, `utf16`)."""
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        name = encoding
    if name in _WIDE:
        return _WIDE[name]
    if name in _UTF8:
        return "utf-8", codecs.BOM_UTF8
    return name, b""


def _record(raw: object, fallback: dict[str, Any]) -> dict[str, Any]:
    """A JSON record of the row as it was read."""
    if isinstance(raw, str):
        try:
            value = json.loads(raw)
        except (ValueError, RecursionError):
            value = None
        return dict(value) if isinstance(value, dict) else {RAW_COLUMN: raw.rstrip("\r\n")}
    if isinstance(raw, Mapping):
        return {str(k): v for k, v in raw.items()}
    return dict(fallback)

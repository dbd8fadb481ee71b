"""CSV as a table: the delimiter found from the header line, the header, then each record's cells.

A record whose cells are all empty (`,,`, a spreadsheet's empty row) is a blank line: skipped,
not counted.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from typing import Final, TextIO

from ..errors import InputError
from .records import _CHUNK, CsvParser, csv_records

DELIMITERS: Final = (",", ";", "\t", "|")
_QUOTED: Final = re.compile(r'"[^"]*"')
_EXCEL_SEP: Final = re.compile(r'"?sep=([^\r\n"])"?[,;\t|]*\r?\n?', re.IGNORECASE)

#: (line, cells), or (line, None) for a record too large, or (line, problem) for one unreadable.
TableRecord = tuple[int, list[str] | str | None]


def sniff_delimiter(line: str) -> str:
    """The delimiter of a header line: the most frequent of `,` `;` TAB `|` outside quotes."""
    bare = _QUOTED.sub("", line)
    counts = {d: bare.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])  # ties go to the earlier: `,` first
    return best if counts[best] else ","


def excel_delimiter(line: str) -> str | None:
    """The delimiter an Excel `sep=;` first line names, or None if `line` is not one."""
    match = _EXCEL_SEP.fullmatch(line.removeprefix("\ufeff"))
    return match.group(1) if match else None


class _Rewound:
    """A text stream whose first line was already read (to find the delimiter), put back."""

    def __init__(self, stream: TextIO, first: str) -> None:
        self._stream = stream
        self._first: str | None = first

    def readline(self, size: int = -1) -> str:
        first, self._first = self._first, None
        return first if first is not None else self._stream.readline(size)


def _blank(cells: list[str]) -> bool:
    return not any(cell.strip() for cell in cells)


class CsvTable:
    """The records of a CSV text stream, as cells, split by `delimiter`."""

    def __init__(self, stream: TextIO, first: str, delimiter: str, name: str) -> None:
        self.name = name
        self._records = csv_records(_Rewound(stream, first), delimiter)  # type: ignore[arg-type]
        self._parser = CsvParser(delimiter)

    def header(self) -> list[str]:
        for _, text in self._records:
            if text is None:
                raise InputError(f"{self.name}: the header line is larger than 1 MiB")
            try:
                cells = self._parser.parse(text)
            except csv.Error as exc:
                raise InputError(
                    f"{self.name}: the header line cannot be read as CSV ({exc})"
                ) from None
            if cells and not _blank(cells):
                return cells
        raise InputError(f"{self.name}: is empty; the first line must name the columns")

    def rows(self) -> Iterator[TableRecord]:
        parse = self._parser.parse
        for line, text in self._records:
            if text is None:
                yield line, None
                continue
            try:
                cells = parse(text)
            except csv.Error as exc:
                yield line, f"the row cannot be read as CSV ({exc}); check its quotes"
                continue
            if cells and not _blank(cells):
                yield line, cells

    @staticmethod
    def count(stream: TextIO, delimiter: str) -> int:
        """Records after the header, counted as `rows()` would yield them."""
        first = stream.readline(_CHUNK)
        table = CsvTable(stream, first, delimiter, "")
        try:
            table.header()
        except InputError:
            return 0
        return sum(1 for _ in table.rows())

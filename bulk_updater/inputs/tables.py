"""CSV as a table: the delimiter found from the header line and a few after it, the header, then
each record's cells.

Records after the header come as they are, blank ones too (`,,`, a spreadsheet's empty row):
`tablerows.py` decides what is a row.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Final, TextIO

from ..errors import InputError
from .items import Cells
from .records import CHUNK, CsvParser, csv_records
from .schema import ColumnMap, column_for

DELIMITERS: Final = (",", ";", "\t", "|")
_QUOTED: Final = re.compile(r'"[^"]*"')
_EXCEL_SEP: Final = re.compile(r'"?sep=([^\r\n"])"?[,;\t|]*\r?\n?', re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A record that cannot be read: why, and what it held, for the report and `--rejects` (a
    CSV record's text, or a sheet row's cells)."""

    problem: str
    raw: str | tuple[str, ...]
    cells: list[str]  # as far as they can be told, for the row's id and email in the report


#: (line, cells: a CSV record's `Cells`, a sheet row's list), or (line, None) for a record too
#: large, or (line, `Unreadable`).
TableRecord = tuple[int, Sequence[str] | Unreadable | None]


#: Lines after the header read to find the delimiter.
SNIFF_LINES: Final = 4


def sniff_delimiter(
    line: str, after: Sequence[str] = (), mapping: ColumnMap | None = None
) -> tuple[str, bool]:
    """The delimiter of a header `line` and the few lines `after` it: of `,` `;` TAB `|`, the one
    that splits them all into as many cells (several cells), else the most frequent in the header
    outside quotes; and whether the rows confirm it (it alone splits them so).

    The header alone can mislead: a `;` file whose header names `Umsatz (EUR, netto)` holds as
    many commas as semicolons there, but its rows split into as many cells as the header by `;`
    only. When its rows hold commas too (`1500,50`, notes), several split them alike: the one
    whose header cells name the most known columns (by `mapping` too) is taken, and is sure."""
    bare = unquoted(line)
    counts = {d: bare.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])  # ties go to the earlier: `,` first
    counted = best if counts[best] else ","
    widths = {d: _widths(line, after, d) for d in DELIMITERS if counts[d]}
    fits = [d for d, (header, rows) in widths.items() if rows and set(rows) == {header}]
    if len(fits) > 1:
        known = {d: _known(line, d, mapping) for d in fits}
        fits = [d for d in fits if known[d] == max(known.values())]
        if len(fits) == 1:
            return fits[0], True
    if counted in fits or not fits:
        return counted, fits == [counted]
    return max(fits, key=lambda d: widths[d][0]), len(fits) == 1


def _known(line: str, delimiter: str, mapping: ColumnMap | None) -> int:
    """How many cells of the header `line`, split by `delimiter`, name a known column."""
    try:
        header = next(csv.reader([line.removeprefix("\ufeff")], delimiter=delimiter), [])
    except csv.Error:
        return 0
    return sum(column_for(name.strip(), mapping) is not None for name in header)


def unquoted(line: str) -> str:
    """A CSV line without its quoted parts (a delimiter in them splits nothing)."""
    return _QUOTED.sub("", line)


def _widths(line: str, after: Sequence[str], delimiter: str) -> tuple[int, list[int]]:
    """How many cells `delimiter` splits the header `line` into, and each non-blank row after."""
    try:
        header = next(csv.reader([line], delimiter=delimiter), [])
        rows = list(csv.reader(io.StringIO("".join(after)), delimiter=delimiter))
    except csv.Error:
        return 0, []
    return len(header), [len(row) for row in rows if not _blank(row)]


def excel_delimiter(line: str) -> str | None:
    """The delimiter an Excel `sep=;` first line names, or None if `line` is not one."""
    match = _EXCEL_SEP.fullmatch(line.removeprefix("\ufeff"))
    return match.group(1) if match else None


def _blank(cells: list[str]) -> bool:
    return not any(cell.strip() for cell in cells)


class CsvTable:
    """The records of a CSV text stream, as cells, split by `delimiter`."""

    def __init__(
        self,
        stream: TextIO,
        first: str | Sequence[str],
        delimiter: str,
        name: str,
        first_line: int = 1,
    ) -> None:
        """`first`: the first line (or lines) of `stream`, already read."""
        self.name = name
        self._records = csv_records(stream, delimiter, start=first_line, first=first)
        self._parser = CsvParser(delimiter)
        self._delimiter = delimiter
        self.header_line = first_line  # the line `header()` found the header on

    def header(self, given: int | None = None) -> list[str]:
        """The first record with anything in it; with `given` (`--header-row`), that line's."""
        for line, text in self._records:
            if text is None:
                raise InputError(f"{self.name}: the header line is larger than 1 MiB")
            try:
                cells = self._parser.parse(text)
            except csv.Error as exc:
                raise InputError(
                    f"{self.name}: the header line cannot be read as CSV ({exc})"
                ) from None
            if cells and not _blank(cells):
                self.header_line = line
                return cells
            if given is not None:
                raise InputError(
                    f"{self.name}: line {line} is empty; --header-row {given} must be the line "
                    "that names the columns"
                )
        if given is not None:
            raise InputError(f"{self.name}: has no line {given} (--header-row {given})")
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
                problem = f"the row cannot be read as CSV ({exc}); check its quotes"
                yield line, Unreadable(problem, text, self._lenient(text))
                continue
            kept = Cells(cells)  # as a `Row` keeps them, made once
            kept.text = text
            yield line, kept

    def _lenient(self, text: str) -> list[str]:
        """The cells of a malformed record as a lenient reader sees them (`"Bo"b` is `Bob"`)."""
        try:
            return next(csv.reader([text], delimiter=self._delimiter), [])
        except csv.Error:
            return []


def skip_lines(stream: TextIO, lines: int, name: str) -> None:
    """Read past the first `lines` lines (title rows above the header)."""
    for _ in range(lines):
        while True:
            chunk = stream.readline(CHUNK)
            if not chunk:
                raise InputError(f"{name}: has no line {lines + 1} (--header-row {lines + 1})")
            if chunk.endswith(("\n", "\r")):
                break


@dataclass(slots=True)
class CsvHead:
    """A CSV read up to its header: the table, its delimiter, and the lines that chose it."""

    table: CsvTable
    delimiter: str
    header: list[str]
    #: Neither given nor settled by the rows: the header's refusal may be the delimiter's fault.
    unsure: bool
    first_line: str  # the header's line (or Excel's `sep=;` line) as read
    sep_line: str  # Excel's `sep=;` line, kept for `--rejects`; empty if none


def read_head(
    stream: TextIO,
    name: str,
    *,
    header_row: int | None,
    delimiter: str | None,
    mapping: ColumnMap,
    look_ahead: bool,
) -> CsvHead:
    """Read a CSV `stream` to its header: past the title rows above `header_row`, the delimiter
    given, else Excel's `sep=;` first line, else found (`sniff_delimiter`). `look_ahead`: the
    lines after the header may be read to find it (not a pipe's)."""
    start = header_row or 1
    skip_lines(stream, start - 1, name)  # title rows above the header
    first = stream.readline(1 << 16)
    # Excel's `sep=;` first line: the delimiter, then the header (not below title rows)
    excel = excel_delimiter(first) if header_row is None else None
    given = delimiter or excel
    # A pipe's next lines may come one at a time, each to be sent before the next is written.
    ahead = _lines(stream, SNIFF_LINES) if not given and look_ahead else []
    found, sure = sniff_delimiter(first, ahead, mapping)
    table = CsvTable(stream, [first, *ahead], given or found, name, start)
    sep_line = first.removeprefix("\ufeff") if excel is not None else ""
    if sep_line:
        table.header()
    header = table.header(header_row)
    return CsvHead(table, given or found, header, not (given or sure), first, sep_line)


def _lines(stream: TextIO, most: int) -> list[str]:
    """Up to `most` lines of `stream` (fewer at its end)."""
    lines = []
    for _ in range(most):
        line = stream.readline(1 << 16)
        if not line:
            break
        lines.append(line)
    return lines

"""What is read around a header the tool refuses, to say what is wrong with it (`Sample`), and
the messages only those rows can word: a title above the header, a given header row that is now
a row of data, a workbook's sheet with no header, a header split by the wrong delimiter.

Read only once the header is refused: a file that is read well never pays for it.
"""

from __future__ import annotations

import csv
import itertools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from .encoding import Encoding, text, text_problem
from .records import MAX_RECORD, CsvParser
from .schema import ColumnMap, column_for
from .suggest import API_ID, SAMPLE_ROWS, hint
from .tables import DELIMITERS, CsvHead, skip_lines, unquoted

#: Lines above a given header line looked at when it is no header (a title line fewer tonight).
ABOVE: Final = 5


@dataclass(frozen=True, slots=True)
class Sample:
    """The first rows after a table's header, `(line, cells)`, and what is wrong with the file's
    text (its encoding), if anything: read only to word a problem with the header."""

    rows: list[tuple[int, list[str]]] = field(default_factory=list)
    text_problem: str | None = None
    sheet: str | None = None  # a workbook's: the sheet read, and its other (visible) sheets
    other_sheets: tuple[str, ...] = ()
    delimiter_problem: str | None = None  # a header cell holds another delimiter than the one
    above: list[tuple[int, list[str]]] = field(default_factory=list)  # a given header's

    def column(self, index: int) -> list[str]:
        """The values of the column at `index` (of the cells as read), empty ones left out, and
        rows of one value too: a report's footer or a note, not a record (`Copyright …`)."""
        return [cells[index] for _, cells in self.rows
                if index < len(cells) and cells[index].strip() and _filled(cells) > 1]  # fmt: skip


def _filled(cells: list[str]) -> int:
    return sum(1 for cell in cells if cell.strip())


def read_sample(
    records: Iterable[tuple[int, object]],
    text_problem: str | None = None,
    sheets: Sequence[str] = (),
    delimiter_problem: str | None = None,
    above: Iterable[tuple[int, list[str]]] = (),
) -> Sample:
    """A `Sample` of the first records (a record that is no list of cells is left out);
    `sheets`: a workbook's, the one read first; `above`: the rows above a given header row."""
    rows = [(line, list(cells)) for line, cells in itertools.islice(records, SAMPLE_ROWS)
            if isinstance(cells, list | tuple)]  # fmt: skip
    sheet = sheets[0] if sheets else None
    return Sample(rows, text_problem, sheet, tuple(sheets[1:]), delimiter_problem, list(above))


def title_message(
    names: list[str], sample: Sample, mapping: ColumnMap | None, line: int = 1
) -> str | None:
    """The message for a header (on `line`) that names no column and is likely a title above
    the real header (the first row below with several cells, one a column the tool knows), or
    a row of data below it (it holds a lead id: the nearest such row above or below), or None.

    The delimiter was found from the title, which holds none: a row below read as one cell is
    split by each other delimiter too, so that a title above a `;` or TAB header is named.
    """
    first = ", ".join(f"`{n}`" for n in names if n)
    where = "the first line" if line == 1 else f"line {line}"
    lead = next((name for name in names if API_ID.fullmatch(name)), None)
    if lead is not None:  # a header row given that is now a row of data (a title line fewer)
        found = _nearest_header([*reversed(sample.above), *sample.rows], mapping)
        if found is not None:
            row_line, shown = found
            return (
                f"{where} looks like a row of data (it holds the lead id `{lead}`), not the "
                f"header: the header looks to be line {row_line} ({shown}); pass --header-row "
                f"{row_line} (in a job: header-row = {row_line})"
            )
    found = _nearest_header(sample.rows, mapping)
    if found is not None:
        row_line, shown = found
        return (
            f"{where}, {first}, is a title, not the header: the header looks to be line "
            f"{row_line} ({shown}); pass --header-row {row_line}, or remove the lines above it"
        )
    if sample.other_sheets:
        return _other_sheets(where, first, sample)
    if len(names) != 1:
        return None
    return (
        f"{where}, {first}{hint(names[0])}, names no column the tool knows; the first "
        "line must be the header (id or email, and the fields): if titles are above it, pass "
        f"--header-row N (N: the header's line), or say what the column is with --map "
        f'"{names[0]}=FIELD"'
    )


def _nearest_header(
    rows: Iterable[tuple[int, list[str]]], mapping: ColumnMap | None
) -> tuple[int, str] | None:
    """The first of `rows` that looks like a header: its line, and its first cells as shown."""
    for row_line, cells in rows:
        filled = _header_cells(cells, mapping)
        if filled:
            return row_line, ", ".join(f"`{c}`" for c in filled[:3]) + (", …" if filled[3:] else "")
    return None


def _other_sheets(where: str, first: str, sample: Sample) -> str:
    """The message for a sheet with no header in it (a summary sheet) whose workbook has others."""
    others = sample.other_sheets
    listed = ", ".join(f"`{name}`" for name in others)
    flag = _flag_value(others[0]) if len(others) == 1 else "NAME (one of them)"
    return (
        f"{where} of the sheet `{sample.sheet}`, {first}, names no column the tool knows, nor "
        f"does a row below it: the workbook also has {listed}; pass --sheet {flag}"
    )


def _flag_value(value: str) -> str:
    """`value` as a flag takes it on a command line: in quotes if it holds a space or quote."""
    return value if value.isprintable() and not set(value) & set(" \"'") else json.dumps(value)


def _header_cells(cells: list[str], mapping: ColumnMap | None) -> list[str]:
    """The filled cells of a row that looks like a header (several, one a known column), as
    read or split by another delimiter; [] if it does not look like one."""
    filled = [cell.strip() for cell in cells if cell.strip()]
    readings = [filled] + [[part.strip() for part in ",".join(filled).split(other) if part.strip()]
                           for other in _OTHER_DELIMITERS]  # fmt: skip
    for reading in readings:
        if len(reading) > 1 and any(column_for(cell, mapping) for cell in reading):
            return reading
    return []


_OTHER_DELIMITERS: Final = (";", "\t", "|")  # than `,`, which a file with no other defaults to


def delimiter_problem(
    first: str, header: Sequence[str], delimiter: str, mapping: ColumnMap | None
) -> str | None:
    """When the delimiter found from the `first` line (the header's, as read) and the rows
    below did not settle it, and an unknown column of the `header` holds another delimiter
    outside quotes (`id;Notes (a`): that the file may be split by that one."""
    unknown = [name for name in header if column_for(name, mapping) is None]
    bare = unquoted(first)  # a delimiter in quotes is a name's own
    for other in DELIMITERS:
        if other != delimiter and other in bare and any(other in name for name in unknown):
            flag = "tab" if other == "\t" else repr(other)
            return (
                f"the file was read with the delimiter {_shown(delimiter)}, found from its "
                f"first lines; if it is {_shown(other)}-separated, pass --delimiter {flag}"
            )
    return None


def _shown(delimiter: str) -> str:
    return "TAB" if delimiter == "\t" else f"`{delimiter}`"


def lines_above(
    path: str, encoding: Encoding, delimiter: str, header_row: int
) -> list[tuple[int, list[str]]]:
    """The few lines of a CSV file above its given `header_row`, as cells: where the header may
    be now."""
    start = max(1, header_row - ABOVE)
    with open(path, "rb") as raw:
        stream = text(raw, encoding, any_line_end=True)
        skip_lines(stream, start - 1, path)
        lines = [stream.readline(MAX_RECORD) for _ in range(start, header_row)]
    parse = CsvParser(delimiter).parse
    try:
        return [(at, parse(line)) for at, line in enumerate(lines, start=start)]
    except csv.Error:  # a title with a stray quote: no header there
        return []


def csv_sample(
    path: str, encoding: Encoding, head: CsvHead, header_row: int | None, mapping: ColumnMap
) -> Sample:
    """A `Sample` of a CSV file read up to its `head`: the rows below, the file's text problem,
    the delimiter's (when the rows did not settle it), the lines above a given `header_row`."""
    problem = text_problem(path, encoding, any_line_end=True)
    split = None
    if head.unsure:
        split = delimiter_problem(head.first_line, head.header, head.delimiter, mapping)
    above = []
    if header_row is not None:
        above = lines_above(path, encoding, head.delimiter, header_row)
    return read_sample(head.table.rows(), problem, delimiter_problem=split, above=above)

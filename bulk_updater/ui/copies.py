"""The copies of a file the page sends: the checked file with its fixed rows, and the rejects
fixed in the page (only those rows); each in the kind of file it comes from.

A workbook's copy is a workbook whose cells hold what the input's held (numbers with their
format, booleans), written as `--rejects` writes a workbook's (`write_sheet`); a row the sheet
hides is hidden in it. A CSV holds only
text: a custom field would go out as a string where the workbook's row sent a number. A cell
typed over in the page keeps its cell's kind when it reads as one (`43` over a number is a
number), so a fix is sent as the same cell in Excel would be.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

from ..engine.sink import stored
from ..inputs import Hidden, Row, Source
from ..inputs.numbers import Number, shown
from ..inputs.tables import sniff_delimiter
from ..inputs.values import Typed
from ..report.sheet_rejects import HiddenRow, Stored, write_sheet

#: A number as a person types it over a number cell: digits, a point, an exponent.
_NUMBER: Final = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_TRUTH: Final = {"TRUE": True, "FALSE": False}

#: A row's cells for the copy, a record's text as read (a `str`: written as it is), or None:
#: the row is left out.
Chooser = Callable[[Row], Sequence[str] | None]


def page_cells(row: Row) -> list[str]:
    """A row's cells as the page edits them: a table's cells, a JSON line whole, or none (a
    record that could not be read)."""
    if isinstance(row.raw, tuple):
        return list(row.raw)
    return [row.raw.rstrip("\r\n")] if isinstance(row.raw, str) else []


def edit(cell: str, text: str) -> str:
    """`text` typed over `cell`: the cell itself when unchanged; a number (in the cell's format)
    or a boolean when the cell held one and `text` reads as one; else the text."""
    if text == cell:
        return cell
    typed = text.strip()
    if isinstance(cell, Number) and _NUMBER.fullmatch(typed):
        number = float(typed) if any(c in typed for c in ".eE") else int(typed)
        return shown(number, cell.pattern)
    if isinstance(cell, Typed) and isinstance(cell.value, bool) and typed.upper() in _TRUTH:
        return Typed(typed.upper(), _TRUTH[typed.upper()])
    return text


def write_copy(source: Source, chooser: Chooser, target: Path) -> None:
    """The rows of `source` that `chooser` gives cells for, in order, at `target`: JSON lines, a
    workbook, or CSV in UTF-8 and in the delimiter of `source`, as `source` is.

    A CSV record that could not be read is given as its text, and written as it was read: in the
    same delimiter, it cannot be read again for the same reason, and its text goes to the rejects.
    """
    header = list(source.header or ())
    if source.format == "xlsx":
        rows = (_sheet_row(row, cells) for row in source if (cells := chooser(row)) is not None)
        write_sheet(target, itertools.chain([header], rows), title=source.sheet or "Rows")
        return
    chosen = (cells for row in source if (cells := chooser(row)) is not None)
    with open(target, "w", encoding="utf-8", newline="") as file:
        if source.format == "jsonl":
            for cells in chosen:
                file.write((cells[0] if cells and cells[0] else "null") + "\n")  # still invalid
            return
        delimiter = source.delimiter or ","
        file.write(_header_line(header, delimiter))
        writer = csv.writer(file, delimiter=delimiter)
        for cells in chosen:
            if isinstance(cells, str):
                file.write(cells.rstrip("\r\n") + "\r\n")  # the writer's own line break
            else:
                writer.writerow(cells)


def _sheet_row(row: Row, cells: Sequence[str]) -> list[Stored]:
    """A row's cells as the workbook stores them; a row the sheet hid is hidden in the copy too,
    so it is read back as hidden at its own number, and the rows below it keep theirs."""
    kept = [stored(cell) for cell in cells]
    return HiddenRow(kept) if isinstance(row.item, Hidden) else kept


def _header_line(header: list[str], delimiter: str) -> str:
    """The copy's header, from which the reader finds `delimiter` again: each name quoted when
    one holds another delimiter (only those outside quotes are counted)."""
    line = io.StringIO()
    csv.writer(line, delimiter=delimiter).writerow(header)
    if sniff_delimiter(line.getvalue())[0] != delimiter:
        line = io.StringIO()
        csv.writer(line, delimiter=delimiter, quoting=csv.QUOTE_ALL).writerow(header)
    return line.getvalue()

"""Numbers written with separators (`2.500`, `1.234,56`, `1,234`): which readings a cell has, what
a column's cells showed of its decimal mark, and how a refusal is worded.

`2.500` is 2.5 in English and 2500 where decimals take a comma; the cell cannot tell. A table
starts with a guess from how it was exported (`likely`: Excel writes `;` between cells where
decimals take a comma), and each column's cells settle it as they are read: a decimal comma
(`1.234,56`) or points grouping thousands (`1.500.000`) make it likely for every column not
settled yet; a point that groups nothing (`1.5`, `0.25`, `12.3456`) settles that column as
English. A cell is judged by what the rows above it showed: rows stream, each sent as it is read.
"""

from __future__ import annotations

import re
from typing import Final

from .encoding import Encoding

#: Points that may group thousands (`2.500`, `1.500.000`): 2.5 in English, 2500 in German.
#: Never after a lone `0`: nobody groups `0.125`.
GROUPED: Final = re.compile(r"[+-]?[1-9]\d{0,2}(?:\.\d{3})+")
#: A decimal comma, after points grouping thousands or not: `1.234,56`, `12,5`.
_DECIMAL_COMMA: Final = re.compile(r"[+-]?(?:\d{1,3}(?:\.\d{3})+|\d+),\d+")
#: Commas grouping thousands, before a decimal point or not: `1,234,567`, `1,234.56`.
_THOUSANDS_COMMA: Final = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
#: A point that can only be a decimal one: not three digits after a group of one to three.
_POINT: Final = re.compile(r"[+-]?(?:\d*\.\d+)(?:[eE][+-]?\d+)?")


def comma_decimal(cell: str) -> bool:
    """Whether `cell` is a number written with a decimal comma that nothing else reads it as
    (`1.234,56`, `12,5`; not `1,234`, which English writes for 1234)."""
    text = cell.strip()
    return _DECIMAL_COMMA.fullmatch(text) is not None and not _THOUSANDS_COMMA.fullmatch(text)


def _comma_locale(text: str) -> bool:
    """Whether a number cell shows decimals take a comma: a decimal comma, or points grouping
    thousands (`1.500.000`, no decimal number in English)."""
    grouped = text.count(".") > 1 and GROUPED.fullmatch(text) is not None
    return grouped or comma_decimal(text)


def _point_decimal(text: str) -> bool:
    """Whether a number cell's point can only be a decimal point (`1.5`, `0.125`, `1234.5`)."""
    return _POINT.fullmatch(text) is not None and GROUPED.fullmatch(text) is None


def likely_comma(delimiter: str | None, encoding: Encoding | None) -> bool:
    """Whether a text file's export says decimals likely take a comma: Excel writes `;` between
    cells there; its "Unicode text" (UTF-16, TAB) and a legacy encoding's file (cp1252) not split
    by `,` come from Excel, whose numbers follow the locale. A legacy file split by `,` is what
    Excel writes where decimals take a point (the US's, the UK's), so it hints nothing. A
    workbook's (no `encoding`) hold numbers."""
    if encoding is None:
        return False
    wide_tab = encoding.wide and delimiter == "\t"
    return delimiter == ";" or wide_tab or (encoding.legacy and delimiter != ",")


class DecimalMarks:
    """What a table's number cells showed of its decimal mark, column by column (see above).

    `likely`: decimals likely take a comma in the whole table, as far as its export tells."""

    def __init__(self, likely: bool = False) -> None:
        self.likely = likely
        self._columns: dict[int, str] = {}  # the mark a column's cells showed: "," or "."

    def comma_likely(self, column: int) -> bool:
        """Whether `2.500` in `column` may well be 2500."""
        return self._columns.get(column, "," if self.likely else ".") == ","

    def saw(self, column: int, cell: str) -> None:
        """Learn from a number column's cell. A column that showed a decimal comma once stays
        suspect: a `1.5` below it does not make its `2.500` safe."""
        text = cell.strip()
        if "." not in text and "," not in text:  # the usual cell: no regex run
            return
        if _comma_locale(text):
            self._columns[column] = ","
            self.likely = True
        elif self._columns.get(column) != "," and _point_decimal(text):
            self._columns[column] = "."


def separators(text: str, comma_decimals: bool, shown: str) -> str:
    """Why a number written with separators is refused, and how to write it (`shown`: the cell
    as a message shows it)."""
    plain = text.lstrip("+")
    if GROUPED.fullmatch(text):
        thousands = plain.replace(".", "")
        if plain.count(".") > 1:
            return f"{shown!r} has `.` separating thousands; write it as {thousands}"
        decimal = f"{float(plain):g}"  # `2.500` read as a decimal: 2.5 (`2.000`: 2)
        likely = " (likely in this file)" if comma_decimals else ""
        return (
            f"{shown!r} is {thousands} if `.` separates thousands{likely}, or {decimal} if it is "
            f"a decimal point; write {thousands} or {decimal}, without separators"
        )
    if _THOUSANDS_COMMA.fullmatch(text):
        thousands = plain.replace(",", "")
        if _DECIMAL_COMMA.fullmatch(text):  # `1,234`: one comma before three digits
            decimal_text = plain.replace(",", ".")
            return (
                f"{shown!r} is {thousands} if `,` separates thousands, or {decimal_text} if it "
                f"is a decimal comma; write {thousands} or {decimal_text}, without separators"
            )
        return f"{shown!r} has `,` separating thousands; write it as {thousands}"
    if _DECIMAL_COMMA.fullmatch(text):
        point = plain.replace(".", "").replace(",", ".")
        grouped = "." in plain
        what = "`.` separating thousands and a decimal comma" if grouped else "a decimal comma"
        return f"{shown!r} has {what}; write it as {point}"
    return f"{shown!r} is not a number (write it as 1201 or 12.5, no separators)"

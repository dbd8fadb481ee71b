"""A workbook's cell as the text a person sees in Excel, and the number or boolean it holds.

Text as is; booleans `TRUE`/`FALSE` (what Excel shows and writes to CSV); error cells as shown
(`#N/A`); dates as ISO (`2025-06-15`, a datetime at midnight too; `2025-06-15T10:30:00`
otherwise); times `10:30:00`; durations `36:00:00`; numbers through their number format
(`numbers.py`). A number or boolean cell's text is a `Typed`, which also carries the value, so a
custom field can keep its type. A formula with no saved value is `UNSAVED`.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from typing import Final

from .numbers import shown
from .sheet import OVERSIZED, Broken, RawCell
from .values import Typed


class Unsaved(str):
    """A formula cell with no saved value: a workbook written by a script, never opened."""


UNSAVED: Final = Unsaved("")


class Styles:
    """What a cell's style says about its value: its number format, and whether it is a date."""

    def __init__(
        self, formats: Sequence[str], dates: set[int], durations: set[int], epoch: _dt.datetime
    ) -> None:
        self.formats = formats
        self.dates = dates
        self.durations = durations
        self.epoch = epoch

    def format(self, style: int) -> str:
        return self.formats[style] if 0 <= style < len(self.formats) else "General"


def cell_text(cell: RawCell, strings: Sequence[str], styles: Styles) -> str:
    value, kind = cell.value, cell.kind
    if value is None or value is OVERSIZED:
        if cell.formula and value is None:
            return UNSAVED
        return "" if value is None else value
    if kind == "s":
        try:
            return strings[int(value)]
        except (ValueError, IndexError):
            raise Broken(f"a cell refers to shared string {value[:20]!r}, not there") from None
    if kind in ("str", "inlineStr", "e"):
        return value
    if kind == "b":
        truth = value.strip() in ("1", "true")
        return Typed("TRUE" if truth else "FALSE", truth)
    if kind == "d":
        return _iso(value)
    return _number(value, cell.style, styles)


def _number(text: str, style: int, styles: Styles) -> str:
    try:
        number: int | float = (
            float(text) if any(c in text for c in ".eEnN") else int(text)  # as openpyxl reads it
        )
    except ValueError:
        raise Broken(f"{text[:20]!r} is not a number") from None
    if style in styles.dates:
        return _date(number, style, styles)
    return shown(number, styles.format(style))


def _date(number: float, style: int, styles: Styles) -> str:
    from openpyxl.utils.datetime import from_excel

    try:
        value = from_excel(number, styles.epoch, timedelta=style in styles.durations)
    except (OverflowError, ValueError):
        return "#VALUE!"  # as Excel shows a date out of its range
    if isinstance(value, _dt.timedelta):
        return _duration(value)
    if isinstance(value, _dt.datetime):
        return _datetime(value)
    if isinstance(value, _dt.time):
        return value.isoformat(timespec="seconds")
    return str(value)


def _iso(text: str) -> str:
    from openpyxl.utils.datetime import from_ISO8601

    try:
        value = from_ISO8601(text)  # type: ignore[no-untyped-call]
    except ValueError:
        return text
    if isinstance(value, _dt.datetime):
        return _datetime(value)
    if isinstance(value, _dt.date | _dt.time):
        return value.isoformat()
    return text


def _datetime(value: _dt.datetime) -> str:
    milli, micro = divmod(value.microsecond, 1000)
    if micro:  # Excel keeps milliseconds: round away float noise such as 10:29:59.999999
        value += _dt.timedelta(microseconds=(1000 - micro) if micro >= 500 else -micro)
        milli = value.microsecond // 1000
    if milli:
        return value.isoformat(timespec="milliseconds")
    if value.hour == value.minute == value.second == 0:
        return value.date().isoformat()
    return value.isoformat(timespec="seconds")


def _duration(value: _dt.timedelta) -> str:
    seconds = round(value.total_seconds())
    sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{sign}{hours}:{rest // 60:02d}:{rest % 60:02d}"

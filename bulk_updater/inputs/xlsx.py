"""Rows of an `.xlsx` workbook as the text a person sees in Excel, streamed.

openpyxl in read-only mode, chosen by measurement (see the README): it streams the sheet, so
memory stays flat with the number of rows (only the shared-strings table is held, as in every
xlsx reader), where python-calamine, 6x faster, parses the whole sheet before the first row and
turns error cells such as `#N/A` into empty ones.

Cell to text: text as is; whole numbers without `.0` (`4155550100`); other numbers with up to 15
significant digits as Excel shows them; a zero-padding format such as `00000` kept (`02134`);
dates as ISO (`2025-06-15`, a datetime at midnight too; `2025-06-15T10:30:00` otherwise); times
`10:30:00`; durations `36:00:00`; booleans `TRUE`/`FALSE` (what Excel shows and writes to CSV);
error cells as shown (`#N/A`); a formula's cached value. Trailing empty cells of a row are dropped
and rows with no cell are skipped; row numbers stay those of the sheet.
"""

from __future__ import annotations

import datetime as _dt
import warnings
import zipfile
import zlib
from collections.abc import Iterator
from typing import IO, Any, Final, cast
from xml.etree.ElementTree import ParseError

from ..errors import InputError

#: openpyxl warns about parts it drops in read-only mode (data validation, styles): noise here.
warnings.filterwarnings("ignore", category=UserWarning, module=r"openpyxl(\.|$)")

_ZIP_MAGIC: Final = (b"PK\x03\x04", b"PK\x05\x06")
_OLE_MAGIC: Final = bytes.fromhex("D0CF11E0A1B11AE1")  # .xls, and encrypted Office files
_RESAVE: Final = "open it in Excel and save it as an Excel Workbook (.xlsx), or export it as CSV"
_BROKEN: Final = (ParseError, zipfile.BadZipFile, zlib.error, EOFError, KeyError, ValueError,
                  TypeError, IndexError)  # fmt: skip
_MAX_EXACT: Final = 2**53


def is_zip(head: bytes) -> bool:
    return head[:4] in _ZIP_MAGIC


def _check_package(path: str, head: bytes) -> None:
    """Refuse, with a message that says what to do, anything that is not an .xlsx package."""
    if head[:8] == _OLE_MAGIC:
        with open(path, "rb") as file:
            data = file.read()
        if "EncryptedPackage".encode("utf-16-le") in data:
            raise InputError(
                f"{path}: the workbook is password-protected; remove the password in Excel "
                "(File > Info > Protect Workbook) and save it again"
            )
        raise InputError(f"{path}: this is an old Excel 97-2003 (.xls) file; {_RESAVE}")
    if not is_zip(head):
        raise InputError(f"{path}: is not an Excel workbook; if it is CSV, name it .csv")
    try:
        with zipfile.ZipFile(path) as package:
            names = set(package.namelist())
    except zipfile.BadZipFile as exc:
        raise InputError(f"{path}: the workbook is damaged or incomplete ({exc})") from None
    if "xl/workbook.bin" in names:
        raise InputError(f"{path}: this is an Excel Binary Workbook (.xlsb); {_RESAVE}")
    if "xl/workbook.xml" not in names:
        raise InputError(f"{path}: is a zip archive, not an Excel workbook")


class Workbook:
    """One worksheet of a workbook, opened and checked; `rows()` streams it."""

    def __init__(self, path: str, sheet: str | None) -> None:
        import openpyxl  # imported here: a CSV job never pays for it

        with open(path, "rb") as probe:
            head = probe.read(8)
        _check_package(path, head)
        self.path = path
        self._file: IO[bytes] = open(path, "rb")  # noqa: SIM115 - closed by close()
        try:
            self._book = openpyxl.load_workbook(
                self._file, read_only=True, data_only=True, keep_links=False
            )
            self._sheet = self._pick(sheet)
        except _BROKEN as exc:
            self.close()
            raise InputError(
                f"{path}: the workbook is damaged and cannot be read ({exc})"
            ) from None
        except BaseException:
            self.close()
            raise
        self.sheet = str(self._sheet.title)
        rows = self._sheet.max_row  # what the sheet says of itself: read before it is reset
        self._rows = rows if isinstance(rows, int) else None

    def _pick(self, sheet: str | None) -> Any:
        from openpyxl.worksheet._read_only import ReadOnlyWorksheet

        sheets = [ws for ws in self._book.worksheets if isinstance(ws, ReadOnlyWorksheet)]
        if not sheets:
            raise InputError(f"{self.path}: the workbook has no worksheet")
        if sheet is None:
            visible = [ws for ws in sheets if ws.sheet_state == "visible"]
            return (visible or sheets)[0]
        for ws in sheets:
            if ws.title == sheet:
                return ws
        folded = [ws for ws in sheets if ws.title.casefold() == sheet.casefold()]
        if len(folded) == 1:  # Excel itself treats sheet names without case
            return folded[0]
        listed = ", ".join(f"`{ws.title}`" for ws in sheets)
        raise InputError(f"{self.path}: no sheet named `{sheet}`; --sheet one of {listed}")

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        """(row number in the sheet, cells as text) for every row with a cell in it."""
        sheet = self._sheet
        sheet.reset_dimensions()  # a missing or wrong <dimension> must not cut or pad rows
        rows = cast("Iterator[tuple[Any, ...]]", sheet.rows)
        number = 0
        try:
            while True:
                try:
                    row = next(rows, None)
                except _BROKEN as exc:
                    raise InputError(
                        f"{self.path}: the workbook is damaged after row {number} ({exc})"
                    ) from None
                if row is None:
                    return
                number += 1
                cells = [_text(cell) for cell in row]
                while cells and cells[-1] == "":
                    cells.pop()
                if cells:
                    yield number, cells
        finally:
            self.close()

    def estimate(self) -> int | None:
        """Rows the sheet says it has (its dimension), or None: for progress only."""
        return self._rows

    def close(self) -> None:
        book = getattr(self, "_book", None)
        if book is not None:
            book.close()
        self._file.close()


def _text(cell: Any) -> str:
    value = cell.value
    if value is None:
        return ""
    kind = type(value)
    if kind is str:
        return cast(str, value)
    if kind is bool:
        return "TRUE" if value else "FALSE"
    if kind is int or kind is float:
        return _number(cell, value)
    if kind is _dt.datetime:
        return _datetime(value)
    if kind is _dt.date:
        return cast(str, value.isoformat())
    if kind is _dt.time:
        return cast(str, value.isoformat(timespec="seconds"))
    if kind is _dt.timedelta:
        return _duration(value)
    return str(value)


def _number(cell: Any, value: float) -> str:
    if type(value) is int:
        text = str(value)
    elif value == 0:
        text = "0"
    elif value.is_integer() and -_MAX_EXACT < value < _MAX_EXACT:
        text = str(int(value))
    else:
        text = format(value, ".15g").upper()  # Excel shows at most 15 significant digits
    if cell.has_style and text.isdigit():
        try:
            pattern = str(cell.number_format).strip()
        except (IndexError, KeyError):  # a style id missing from styles.xml
            return text
        if len(pattern) > 1 and set(pattern) == {"0"}:  # 00000: a ZIP code
            return text.zfill(len(pattern))
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

"""Rows of an `.xlsx` workbook as the text a person sees in Excel, streamed in bounded memory.

openpyxl reads the package's structure (the sheets, the styles), chosen over python-calamine by
measurement (see the README): calamine parses the whole sheet before the first row and turns
error cells such as `#N/A` into empty ones. The sheet and its shared strings are parsed here
(`sheet.py`), with the same 1 MiB cell limit as CSV, so that no workbook can take more memory
than a few hundred MB whatever it holds; cells become text in `cells.py`. Trailing empty cells of
a row are dropped and rows with no cell are skipped; row numbers stay those of the sheet, and
the rows the sheet hides are listed (`hidden`) for the reader to leave out. The
sheet is read through once when the workbook is opened, so a damaged one is refused before any
row is sent.
"""

from __future__ import annotations

import warnings
import zipfile
import zlib
from array import array
from bisect import bisect_left
from collections import deque
from collections.abc import Iterator, Sequence
from itertools import pairwise
from typing import IO, Any, Final
from xml.etree.ElementTree import ParseError

from ..errors import InputError
from .cells import Styles, Unsaved, cell_text
from .columns import TablePlan
from .records import MAX_RECORD
from .schema import Kind
from .sheet import OVERSIZED, Broken, Oversized, SharedStrings, SheetRows, TooMuchText
from .tables import TableRecord, Unreadable

#: openpyxl warns about parts it drops in read-only mode (data validation, styles): noise here.
warnings.filterwarnings("ignore", category=UserWarning, module=r"openpyxl(\.|$)")

_ZIP_MAGIC: Final = (b"PK\x03\x04", b"PK\x05\x06")
_OLE_MAGIC: Final = bytes.fromhex("D0CF11E0A1B11AE1")  # .xls, and encrypted Office files
_RESAVE: Final = "open it in Excel and save it as an Excel Workbook (.xlsx), or export it as CSV"
#: What openpyxl raises for a package it cannot read.
_BROKEN: Final = (ParseError, zipfile.BadZipFile, zlib.error, EOFError, KeyError, ValueError,
                  TypeError, IndexError, AttributeError)  # fmt: skip
#: What reading a sheet raises for one that cannot be read (a bad CRC is a `BadZipFile`).
_DAMAGED: Final = (Broken, zipfile.BadZipFile, zlib.error, EOFError)
#: How large (unpacked) a part openpyxl reads whole (as a tree) may be.
_WHOLE_LIMIT: Final = 16 << 20
_SHARED_STRINGS: Final = (
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"
)


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


class _Package(zipfile.ZipFile):
    """The package as openpyxl reads it: a part it reads whole (`read()`, whatever its name in
    `[Content_Types].xml`) may unpack to `_WHOLE_LIMIT` at most. A zip entry never unpacks to
    more than it declares (`zipfile` stops there), so the check holds."""

    def __init__(self, file: IO[bytes], path: str) -> None:
        super().__init__(file)
        self.path = path

    def read(self, name: str | zipfile.ZipInfo, pwd: bytes | None = None) -> bytes:
        info = name if isinstance(name, zipfile.ZipInfo) else self.getinfo(name)
        if info.file_size > _WHOLE_LIMIT:
            raise InputError(
                f"{self.path}: the workbook's `{info.filename}` unpacks to more than "
                f"{_WHOLE_LIMIT >> 20} MiB, which no workbook needs; {_RESAVE}"
            )
        return super().read(name, pwd)


class Workbook:
    """One worksheet of a workbook, opened and checked; `rows()` streams it."""

    def __init__(self, path: str, sheet: str | None) -> None:
        with open(path, "rb") as probe:
            head = probe.read(8)
        _check_package(path, head)
        self.path = path
        self._file: IO[bytes] = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._dimension: int | None = None
        self.hidden: Sequence[int] = ()  # the rows the sheet hides, in order (`_verify()`)
        try:
            self._open(sheet)
            self._verify()
        except _BROKEN as exc:
            self.close()
            raise InputError(
                f"{path}: the workbook is damaged and cannot be read ({exc})"
            ) from None
        except TooMuchText as exc:
            self.close()
            raise InputError(
                f"{path}: {exc}; export the sheet as CSV (CSV UTF-8) and run on that"
            ) from None
        except Broken as exc:
            self.close()
            raise InputError(f"{path}: the workbook cannot be read: {exc}; {_RESAVE}") from None
        except BaseException:
            self.close()
            raise

    def _open(self, sheet: str | None) -> None:
        from openpyxl.reader.excel import ExcelReader
        from openpyxl.styles.stylesheet import apply_stylesheet

        # The structure only: the sheets and shared strings are read below, in bounded memory.
        reader = ExcelReader(self._file, read_only=True, data_only=True, keep_links=False)
        reader.archive.close()  # its own reading of the package: ours checks what is read whole
        reader.archive = self._archive = _Package(self._file, self.path)
        reader.read_manifest()
        reader.read_workbook()
        apply_stylesheet(reader.archive, reader.wb)
        self.sheet, self._part = self._pick(reader, sheet)
        book: Any = reader.wb
        self._styles = Styles(_formats(book), _dates(book), set(book._timedelta_formats),
                              book.epoch)  # fmt: skip
        strings = reader.package.find(_SHARED_STRINGS)  # type: ignore[no-untyped-call]
        self._strings: list[str] = []
        if strings is not None:
            with self._archive.open(strings.PartName[1:]) as part:
                self._strings = SharedStrings(part).read()

    def _pick(self, reader: Any, sheet: str | None) -> tuple[str, str]:
        """The title and part of the sheet to read."""
        valid = set(reader.valid_files)
        sheets = [(str(s.name), str(rel.target), s.state) for s, rel in reader.parser.find_sheets()
                  if rel.target in valid and "chartsheet" not in rel.Type]  # fmt: skip
        if not sheets:
            raise InputError(f"{self.path}: the workbook has no worksheet")
        visible = [s for s in sheets if s[2] in (None, "visible")]
        self.sheets = [title for title, _, _ in visible or sheets]  # to name the others
        if sheet is None:
            return (visible or sheets)[0][:2]
        for title, part, _ in sheets:
            if title == sheet:
                return title, part
        folded = [s for s in sheets if s[0].casefold() == sheet.casefold()]
        if len(folded) == 1:  # Excel itself treats sheet names without case
            return folded[0][:2]
        listed = ", ".join(f"`{title}`" for title, _, _ in sheets)
        raise InputError(f"{self.path}: no sheet named `{sheet}`; --sheet one of {listed}")

    def _verify(self) -> None:
        """Read the whole sheet once, in bounded memory, before any row is handed out: a damaged
        part (a bad CRC, XML cut short, a cell that refers to nothing) is found before any
        request, not after the rows above it were sent."""
        for _ in self._read():
            pass

    def is_hidden(self, row: int) -> bool:
        """Whether the sheet hides `row` (a filter left it out, or a person hid it)."""
        hidden = self.hidden
        at = bisect_left(hidden, row)
        return at < len(hidden) and hidden[at] == row

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        """(row number in the sheet, cells as text) for every row with a cell in it."""
        try:
            yield from self._read()
        finally:
            self.close()

    def _read(self) -> Iterator[tuple[int, list[str]]]:
        number = 0
        try:
            with self._archive.open(self._part) as part:
                reader = SheetRows(part)
                for number, raw in reader:
                    self._dimension = reader.dimension
                    cells = self._cells(raw)
                    if cells:
                        yield number, cells
                hidden = reader.hidden
                if any(b <= a for a, b in pairwise(hidden)):  # rows out of order: searched sorted
                    hidden = array("L", sorted(set(hidden)))
                self.hidden = hidden
        except _DAMAGED as exc:
            # A bad CRC shows at the end of the part, wherever the damage is.
            where = f" after row {number}" if number and isinstance(exc, Broken) else ""
            raise InputError(
                f"{self.path}: the workbook is damaged{where} ({exc}); export or copy it again"
            ) from None

    def _cells(self, raw: list[Any]) -> list[str]:
        """The row's cells as text; `[OVERSIZED]` when they hold more than a row may, counted
        as shown: a shared string's own text, not the index that points to it."""
        cells: list[str] = []
        strings, styles = self._strings, self._styles
        size = 0
        for cell in raw:
            text = cell_text(cell, strings, styles)
            if text == "" and type(text) is str:
                continue  # an empty cell keeps no place: a later one fills the gap
            size += len(text)
            if size > MAX_RECORD:
                return [OVERSIZED]
            if cell.column > len(cells) + 1:
                cells.extend([""] * (cell.column - len(cells) - 1))
            if cell.column == len(cells) + 1:
                cells.append(text)
        return cells

    def estimate(self) -> int | None:
        """The last row the sheet says it has (its dimension), or None: for progress only."""
        return self._dimension

    def close(self) -> None:
        archive = getattr(self, "_archive", None)
        if archive is not None:
            archive.close()
        self._file.close()


#: Built-in number formats of East-Asian Excel, written without a `<numFmt>`: dates and times in
#: the locale's words (ECMA-376 §18.8.30), which openpyxl does not know.
_LOCALE_DATES: Final = frozenset((*range(27, 37), *range(50, 59)))


def _dates(book: Any) -> set[int]:
    """The style ids whose numbers are dates or times: openpyxl's, and East-Asian built-ins.

    A style whose format is defined in the workbook has an id of 164 or more once read, so an
    id in `_LOCALE_DATES` is the built-in one."""
    dates = set(book._date_formats)
    styles = enumerate(book._cell_styles)
    dates.update(at for at, style in styles if style.numFmtId in _LOCALE_DATES)
    return dates


def _formats(book: Any) -> list[str]:
    """The number format of each cell style of `book`, by style id."""
    from openpyxl.styles.numbers import BUILTIN_FORMATS, BUILTIN_FORMATS_MAX_SIZE

    formats: list[str] = []
    custom = book._number_formats
    for style in book._cell_styles:
        number = style.numFmtId
        if number < BUILTIN_FORMATS_MAX_SIZE:
            formats.append(BUILTIN_FORMATS.get(number, "General"))
        elif number - BUILTIN_FORMATS_MAX_SIZE < len(custom):
            formats.append(str(custom[number - BUILTIN_FORMATS_MAX_SIZE]))
        else:
            formats.append("General")  # a style id missing from styles.xml
    return formats


def sheet_header(
    rows: Iterator[tuple[int, list[str]]],
    given: int | None,
    name: str,
    sheet: str,
    titles: deque[tuple[int, list[str]]],
) -> tuple[int, list[str]]:
    """A sheet's header row, `(line, cells)`: its first row, or the `given` one (`--header-row`),
    each row above it put in `titles`."""
    for line, cells in rows:
        if given is not None and line < given:
            titles.append((line, cells))  # a title row above the header
            continue
        if given is not None and line > given:
            raise InputError(
                f"{name}: row {given} of the sheet `{sheet}` is empty; "
                f"--header-row {given} must be the row that names the columns"
            )
        if any(type(cell) is Oversized for cell in cells):
            raise InputError(f"{name}: the header row is larger than 1 MiB")
        return line, cells
    where = f"has no row {given}" if given is not None else "is empty"
    raise InputError(f"{name}: the sheet `{sheet}` {where}; the first row must name the columns")


def table_records(rows: Iterator[tuple[int, list[str]]], table: TablePlan) -> Iterator[TableRecord]:
    """A sheet's rows as a table's records: each as wide as the header, `None` for a row too
    large, `Unreadable` for a formula with no saved value in a column that is sent."""
    width = len(table.columns) + table.skip
    for line, cells in rows:
        if any(type(cell) is Oversized for cell in cells):
            yield line, None
            continue
        if len(cells) < width:  # a sheet's row ends at its last cell with something in it
            cells = cells + [""] * (width - len(cells))
        if any(type(cell) is Unsaved for cell in cells) and (found := _unsaved(cells, table)):
            yield line, Unreadable(found, tuple(cells), cells)
        else:
            yield line, cells


def _unsaved(cells: list[str], table: TablePlan) -> str | None:
    for at, cell in enumerate(cells[table.skip :]):
        sent = at < len(table.columns) and table.columns[at].kind is not Kind.DROP
        if type(cell) is Unsaved and sent:
            return (
                f"column {table.names[at]}: a formula with no saved value (the workbook was "
                "written by a program); open and save the file in Excel first"
            )
    return None

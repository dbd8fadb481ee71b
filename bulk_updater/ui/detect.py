"""What the page shows of an uploaded file: how it is read, and its first rows.

The file is opened as `bulk-updater run` would open it (`Source`), with the page's choices of
encoding and sheet. A file that is not UTF-8 is tried again as Windows-1252, the encoding of
Excel's CSV exports in Western Europe, and the page says it was guessed. Nothing here decides what
a column means: `mapping.py` does.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import openpyxl

from ..errors import BulkUpdaterError
from ..inputs import ColumnMap, Source
from ..inputs.schema import CUSTOM_PREFIX, Column, field_column

#: The encoding tried when a file is not UTF-8: what Excel on Windows writes in Western Europe.
FALLBACK_ENCODING: Final = "cp1252"
PREVIEW_ROWS: Final = 5
#: The one column of a JSON-lines file on the page: each line, whole.
JSON_LINE: Final = "JSON line"


class _Preview(ColumnMap):
    """Reads a header before anything means `id`: the first column stands for it, the others for
    custom fields of their own names, so that no header is refused before the page maps it."""

    def __init__(self) -> None:
        super().__init__()
        self._first: str | None = None

    def get(self, name: str) -> Column | None:
        if self._first is None or self._first == name.strip():
            self._first = name.strip()
            return field_column("id")
        return field_column(CUSTOM_PREFIX + name)


@dataclass(frozen=True)
class ReadOptions:
    """How the page reads a file: what the user chose (None: what the file says)."""

    encoding: str | None = None
    sheet: str | None = None
    header_row: int | None = None  # the line (a sheet's row) of the header, below title rows
    tags_separator: str = ";"  # what separates the tags in a `tags` cell (the columns step's)

    def source(self, path: Path, columns: ColumnMap | None = None) -> Source:
        """The file as a `Source` read with `columns` (none: to see its header and rows).

        A table's columns all have a meaning on the page (`-` drops one); a JSON line's unknown
        key makes its row invalid, named with the field it looks like, as `run` reads it.
        """
        return Source(
            path,
            columns=columns if columns is not None else _Preview(),
            encoding=self.encoding,
            sheet=self.sheet,
            header_row=self.header_row,
            tags_separator=self.tags_separator,
        )


@dataclass
class Detected:
    """How a file is read (`options` give the same reading again) and what it starts with."""

    name: str
    path: Path
    options: ReadOptions
    format: str
    header: list[str]
    raw_header: list[str]
    encoding: str | None = None
    encoding_how: str | None = None
    delimiter: str | None = None
    sheet: str | None = None
    sheets: list[str] = field(default_factory=list)
    header_row: int | None = 1  # None: a sheet's first row with a cell, wherever it is
    rows: list[list[str]] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        """The page's view: everything but the path on this machine."""
        delimiter = self.delimiter
        return {
            "name": self.name,
            "format": self.format,
            "encoding": self.encoding,
            "encoding_how": self.encoding_how,
            "delimiter": "TAB" if delimiter == "\t" else delimiter,
            "sheet": self.sheet,
            "sheets": self.sheets,
            "header_row": self.header_row,
            "header_row_chosen": self.options.header_row,
            "header": self.header or self.raw_header,
            "rows": self.rows,
        }


def detect(path: Path, name: str, options: ReadOptions) -> Detected:
    """Open `path` as the page would read it; `BulkUpdaterError` says what is wrong with it,
    naming the file as the user did (not the upload's path on this machine)."""
    try:
        return _detect(path, name, options)
    except BulkUpdaterError as exc:
        raise named(exc, path, name) from None


def named(error: BulkUpdaterError, path: Path, name: str) -> BulkUpdaterError:
    """`error` naming the file as the user did, not by its path in the server's folder."""
    return BulkUpdaterError(str(error).replace(str(path), name))


def _detect(path: Path, name: str, options: ReadOptions) -> Detected:
    try:
        return _read(path, name, options, guessed=False)
    except BulkUpdaterError as exc:
        if options.encoding is not None or "UTF-8" not in str(exc):
            raise
    fallback = dataclasses.replace(options, encoding=FALLBACK_ENCODING)
    return _read(path, name, fallback, guessed=True)


def _read(path: Path, name: str, options: ReadOptions, *, guessed: bool) -> Detected:
    with options.source(path) as source:
        source.check()  # the whole file's encoding, so a bad byte far down is found now
        header = [cell.strip() for cell in source.header or () if cell.strip()]
        rows = [
            list(row.raw) if isinstance(row.raw, tuple) else [str(row.raw)]
            for row in itertools.islice(source, PREVIEW_ROWS)
        ]
        encoding = source.encoding
        how = None
        if encoding is not None:
            how = "guessed (not UTF-8)" if guessed else _HOW.get(encoding.how, encoding.how)
        return Detected(
            name=name,
            path=path,
            options=options,
            format=source.format,
            header=header,
            raw_header=list(source.header or ()) if source.format != "jsonl" else [JSON_LINE],
            encoding=str(encoding) if encoding is not None else None,
            encoding_how=how,
            delimiter=source.delimiter,
            sheet=source.sheet,
            sheets=_sheets(path) if source.format == "xlsx" else [],
            header_row=options.header_row or (None if source.format == "xlsx" else 1),
            rows=rows,
        )


_HOW: Final = {"default": "UTF-8 text", "BOM": "its byte-order mark", "--encoding": "chosen"}


def _sheets(path: Path) -> list[str]:
    book = openpyxl.load_workbook(path, read_only=True)
    try:
        return list(book.sheetnames)
    finally:
        book.close()

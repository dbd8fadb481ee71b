"""`--rejects` of a workbook: an `.xlsx` whose cells keep what the input's held.

A CSV holds only text: a number cell (`1,201`, `15%`) or a boolean would read back as text, and a
custom field would be sent as a string where the workbook's row sent a number. So a workbook's
rejects is a workbook: numbers with their format, booleans, text (never run as a formula), the
input's header, then `_status` and `_message`. Rows are kept in a side file as they finish (one
JSON line each, in flat memory), and the workbook is written in input order when the run ends.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..inputs.schema import REJECTS_COLUMNS
from ..models import Status
from .sort import LineIndex

#: A cell as a workbook stores it: text, a boolean, or a number and its format.
Stored = str | bool | tuple[int | float, str]


class SheetRejectsWriter:
    """Writes one `.xlsx` rejects file; `close()` writes the workbook, rows in input order."""

    def __init__(
        self, path: str | os.PathLike[str], *, header: Sequence[str], header_row: int = 1
    ) -> None:
        """`header_row`: the input's, kept (empty rows above), so the same option reads it."""
        self.path = Path(path)
        self._above = header_row - 1
        if self.path.suffix.lower() not in (".xlsx", ".xlsm"):
            raise ConfigError(
                f"--rejects {self.path}: the input is a workbook, so the rejects file is one "
                "(its numbers and booleans kept): name it .xlsx"
            )
        names = [h.strip() for h in header]
        while names and not names[-1]:  # empty columns at the end: debris the reader leaves out
            names.pop()
        self._keep = [i for i, h in enumerate(names) if h not in REJECTS_COLUMNS]
        self._header = [*(header[i] for i in self._keep), *REJECTS_COLUMNS]
        self._index = LineIndex()
        try:  # refused here, before any request, if the folder cannot be written
            handle, name = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        except OSError as exc:
            raise ConfigError(f"{self.path}: cannot write the rejects ({exc.strerror})") from None
        self._side = Path(name)
        self._file = open(handle, "w+b")  # noqa: SIM115 - closed by close()
        self._position = 0

    def write(
        self, number: int, raw: Sequence[Stored], status: Status, message: str, _: Any = None
    ) -> None:
        """One rejected row: its cells as the workbook stored them."""
        cells: list[Any] = [list(c) if isinstance(c, tuple) else c for c in raw]
        kept = [cells[i] if i < len(cells) else "" for i in self._keep]
        extra = [c for c in cells[max(self._keep, default=-1) + 1 :] if c != ""]
        data = (json.dumps([*kept, status.value, message, *extra]) + "\n").encode()
        self._file.write(data)
        self._index.add(number, self._position, len(data))
        self._position += len(data)

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        """Write the workbook, rows in input order, and remove the side file."""
        try:
            self._save()
        finally:
            self._file.close()
            self._side.unlink(missing_ok=True)

    def _save(self) -> None:
        write_sheet(self.path, [self._header, *self._rows()], above=self._above)

    def _rows(self) -> Iterator[list[Any]]:
        for offset, length in zip(self._index.offsets, self._index.lengths, strict=True):
            if offset >= 0:
                self._file.seek(offset)
                yield json.loads(self._file.read(length))


class HiddenRow(list[Any]):
    """A row's cells, to write as a row the sheet hides (a copy of a sheet hides what it hid)."""

    __slots__ = ()


def write_sheet(
    path: str | os.PathLike[str],
    rows: Iterable[Sequence[Any]],
    *,
    above: int = 0,
    title: str = "Rejects",
) -> None:
    """A workbook of one sheet `title`, written as it goes: `above` empty rows, then `rows`, each
    cell a `Stored` (a number and its format as a tuple or list); a `HiddenRow` hidden."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    book = Workbook(write_only=True)
    sheet = book.create_sheet(title)
    for _ in range(above):
        sheet.append([])
    for at, cells in enumerate(rows, start=above + 1):
        if isinstance(cells, HiddenRow):  # its dimensions are written with the row: set first
            sheet.row_dimensions[at].hidden = True
        sheet.append([_cell(sheet, value, WriteOnlyCell) for value in cells])
    book.save(path)


def _cell(sheet: Any, value: object, make: Any) -> Any:
    if isinstance(value, list | tuple):  # a number and its format
        cell = make(sheet, value=value[0])
        cell.number_format = value[1]
        return cell
    if isinstance(value, bool) or value == "":
        return make(sheet, value=None if value == "" else value)
    cell = make(sheet, value=str(value))
    cell.data_type = "s"  # text, never run as a formula (`=1+1` stays what it was)
    return cell

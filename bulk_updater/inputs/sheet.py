"""A worksheet's XML and its shared strings, parsed with expat in bounded memory.

openpyxl's own readers hold a whole text node (one 200 MB cell took 1.48 GB) and every shared
string (a 640 KB workbook unpacked to 300 MB of them took 400 MB). Here text is kept only up to
the 1 MiB a cell (and a row) may hold, as in CSV; the rest of an oversized cell is read past and
dropped. A tag (or comment) is never longer than `MARKUP` bytes in a real workbook: a longer one
refuses the workbook, before expat has held much of it. A DTD is refused (no workbook has one),
so no entity is ever expanded.
"""

from __future__ import annotations

import sys
from abc import ABC, abstractmethod
from array import array
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Final
from xml.parsers import expat

from .records import MAX_RECORD

MARKUP: Final = 1 << 20  # bytes of one tag, comment or processing instruction, at most
#: Estimated bytes of memory the shared strings may take (Python's own size of each string).
SHARED_BUDGET: Final = 128 << 20
MAX_COLUMNS: Final = 16384  # Excel's last column, XFD
_CHUNK: Final = 1 << 16


class Oversized(str):
    """A cell whose text is larger than a cell may be: its text is not kept."""


OVERSIZED: Final = Oversized("")


class Broken(Exception):
    """The XML cannot be read; the message says where."""


class TooMuchText(Broken):
    """The shared strings would take more memory than `SHARED_BUDGET`."""


@dataclass(slots=True)
class RawCell:
    """A cell as the sheet stores it: its column (1-based), type (`t`), style and value text."""

    column: int
    kind: str
    style: int
    value: str | None
    formula: bool = False


class _Parser(ABC):
    """Feeds a part to expat a chunk at a time, and checks that no token grows too large."""

    def __init__(self, part: IO[bytes]) -> None:
        self.part = part
        self.parser = expat.ParserCreate(namespace_separator=" ")
        self.parser.StartDoctypeDeclHandler = self._doctype
        self.parser.StartElementHandler = self._start_element
        self.parser.EndElementHandler = self._end_element
        self.parser.CharacterDataHandler = self._data
        self._heard = False  # whether expat reported anything during the chunk being parsed
        self._quiet = 0  # bytes fed since expat last reported anything

    def _doctype(self, *_: object) -> None:
        raise Broken("it holds a DTD, which no workbook has")

    def _start_element(self, name: str, attrs: dict[str, str]) -> None:
        self._heard = True
        self.start(name.rpartition(" ")[2], attrs)

    def _end_element(self, name: str) -> None:
        self._heard = True
        self.end(name.rpartition(" ")[2])

    def _data(self, data: str) -> None:
        self._heard = True  # text comes in pieces as it is fed: a long one is never held whole
        self.text(data)

    @abstractmethod
    def start(self, name: str, attrs: dict[str, str]) -> None: ...

    @abstractmethod
    def end(self, name: str) -> None: ...

    @abstractmethod
    def text(self, data: str) -> None: ...

    def feed(self) -> bool:
        """Parse one more chunk; False at the end of the part."""
        chunk = self.part.read(_CHUNK)
        self._heard = False
        try:
            self.parser.Parse(chunk, not chunk)
        except expat.ExpatError as exc:
            raise Broken(f"{expat.errors.messages[exc.code]} at line {exc.lineno}") from None
        self._quiet = 0 if self._heard else self._quiet + len(chunk)
        if self._quiet > MARKUP:  # expat is holding one token that long: refuse it
            raise Broken(f"a tag larger than {MARKUP >> 20} MiB")
        return bool(chunk)


class SharedStrings(_Parser):
    """`xl/sharedStrings.xml`: each `<si>`'s text (phonetic runs left out), or `OVERSIZED`."""

    def __init__(self, part: IO[bytes]) -> None:
        super().__init__(part)
        self.strings: list[str] = []
        self._parts: list[str] = []
        self._size = 0
        self._kept = 0  # estimated bytes held
        self._capture = False
        self._phonetic = 0

    def read(self) -> list[str]:
        while self.feed():
            pass
        return self.strings

    def start(self, name: str, attrs: dict[str, str]) -> None:
        if name == "si":
            self._parts, self._size = [], 0
        elif name == "rPh":
            self._phonetic += 1
        elif name == "t" and not self._phonetic:
            self._capture = True

    def end(self, name: str) -> None:
        if name == "t":
            self._capture = False
        elif name == "rPh":
            self._phonetic -= 1
        elif name == "si":
            self._add()

    def text(self, data: str) -> None:
        if self._capture:
            self._size += len(data)
            if self._size <= MAX_RECORD:
                self._parts.append(data)

    def _add(self) -> None:
        if self._size > MAX_RECORD:
            self.strings.append(OVERSIZED)
            return
        text = "".join(self._parts).replace("x005F_", "")  # as openpyxl reads it
        self._kept += sys.getsizeof(text) + 8
        if self._kept > SHARED_BUDGET:
            raise TooMuchText(f"its text takes more than {SHARED_BUDGET >> 20} MiB of memory")
        self.strings.append(text)


class SheetRows(_Parser):
    """A worksheet's rows as `(row number, cells)`; a row over 1 MiB of text has its cells'
    text replaced by `OVERSIZED` past the limit. `hidden` lists the rows the sheet hides."""

    def __init__(self, part: IO[bytes]) -> None:
        super().__init__(part)
        self.rows: deque[tuple[int, list[RawCell]]] = deque()
        self._row = 0
        self._cells: list[RawCell] = []
        self._cell: RawCell | None = None
        self._parts: list[str] = []
        self._size = 0  # of the row's text so far
        self._capture = False
        self._inline = self._phonetic = 0
        self._valued = False
        self.dimension: int | None = None  # the last row, as the sheet says of itself
        self._hidden = False
        #: The rows with a cell that the sheet hides (a filter, or by hand), in order: 4 bytes each.
        self.hidden = array("L")

    def __iter__(self) -> Iterator[tuple[int, list[RawCell]]]:
        more = True
        while more or self.rows:
            while self.rows:
                yield self.rows.popleft()
            if more:
                more = self.feed()

    def start(self, name: str, attrs: dict[str, str]) -> None:
        if name == "c":
            self._start_cell(attrs)
        elif name == "row":
            self._row = _number(attrs["r"]) if "r" in attrs else self._row + 1
            self._cells, self._size = [], 0
            self._hidden = attrs.get("hidden") in ("1", "true")
        elif name == "dimension":
            last = attrs.get("ref", "").rpartition(":")[2].lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ$")
            self.dimension = int(last) if last.isdigit() and len(last) < 10 else None
        elif self._cell is None:
            return
        elif (name == "v" and not self._inline) or (
            name == "t" and self._inline and not self._phonetic
        ):
            self._capture = True
            self._valued = self._valued or name == "v"
        elif name == "f":
            self._cell.formula = True
        elif name == "is":
            self._inline += 1
        elif name == "rPh":
            self._phonetic += 1

    def _start_cell(self, attrs: dict[str, str]) -> None:
        previous = self._cells[-1].column if self._cells else 0
        where = attrs.get("r")
        column = _column(where) if where else previous + 1
        if not 0 < column <= MAX_COLUMNS:
            raise Broken(f"a cell beyond Excel's last column (row {self._row})")
        style = attrs.get("s", "0")
        self._cell = RawCell(column, attrs.get("t", "n"), _number(style) if style else 0, None)
        self._parts = []
        self._valued = False  # whether it has a `<v>`, even an empty one

    def end(self, name: str) -> None:
        if name in ("v", "t"):
            self._capture = False
        elif name == "is":
            self._inline -= 1
        elif name == "rPh":
            self._phonetic -= 1
        elif name == "c" and self._cell is not None:
            cell, self._cell = self._cell, None
            if cell.value is not OVERSIZED and self._parts:
                cell.value = "".join(self._parts)
            elif cell.value is None and (
                cell.kind == "inlineStr" or (cell.kind == "str" and self._valued)
            ):
                cell.value = ""  # empty text (a formula's saved "" too), not a missing value
            if len(self._cells) < MAX_COLUMNS:
                self._cells.append(cell)
        elif name == "row":
            if self._hidden and self._cells:
                self.hidden.append(self._row)
            self.rows.append((self._row, self._cells))
            self._cells = []

    def text(self, data: str) -> None:
        if not self._capture or self._cell is None:
            return
        self._size += len(data)
        if self._size > MAX_RECORD:  # the row is too large: its cells' text is not kept
            self._cell.value, self._parts = OVERSIZED, []
        elif self._cell.value is not OVERSIZED:
            self._parts.append(data)


def _number(text: str) -> int:
    if not text.isdigit() or len(text) > 9:
        raise Broken(f"{text[:20]!r} is not a row, column or style number")
    return int(text)


def _column(reference: str) -> int:
    """The column number of a reference such as `AB12`."""
    column = 0
    for char in reference:
        if "A" <= char <= "Z":
            column = column * 26 + ord(char) - 64
        elif "a" <= char <= "z":
            column = column * 26 + ord(char) - 96
        else:
            break
        if column > MAX_COLUMNS:
            break
    return column

"""A table's records after its header (CSV, a sheet) as rows: what is left out, and what is noted.

- A record whose cells are all empty is a blank line: skipped, not counted.
- A record whose mapped cells are all empty is skipped as empty too, whatever the columns left out
  hold (a Google Sheets checkbox column, `FALSE`): nothing in it could be sent.
- A footer is left out: after an empty row, the trailing rows that each hold one non-empty cell
  (a Salesforce report's copyright and confidentiality lines). Such a row could never be sent (a
  row needs an id or email and a field), so nothing that could be sent is ever left out; the
  summary names them. At most `MAX_FOOTER` rows are held back waiting to see whether they trail.
- A line of a `--rejects` file (its `_status` filled) is always a row, even with no cell kept (a
  record too large): fed back unfixed, it is `invalid` again, never left out.
- An id column taken by its name (not by `--map`) none of whose first `SAMPLE_ROWS` values has
  the API's shape (a Salesforce export's `ID`) is noted, with the way out: every row would be
  `not_found`.
- A `tags` cell that holds a likely separator other than the chosen one is counted, with the first
  example, for one note that names `--tags-separator` (the row itself is invalid).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Final

from .columns import Invalid, Item, Row
from .items import cells_of, new_row
from .records import TOO_LARGE
from .schema import REJECTS_COLUMNS, Column, ColumnMap, Kind
from .suggest import SAMPLE_ROWS, foreign_ids
from .tables import TableRecord, Unreadable
from .tags import SEPARATOR_ADVICE, other_separator
from .values import label

MAX_FOOTER: Final = 10


def _filled(cells: Sequence[str]) -> int:
    """How many cells hold something: 0, 1, or 2 for two or more (all a row needs to know)."""
    found = 0
    for cell in cells:
        if cell and not cell.isspace():
            found += 1
            if found == 2:
                break
    return found


def _blank(cell: str) -> bool:
    return not cell or cell.isspace()


def _through_empty(held: list[tuple[int, Sequence[str]] | None]) -> Iterator[TableRecord]:
    """Take from `held` the rows up to its first empty row (all of them if it has none)."""
    while held:
        row = held.pop(0)
        if row is None:
            return
        yield row


def _text(cells: Sequence[str]) -> str:
    return next(cell.strip() for cell in cells if cell.strip())


class TableRows:
    """The rows of a table whose header gave `columns` (after `skip` margin columns)."""

    def __init__(
        self,
        columns: list[Column],
        skip: int,
        tags_separator: str = ";",
        names: Sequence[str] = (),
        mapping: ColumnMap | None = None,
    ) -> None:
        """`names`: the header's, to tell a `--rejects` file's `_status` and `_message`;
        `mapping`: the user's, whose id column is theirs to say (its values are not noted)."""
        at = {name: skip + n for n, name in enumerate(names)}
        self._status, self._message = (at.get(name) for name in REJECTS_COLUMNS)
        kinds = [column.kind for column in columns]
        self._id = skip + kinds.index(Kind.ID) if Kind.ID in kinds else None
        self._email = skip + kinds.index(Kind.EMAIL) if Kind.EMAIL in kinds else None
        heading = dict(zip(kinds, names[: len(kinds)], strict=False))
        self._id_name, self._email_name = heading.get(Kind.ID), heading.get(Kind.EMAIL)
        if mapping is not None and self._id_name is not None and mapping.get(self._id_name):
            self._id_name = None
        self._ids: list[str] = []  # the first ids, to tell ids of another system
        self._mapped = [
            skip + n for n, column in enumerate(columns) if column.kind is not Kind.DROP
        ]
        self._dropping = skip > 0 or len(self._mapped) < len(columns)
        self._unheaded = skip  # cells left of the table: anything in them is no empty row
        self._width = skip + len(columns)
        tags = [skip + n for n, column in enumerate(columns) if column.kind is Kind.TAGS]
        self._tags = tags[0] if tags else None
        self.separator = tags_separator
        self.footer: list[str] = []
        self.suspect_tags = 0
        self._example: tuple[int, str, str] | None = None  # line, cell, separator it holds

    def rows(
        self, records: Iterator[TableRecord], convert: Callable[[Sequence[str]], Item]
    ) -> Iterator[Row]:
        """Numbered rows: each record kept, converted."""
        for number, (line, cells) in enumerate(self.kept(records), start=1):
            if cells is None:
                yield Row(number, Invalid("", TOO_LARGE), line)
            elif isinstance(cells, Unreadable):  # kept as read, to fix in the rejects
                rid, email = self._cell(cells.cells, self._id), self._cell(cells.cells, self._email)
                yield Row(number, Invalid(rid, cells.problem, email or None), line, cells.raw)
            elif self._rejected(cells) and self._empty(cells):
                yield Row(number, Invalid("", self._no_cells(cells)), line, cells_of(cells))
            else:
                if len(self._ids) < SAMPLE_ROWS and self._id_name is not None:
                    self._ids.append(self._cell(cells, self._id))
                self._check_tags(line, cells)
                yield new_row((number, convert(cells), line, cells_of(cells), None))

    @staticmethod
    def _cell(cells: Sequence[str], at: int | None) -> str:
        return cells[at].strip() if at is not None and at < len(cells) else ""

    def _rejected(self, cells: Sequence[str]) -> bool:
        """Whether the record is a line of a `--rejects` file (it says what became of it)."""
        return self._status is not None and bool(self._cell(cells, self._status))

    def _no_cells(self, cells: Sequence[str]) -> str:
        status, message = self._cell(cells, self._status), self._cell(cells, self._message)
        return (
            f"this rejects line kept no cell of its row ({status}: {message}); copy the row "
            "from the input, or fix what the message says there"
        )

    def kept(self, records: Iterator[TableRecord]) -> Iterator[TableRecord]:
        """The records that are rows: blank and empty ones out, a footer held back and left out.

        The footer is what follows the earliest empty row after which come only empty rows and
        at most `MAX_FOOTER` rows of one cell.
        """
        held: list[tuple[int, Sequence[str]] | None] = []  # None: an empty row among them
        after_empty = False
        self.footer = []
        for line, cells in records:
            if isinstance(cells, list | tuple) and not self._rejected(cells):
                filled = _filled(cells)
                # A footer's one cell may fall in a column left out: it is still a footer.
                if filled == 1 and (after_empty or held):
                    held.append((line, cells))
                    while sum(row is not None for row in held) > MAX_FOOTER:
                        yield from self._full(_through_empty(held))  # those before an empty row
                    after_empty = bool(held)
                    continue
                if not filled or (self._dropping and self._empty(cells)):
                    if held:
                        held.append(None)
                    after_empty = True
                    continue
            if held:  # a footer that was none: its rows are rows after all
                yield from self._full(row for row in held if row is not None)
                held = []
            after_empty = False
            yield line, cells
        self.footer = [_text(cells) for row in held if row is not None for _, cells in (row,)]

    def _full(self, rows: Iterable[TableRecord]) -> Iterator[TableRecord]:
        """The rows held back as a footer that was none, but those that are empty."""
        dropping = self._dropping
        return (row for row in rows if not (
                dropping and isinstance(row[1], list | tuple) and self._empty(row[1])))  # fmt: skip

    def _empty(self, cells: Sequence[str]) -> bool:
        """Whether no cell that means a field holds anything (nor one left of or past the table)."""
        if any(cell.strip() for cell in cells[: self._unheaded]):
            return False
        if any(cell.strip() for cell in cells[self._width :]):
            return False
        width = len(cells)
        return not any(n < width and not _blank(cells[n]) for n in self._mapped)

    def _check_tags(self, line: int, cells: Sequence[str]) -> None:
        at = self._tags
        if at is None or at >= len(cells) or not cells[at]:
            return
        other = other_separator(cells[at], self.separator)
        if other is not None:
            self.suspect_tags += 1
            if self._example is None:
                self._example = (line, cells[at], other)

    def notes(self) -> list[str]:
        """What was left out or looks wrong beside the rows, one line each, for the summary."""
        notes: list[str] = []
        if self._id_name is not None:
            foreign = foreign_ids(self._id_name, self._ids, self._email_name)
            notes += [foreign] if foreign is not None else []
        if self._example is not None:
            line, cell, other = self._example
            shown = "TAB" if self.separator == "\t" else self.separator
            notes.append(
                f"{self.suspect_tags} tags cell{'s hold' if self.suspect_tags > 1 else ' holds'} "
                f"another separator than `{shown}` (line {line}: {label(cell)!r}); those rows "
                f"are invalid: if the cells are lists, {SEPARATOR_ADVICE.format(other)}"
            )
        if self.footer:
            listed = ", ".join(f"`{label(text)}`" for text in self.footer)
            rows = f"{len(self.footer)} row{'s' if len(self.footer) > 1 else ''}"
            notes.append(f"footer left out ({rows} after the last): {listed}")
        return notes

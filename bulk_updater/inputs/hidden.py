"""Rows an `.xlsx` sheet hides (a filter left them out, or a person hid them): what its user
excluded, so by default they are not sent.

Each such row keeps its number and becomes `Hidden` (its outcome `skipped`, in the report too),
and the dry run and the summary say how many were left out and how to send them:
`--hidden-rows send` sends them like the others (still counted, in one note). Hidden columns are
read and sent: a column is hidden to tidy a view, not to leave its values out.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final, Literal

from ..errors import ConfigError
from ..words import counted
from .items import Hidden, Row
from .xlsx import Workbook

HiddenRowsPolicy = Literal["skip", "send"]
#: The sheet rows a note names, at most.
_NAMED: Final = 5


class HiddenRows:
    """What becomes of the rows a sheet hides (`policy`: `skip` or `send`), and how many there
    were, once the rows were read."""

    def __init__(self, policy: str) -> None:
        if policy not in ("skip", "send"):
            raise ConfigError(f"--hidden-rows {policy}: give skip or send")
        self.send = policy == "send"
        self.count = 0
        self._lines: list[int] = []  # the first few, for the note
        self._sheet = ""

    def rows(self, rows: Iterator[Row], book: Workbook) -> Iterator[Row]:
        """`rows`, each of those `book` hides `Hidden` (or, sending them, as it is)."""
        if not book.hidden:
            return rows  # the usual sheet: nothing to look up per row
        self._sheet = book.sheet
        return self._marked(rows, book)

    def _marked(self, rows: Iterator[Row], book: Workbook) -> Iterator[Row]:
        message = (
            f"hidden in the sheet `{book.sheet}` (by a filter or by hand), so left out; to "
            "send it, unhide it or pass --hidden-rows send"
        )
        for row in rows:
            if row.line is not None and book.is_hidden(row.line):
                self.count += 1
                if len(self._lines) < _NAMED:
                    self._lines.append(row.line)
                if not self.send:
                    item = row.item
                    row = row._replace(item=Hidden(item.id, message, item.email))
            yield row

    def notes(self) -> list[str]:
        """One line on the hidden rows met, if any."""
        if not self.count:
            return []
        lines = ", ".join(str(line) for line in self._lines)
        lines += ", …" if self.count > len(self._lines) else ""
        one = self.count == 1
        listed = f"sheet {'row' if one else 'rows'} {lines}"
        rows = counted(self.count, "row")
        where = f"{rows} hidden in the sheet `{self._sheet}` (by a filter or by hand)"
        if self.send:
            return [
                f"{where} {'is' if one else 'are'} sent too, as --hidden-rows send asks ({listed})"
            ]
        them = "it" if one else "them"
        return [
            f"{where} left out as `skipped` ({listed}); to send {them}, unhide {them} or pass "
            "--hidden-rows send"
        ]

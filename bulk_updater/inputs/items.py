"""What a record becomes: a `LeadUpdate`, a row to match by email, or `Invalid`; and the `Row`
that carries it with its number, line and cells through the job."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

from ..models import LeadUpdate


@dataclass(frozen=True, slots=True)
class Invalid:
    """A record that cannot be sent; `id` and `email` are what the record held, for the report."""

    id: str
    message: str
    email: str | None = None


@dataclass(frozen=True, slots=True)
class Hidden(Invalid):
    """A row the sheet hides (a filter left it out, or a person hid it): what the user excluded,
    so it is not sent; its outcome is `skipped`, with `message` saying why."""


@dataclass(frozen=True, slots=True)
class ByEmail:
    """A row keyed by email: its lead id is found through the API's search before it is sent.

    `update` holds the fields to set, checked like any row's; its id is a stand-in until then.
    """

    email: str
    update: LeadUpdate

    @property
    def id(self) -> str:
        return ""  # not known yet: the report shows the id the email resolves to


Item = LeadUpdate | Invalid | ByEmail
#: The id a row keyed by email is checked with until its real id is known.
STAND_IN_ID: Final = "0"
EMAIL_PATTERN: Final = re.compile(r"[^\s@]+@[^\s@]+")


class Cells(tuple[str, ...]):
    """A CSV record's cells, and `text`, the record as read (its line break too): a rejects
    file writes that text back as it was, so that a diff against the input shows only the rows."""

    text: str = ""


def cells_of(cells: Sequence[str]) -> tuple[str, ...]:
    """A record's cells as a `Row` keeps them: with the record's `text` when it was read as text."""
    if type(cells) is Cells:  # a CSV record's, made so when read
        return cells
    text: str | None = getattr(cells, "text", None)
    if text is None:
        return tuple(cells)
    kept = Cells(cells)
    kept.text = text
    return kept


#: A record as it was read: a table's cells, a JSON line's text, or the caller's own object.
Raw = tuple[str, ...] | str | Mapping[str, Any] | None


class Row(NamedTuple):
    """One record read: its number, what it became, where it starts in the file (the line, or
    the sheet's row), the record as read (for `--rejects`) and the caller's `ref` for it (for its
    `Outcome`). A tuple: one is made per row."""

    number: int
    item: Item
    line: int | None = None
    raw: Raw = None
    ref: Any = None


#: A `Row` from its five fields in order, without the `__new__` that `NamedTuple` writes in
#: Python: 1,000 instructions a row instead of 3,700 (the reader makes one a row).
new_row: Final[Callable[[tuple[int, Item, int | None, Raw, Any]], Row]] = functools.partial(
    tuple.__new__, Row
)

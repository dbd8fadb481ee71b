"""The check step: a dry run of the whole file through the reader `bulk-updater run` uses.

Every row is read and validated as a real run would (`Source` with the page's mapping); nothing is
sent. The counts grow as the file is read, so the page shows them while it reads. The invalid rows
are kept (the first `MAX_SHOWN`) with their cells, so the page can show them in a table where each
cell can be fixed and checked again (`recheck`); the fixes are applied when the job starts
(`write_fixed`), in a copy of the file: the upload itself is never changed.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from ..inputs import ColumnMap, Hidden, Invalid, KeyPlan, Row, Source
from ..inputs.columns import ByEmail, TablePlan
from ..inputs.jsonrows import parse_json_line
from ..inputs.records import MAX_RECORD
from ..models import LeadUpdate
from .copies import edit, page_cells, write_copy
from .wording import page_words

MAX_SHOWN: Final = 500
EXAMPLES: Final = 3
#: How often (in rows) the counts are published while the file is read.
_EVERY: Final = 2000


@dataclass
class BadRow:
    """An invalid row: its number, its cells by header, and what is wrong with it."""

    row: int
    line: int | None
    cells: list[str]
    message: str
    fixed: bool = False

    def describe(self, header: list[str]) -> dict[str, Any]:
        cells = self.cells + [""] * (len(header) - len(self.cells))  # a short row's missing cells
        return {
            "row": self.row,
            "line": self.line,
            "cells": dict(zip(header, cells, strict=False)),
            "message": self.message,
            "fixed": self.fixed,
        }


@dataclass
class Check:
    """The running or finished dry run; the page's view is `describe()`."""

    running: bool = True
    rows: int = 0
    valid: int = 0
    invalid: int = 0
    bad: list[BadRow] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)
    error: str | None = None
    sent: bool = False  # a job was started from this check: Start again would send twice
    cancelled: threading.Event = field(default_factory=threading.Event)

    def describe(self, header: list[str]) -> dict[str, Any]:
        fixed = sum(1 for row in self.bad if row.fixed)
        return {
            "running": self.running,
            "rows": self.rows,
            "valid": self.valid + fixed,
            "invalid": self.invalid - fixed,
            "invalid_rows": [row.describe(header) for row in self.bad],
            "more_invalid": max(0, self.invalid - len(self.bad)),
            "examples": self.examples,
            "error": self.error,
            "ready": self.ready,
        }

    @property
    def ready(self) -> bool:
        """Whether `Start` may be offered: the check finished, whatever it found, and no job
        was started from it yet (a stopped one is resumed, not started again)."""
        return not self.running and self.error is None and self.rows > 0 and not self.sent


def run_check(source: Source, check: Check, published: Callable[[], None]) -> None:
    """Read every row of `source` into `check`, calling `published` as the counts grow.

    Runs in a thread: `check.cancelled` ends it early (a new file, a new mapping).
    """
    try:
        for count, row in enumerate(source, start=1):
            if check.cancelled.is_set():
                return
            _count(check, row)
            if count % _EVERY == 0:
                published()
    finally:
        source.close()
        check.running = False
        published()


def _count(check: Check, row: Row) -> None:
    item = row.item
    if isinstance(item, Hidden):
        return  # the sheet hides it: neither sent nor to fix, as the sheet shows it
    check.rows += 1
    if isinstance(item, Invalid):
        check.invalid += 1
        if len(check.bad) < MAX_SHOWN:
            check.bad.append(
                BadRow(row.number, row.line, page_cells(row), page_words(item.message))
            )
        return
    check.valid += 1
    if len(check.examples) < EXAMPLES:
        check.examples.append(example(item))


def example(item: object) -> str:
    """`PATCH /v1/leads/ID {body}` for a valid row, as the dry run of the command line shows it."""
    target = None
    if isinstance(item, ByEmail):
        target, item = f"<the lead with the email {item.email}>", item.update
    if not isinstance(item, LeadUpdate):
        raise TypeError(f"not a valid row: {item!r}")
    body = json.dumps(item.body(), ensure_ascii=False)
    return f"PATCH /v1/leads/{target or item.id} {body}"


def recheck(
    bad: BadRow,
    header: list[str],
    columns: ColumnMap,
    cells: Mapping[str, str],
    format: str,
    tags_separator: str,
) -> None:
    """Apply the page's edits to an invalid row and validate it again, as the reader would (with
    the tags separator the page chose)."""
    raw = list(bad.cells) + [""] * (len(header) - len(bad.cells))  # a short row: all editable
    position = {name: at for at, name in enumerate(header)}
    for name, value in cells.items():
        if name in position:
            raw[position[name]] = edit(raw[position[name]], value)
    bad.cells = raw
    if format == "jsonl":
        item = parse_json_line(raw[0], KeyPlan(columns))
    else:
        item = TablePlan(
            list(header), "the row", mapping=columns, tags_separator=tags_separator
        ).convert(raw)
    if isinstance(item, Invalid):
        bad.message, bad.fixed = page_words(item.message), False
    else:
        bad.message, bad.fixed = "fixed", True


def write_fixed(source: Source, fixes: Mapping[int, list[str]], target: Path) -> None:
    """A copy of the file in its own kind (`write_copy`), with the fixed rows in place of the
    read ones.

    Row numbers stay those of the file: each row is written, fixed or not, and one that could
    not be read stays invalid. A CSV record that cannot be read as CSV is written as its text,
    which the rejects show; one too large to read (its text was not kept) is written too large.
    A row the sheet hides is written hidden (`write_copy`), so it is skipped from the copy too.
    """
    blank = [""] * len(source.header or ())

    def cells(row: Row) -> list[str] | str:
        if row.number in fixes:
            return fixes[row.number]
        if source.format == "jsonl" or isinstance(row.raw, tuple):
            return page_cells(row)
        if isinstance(row.raw, str):
            return row.raw
        return "x" * (MAX_RECORD + 1) if source.format == "csv" else blank

    write_copy(source, cells, target)

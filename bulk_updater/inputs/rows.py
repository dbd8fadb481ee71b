"""Any input as numbered rows: a `Source`, or an iterable or async iterable of records."""

from __future__ import annotations

import os
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Iterable, Mapping
from typing import Any

from ..models import LeadUpdate
from .columns import Invalid, Item, label, parse_mapping, validate
from .pump import Pump
from .source import RowItem, Source

#: What a job reads: a `Source`, or dicts (validated like JSON lines) and `LeadUpdate`s.
Rows = Source | Iterable[Any] | AsyncIterable[Any]


def _item(record: object) -> Item:
    if isinstance(record, LeadUpdate):
        # model_copy(update=...) and model_construct skip validation: check again
        return validate(record.model_dump(), label(record.id), record.email)
    if isinstance(record, Mapping):
        return parse_mapping(record)
    return Invalid("", f"a row must be a dict or LeadUpdate, not {type(record).__name__}")


class Numbered(AsyncIterator[RowItem]):
    """Numbered rows of any input; `ready()` gives rows already read but not yet taken."""

    def __init__(self, rows: Rows) -> None:
        if isinstance(rows, str | bytes | os.PathLike):
            raise TypeError(f"rows is a path ({rows!r}); pass Source(path) to read a file")
        self._pump: Pump[RowItem] | None = None
        if isinstance(rows, Source) and not rows.rereadable:
            self._pump = Pump(iter(rows))  # standard input is read in a thread
            self._items: AsyncIterator[RowItem] = self._pump
        else:
            self._items = _numbered(rows)

    def __anext__(self) -> Awaitable[RowItem]:
        return self._items.__anext__()

    def ready(self) -> list[RowItem]:
        return self._pump.ready() if self._pump is not None else []

    async def aclose(self) -> None:
        aclose = getattr(self._items, "aclose", None)
        if aclose is not None:
            await aclose()


async def _numbered(rows: Rows) -> AsyncIterator[RowItem]:
    if isinstance(rows, Source):
        for pair in rows:
            yield pair
        return
    row = 0
    if isinstance(rows, AsyncIterable):
        records = aiter(rows)
        try:
            async for record in records:
                row += 1
                yield row, _item(record)
        finally:  # close the caller's generator now, not whenever it is garbage-collected
            aclose = getattr(records, "aclose", None)
            if aclose is not None:
                await aclose()
    else:
        for record in rows:
            row += 1
            yield row, _item(record)


def numbered(rows: Rows) -> Numbered:
    """Any input as numbered items; standard input is read in a thread so the loop never blocks."""
    return Numbered(rows)

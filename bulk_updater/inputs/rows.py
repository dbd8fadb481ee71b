"""Any input as numbered rows: a `Source`, or an iterable or async iterable of records.

With a `lookahead`, rows are read in batches and each batch is shown to it before the first of
its rows is handed on, so that a rule can look all their leads up at once (`skip_unchanged`
asks its state file once per batch, not once per row). A batch is what can be had without
waiting: up to `batch` rows of a file or an iterable, the rows already read from a pipe, one row
of an async iterable (its next row may be long in coming).
"""

from __future__ import annotations

import collections
import itertools
import json
import os
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
)
from typing import Any, Final

from ..models import LeadUpdate
from .columns import Invalid, Item, KeyPlan, Row, label, validate
from .pump import Pump
from .source import Source

#: What a job reads: a `Source`, or dicts (validated like JSON lines) and `LeadUpdate`s.
Rows = Source | Iterable[Any] | AsyncIterable[Any]


def _surrogates(text: str) -> bool:
    return max(text, default="\0") >= "\udc80" and any("\udc80" <= c <= "\udcff" for c in text)


def parse_json_line(line: str, keys: KeyPlan) -> Item:
    if _surrogates(line):
        return Invalid("", "the line is not valid UTF-8 text")
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        return Invalid("", f"the line is not valid JSON ({exc.msg} at column {exc.colno})")
    except RecursionError:
        return Invalid("", "the line's JSON is nested too deeply")
    if not isinstance(record, dict):
        return Invalid("", 'the line must be a JSON object like {"id": "...", ...}')
    return keys.parse(record)


def _item(record: object, keys: KeyPlan) -> Item:
    if isinstance(record, LeadUpdate):
        # model_copy(update=...) and model_construct skip validation: check again
        return validate(record.model_dump(), label(record.id), record.email)
    if isinstance(record, Mapping):
        return keys.parse(record)
    return Invalid("", f"a row must be a dict or LeadUpdate, not {type(record).__name__}")


Lookahead = Callable[[list[Row]], None]
_BATCH: Final = 256


class Numbered(AsyncIterator[Row]):
    """Numbered rows of any input; `ready()` gives rows already read but not yet taken."""

    def __init__(
        self,
        rows: Rows,
        keys: KeyPlan | None = None,
        *,
        lookahead: Lookahead | None = None,
        batch: int = _BATCH,
    ) -> None:
        if isinstance(rows, str | bytes | os.PathLike):
            raise TypeError(f"rows is a path ({rows!r}); pass Source(path) to read a file")
        self._pump: Pump[Row] | None = None
        self.keys = keys or KeyPlan()
        self._lookahead = lookahead
        self._batch = batch
        self._ahead: collections.deque[Row] = collections.deque()
        self._sync: Iterator[Row] | None = None
        self._error: BaseException | None = None
        if isinstance(rows, Source) and not rows.rereadable:
            self._pump = Pump(iter(rows))  # standard input is read in a thread
            self._items: AsyncIterator[Row] = self._pump
        elif lookahead is not None and not isinstance(rows, AsyncIterable):
            self._sync = _sync_rows(rows, self.keys)
        else:
            self._items = _numbered(rows, self.keys)

    def __anext__(self) -> Awaitable[Row]:
        if self._lookahead is None:
            return self._items.__anext__()
        return self._next_ahead()

    async def _next_ahead(self) -> Row:
        if not self._ahead:
            batch = await self._read_batch()
            assert self._lookahead is not None
            self._lookahead(batch)
            self._ahead.extend(batch)
        return self._ahead.popleft()

    async def _read_batch(self) -> list[Row]:
        if self._sync is None:
            batch = [await anext(self._items)]  # a pipe or an async iterable: may wait
            return batch + (self._pump.ready() if self._pump is not None else [])
        batch = []
        if self._error is None:
            try:
                batch.extend(itertools.islice(self._sync, self._batch))
            except Exception as exc:  # raised once the rows read before it are handed on
                self._error = exc
        if batch:
            return batch
        if self._error is not None:
            raise self._error
        raise StopAsyncIteration

    def ready(self) -> list[Row]:
        rows = list(self._ahead)
        self._ahead.clear()
        return rows + (self._pump.ready() if self._pump is not None else [])

    async def aclose(self) -> None:
        if self._sync is not None:
            close = getattr(self._sync, "close", None)
            if close is not None:
                close()
            return
        aclose = getattr(self._items, "aclose", None)
        if aclose is not None:
            await aclose()


def _sync_rows(rows: Source | Iterable[Any], keys: KeyPlan) -> Iterator[Row]:
    if isinstance(rows, Source):
        yield from rows
        return
    for number, record in enumerate(rows, 1):
        raw = record if isinstance(record, Mapping) else None
        yield Row(number, _item(record, keys), raw=raw)


async def _numbered(rows: Rows, keys: KeyPlan) -> AsyncIterator[Row]:
    if isinstance(rows, Source) or not isinstance(rows, AsyncIterable):
        for row in _sync_rows(rows, keys):
            yield row
        return
    number = 0
    records = aiter(rows)
    try:
        async for record in records:
            number += 1
            yield Row(
                number, _item(record, keys), raw=record if isinstance(record, Mapping) else None
            )
    finally:  # close the caller's generator now, not whenever it is garbage-collected
        aclose = getattr(records, "aclose", None)
        if aclose is not None:
            await aclose()


def numbered(
    rows: Rows, keys: KeyPlan | None = None, *, lookahead: Lookahead | None = None
) -> Numbered:
    """Any input as numbered rows; standard input is read in a thread so the loop never blocks."""
    return Numbered(rows, keys, lookahead=lookahead)

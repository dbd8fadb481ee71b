"""Any input as numbered rows: a `Source`, or an iterable or async iterable of records.

With a `lookahead`, rows are read in batches and each batch is shown to it before the first of
its rows is handed on, so that a rule can look all their leads up at once (`skip_unchanged`
asks its state file once per batch, not once per row). A batch is what can be had without
waiting: up to `batch` rows of a file or an iterable, the rows already read from a pipe, one row
of an async iterable (its next row may be long in coming).
"""

from __future__ import annotations

import collections
import io
import itertools
import os
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Mapping
from typing import Any, Final

from ..models import LeadUpdate
from .columns import Invalid, Item, Row, label, validate
from .pump import Pump
from .record_keys import KeyPlan
from .schema import REF_KEY
from .source import Source

#: One row given in Python: a dict (validated like a JSON line) or a `LeadUpdate`.
Record = Mapping[str, Any] | LeadUpdate
#: What a job reads: a `Source`, or records. A path (`str` is an iterable too, of characters)
#: is no `Rows` for a type checker, and `check_rows()` refuses it at run time.
Rows = Source | Iterable[Record] | AsyncIterable[Record]


def check_rows(rows: object) -> None:
    """Refuse, in one line that says what to pass, what is no rows: a path, a file's contents,
    an open file, a single row, or what cannot be iterated."""
    if isinstance(rows, bytes) and b"\n" in rows:
        raise TypeError(
            "rows is bytes (a file's contents?): pass Source(path) to read a file, or an iterable "
            "of dicts or LeadUpdates"
        )
    if isinstance(rows, io.IOBase):
        name = getattr(rows, "name", None)
        shown = repr(name) if isinstance(name, str) else "path"
        raise TypeError(
            f"rows is an open file: pass Source({shown}) to read it, or an iterable of dicts or "
            "LeadUpdates"
        )
    if isinstance(rows, str | bytes | os.PathLike):
        path = os.fsdecode(rows)
        raise TypeError(
            f"rows is a path ({path!r}): pass Source({path!r}) to read a file, or an iterable of "
            "dicts or LeadUpdates"
        )
    if isinstance(rows, Mapping | LeadUpdate):
        raise TypeError("rows is a single row: pass an iterable of rows, such as a list of one")
    if not isinstance(rows, Source | Iterable | AsyncIterable):
        raise TypeError(
            f"rows is {type(rows).__name__!r}, not rows: pass a Source, or an iterable of dicts or "
            "LeadUpdates"
        )


def _item(record: object, keys: KeyPlan) -> Item:
    if type(record) is dict:  # the usual row first: an ABC check costs more than the rest
        return keys.parse(record)
    if isinstance(record, LeadUpdate):
        # model_copy(update=...) and model_construct skip validation: check again
        return validate(record.model_dump(), label(record.id), record.email)
    if isinstance(record, Mapping):
        return keys.parse(record)
    return Invalid("", f"a row must be a dict or LeadUpdate, not {type(record).__name__}")


def _ref(record: object) -> Any:
    """The caller's `ref` of a record: a `LeadUpdate`'s, or a dict's `ref` key (never sent)."""
    if type(record) is dict:  # the usual row first, as in `_item`
        return record.get(REF_KEY)
    if isinstance(record, LeadUpdate):
        return record.ref
    return record.get(REF_KEY) if isinstance(record, Mapping) else None


def _raw(record: object) -> Mapping[str, Any] | None:
    """The record as read, for `--rejects`: a dict (or mapping) as the caller gave it."""
    if type(record) is dict or isinstance(record, Mapping):
        return record
    return None


Lookahead = Callable[[list[Row]], None]
_BATCH: Final = 256


class Numbered:
    """Numbered rows of any input (`rows`), and those already read but not yet taken (`ready()`).

    Without a lookahead, `rows` is the async iterator itself, not a wrapper around it: one hop
    less for every row.
    """

    def __init__(
        self,
        rows: Rows,
        keys: KeyPlan | None = None,
        *,
        lookahead: Lookahead | None = None,
        batch: int = _BATCH,
    ) -> None:
        check_rows(rows)
        self._pump: Pump[Row] | None = None
        self.keys = keys or KeyPlan()
        self._batch = batch
        self._ahead: collections.deque[Row] = collections.deque()
        self._sync: Iterator[Row] | None = None
        self._items: AsyncIterator[Row] | None = None
        if isinstance(rows, Source) and not rows.rereadable:
            self._pump = Pump(iter(rows))  # standard input is read in a thread
            self._items = self._pump
        elif lookahead is not None and not isinstance(rows, AsyncIterable):
            self._sync = _sync_rows(rows, self.keys)
        else:
            self._items = _numbered(rows, self.keys)
        self.rows: AsyncIterator[Row]
        if lookahead is None:
            assert self._items is not None
            self.rows = self._items
        else:
            self.rows = self._looked_ahead(lookahead)

    def __aiter__(self) -> AsyncIterator[Row]:
        return self.rows

    async def _looked_ahead(self, lookahead: Lookahead) -> AsyncIterator[Row]:
        while True:
            batch, error = await self._read_batch()
            if batch:
                lookahead(batch)
                self._ahead.extend(batch)
                while self._ahead:
                    yield self._ahead.popleft()
            if error is not None:  # raised once the rows read before it are handed on
                raise error
            if not batch:
                return

    async def _read_batch(self) -> tuple[list[Row], Exception | None]:
        if self._sync is None:
            assert self._items is not None
            try:
                first = await anext(self._items)  # a pipe or an async iterable: may wait
            except StopAsyncIteration:
                return [], None
            return [first, *(self._pump.ready() if self._pump is not None else [])], None
        batch: list[Row] = []
        try:
            batch.extend(itertools.islice(self._sync, self._batch))
        except Exception as exc:
            return batch, exc
        return batch, None

    def ready(self) -> list[Row]:
        rows = list(self._ahead)
        self._ahead.clear()
        return rows + (self._pump.ready() if self._pump is not None else [])

    async def aclose(self) -> None:
        if self.rows is not self._items:
            await self.rows.aclose()  # type: ignore[attr-defined]
        if self._sync is not None:
            self._sync.close()  # type: ignore[attr-defined]
            return
        aclose = getattr(self._items, "aclose", None)
        if aclose is not None:
            await aclose()


def _sync_rows(rows: Source | Iterable[Any], keys: KeyPlan) -> Iterator[Row]:
    if isinstance(rows, Source):
        yield from rows
        return
    for number, record in enumerate(rows, 1):
        yield Row(number, _item(record, keys), None, _raw(record), _ref(record))


async def _numbered(rows: Rows, keys: KeyPlan) -> AsyncIterator[Row]:
    if isinstance(rows, Source):  # the usual input: no generator in between
        for row in rows:
            yield row
        return
    if not isinstance(rows, AsyncIterable):
        for row in _sync_rows(rows, keys):
            yield row
        return
    number = 0
    records = aiter(rows)
    try:
        async for record in records:
            number += 1
            yield Row(number, _item(record, keys), None, _raw(record), _ref(record))
    finally:  # close the caller's generator now, not whenever it is garbage-collected
        aclose = getattr(records, "aclose", None)
        if aclose is not None:
            await aclose()


def numbered(
    rows: Rows, keys: KeyPlan | None = None, *, lookahead: Lookahead | None = None
) -> Numbered:
    """Any input as numbered rows; standard input is read in a thread so the loop never blocks."""
    return Numbered(rows, keys, lookahead=lookahead)

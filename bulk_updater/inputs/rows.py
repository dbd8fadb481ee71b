"""Any input as numbered rows: a `Source`, or an iterable or async iterable of records."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
from typing import Any

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
    if type(record) is dict:  # the usual row first: an ABC check costs more than the rest
        return keys.parse(record)
    if isinstance(record, LeadUpdate):
        # model_copy(update=...) and model_construct skip validation: check again
        return validate(record.model_dump(), label(record.id), record.email)
    if isinstance(record, Mapping):
        return keys.parse(record)
    return Invalid("", f"a row must be a dict or LeadUpdate, not {type(record).__name__}")


def _raw(record: object) -> Mapping[str, Any] | None:
    """The record as read, for `--rejects`: a dict (or mapping) as the caller gave it."""
    if type(record) is dict or isinstance(record, Mapping):
        return record
    return None


class Numbered:
    """Numbered rows of any input (`rows`), and those already read but not yet taken (`ready()`).

    `rows` is the async iterator itself, not a wrapper around it: one hop less for every row.
    """

    def __init__(self, rows: Rows, keys: KeyPlan | None = None) -> None:
        if isinstance(rows, str | bytes | os.PathLike):
            raise TypeError(f"rows is a path ({rows!r}); pass Source(path) to read a file")
        self._pump: Pump[Row] | None = None
        self.keys = keys or KeyPlan()
        if isinstance(rows, Source) and not rows.rereadable:
            self._pump = Pump(iter(rows))  # standard input is read in a thread
            self.rows: AsyncIterator[Row] = self._pump
        else:
            self.rows = _numbered(rows, self.keys)

    def __aiter__(self) -> AsyncIterator[Row]:
        return self.rows

    def ready(self) -> list[Row]:
        return self._pump.ready() if self._pump is not None else []

    async def aclose(self) -> None:
        aclose = getattr(self.rows, "aclose", None)
        if aclose is not None:
            await aclose()


async def _numbered(rows: Rows, keys: KeyPlan) -> AsyncIterator[Row]:
    if isinstance(rows, Source):
        for row in rows:
            yield row
        return
    number = 0
    if isinstance(rows, AsyncIterable):
        records = aiter(rows)
        try:
            async for record in records:
                number += 1
                yield Row(number, _item(record, keys), None, _raw(record))
        finally:  # close the caller's generator now, not whenever it is garbage-collected
            aclose = getattr(records, "aclose", None)
            if aclose is not None:
                await aclose()
    else:
        for record in rows:
            number += 1
            yield Row(number, _item(record, keys), None, _raw(record))


def numbered(rows: Rows, keys: KeyPlan | None = None) -> Numbered:
    """Any input as numbered rows; standard input is read in a thread so the loop never blocks."""
    return Numbered(rows, keys)

"""The rows a job is given, as the pipeline takes them: held (an input file, one run at a time),
how their keys are read, numbered (the first ones only, with a limit), shown a batch ahead to the
rules that look ahead, and closed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping

from ..errors import InputModifiedError
from ..inputs import ColumnMap, KeyPlan, Numbered, Row, Rows, Source, numbered
from ..inputs.schema import REF_KEY, id_source
from ..models import StopReason
from ..state.inputlock import hold_input
from ..state.paths import Account
from .admission import Rules
from .limit import FirstRows
from .pipeline import Pipeline


def numbered_rows(
    rows: Rows, keys: KeyPlan, pipeline: Pipeline, first: FirstRows | None
) -> Numbered:
    """The job's rows (the first ones, with a limit), each batch shown first to the rules that
    look ahead (`prefetch`)."""
    rules = pipeline.admission
    lookahead = rules.prefetch if isinstance(rules, Rules) and rules.prefetchers else None
    items = numbered(rows, keys, lookahead=lookahead)
    if isinstance(rows, Source) and rows.rereadable:
        items.rows = _watched(items.rows, rows, pipeline)
    return first.cut(items) if first is not None else items


async def _watched(
    rows: AsyncIterator[Row], source: Source, pipeline: Pipeline
) -> AsyncIterator[Row]:
    """`rows` of an input file, which stop the job (`INPUT_CHANGED`) once it changed: as read, as
    its last line with no line break is to be sent (once every other row is done: the exporter
    may be mid-line), and once every row is done (the rest of an export still written)."""
    try:
        async for row in rows:
            if source.held_back(row):
                await _settled(pipeline)
                _recheck(source, pipeline)  # changed: the row is `aborted`, never sent
            yield row
            if pipeline.stop_reason is StopReason.INPUT_CHANGED:
                return  # what comes next is from another export, or not written yet
        await _settled(pipeline)
        source.recheck()
    except InputModifiedError as exc:
        pipeline.stop(StopReason.INPUT_CHANGED, str(exc))
    finally:
        aclose = getattr(rows, "aclose", None)
        if aclose is not None:
            await aclose()


def _recheck(source: Source, pipeline: Pipeline) -> None:
    try:
        source.recheck()
    except InputModifiedError as exc:
        pipeline.stop(StopReason.INPUT_CHANGED, str(exc))


async def _settled(pipeline: Pipeline) -> None:
    """Until every row handed on so far is done, or the job stops."""
    done = asyncio.ensure_future(_done(pipeline))
    stopping = asyncio.ensure_future(pipeline.stopping.wait())
    try:
        await asyncio.wait((done, stopping), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (done, stopping):
            task.cancel()
        await asyncio.gather(done, stopping, return_exceptions=True)


async def _done(pipeline: Pipeline) -> None:
    await pipeline.in_order.drained.wait()
    await pipeline.queue.join()


def ids_from(rows: Rows, keys: KeyPlan) -> str:
    """The column the rows' ids come from, for a message that blames it."""
    if isinstance(rows, Source):
        return id_source(rows.header, rows.columns)
    return id_source(None, keys.mapping)


def keys_of(rows: Rows, columns: Mapping[str, str] | None, ignore_unknown: bool) -> KeyPlan:
    """How the keys of rows that are not a `Source` are read (a `Source` reads its own)."""
    if isinstance(rows, Source) and (columns or ignore_unknown):
        raise TypeError("a Source has its own columns=: give them to Source(path, columns=...)")
    return KeyPlan(ColumnMap(columns), ignore_unknown=ignore_unknown, kept=(REF_KEY,))


def hold_input_file(stack: contextlib.AsyncExitStack, rows: Rows, account: Account) -> None:
    """One run at a time sends an input file to an account (`state.inputlock`), until `stack`
    closes; standard input, a pipe and the caller's rows are never the same job twice."""
    if isinstance(rows, Source) and rows.rereadable:
        lock = hold_input(rows.path, rows.name, account)
        if lock is not None:
            stack.callback(lock.release)


def close_input(rows: Rows) -> None:
    if isinstance(rows, Source):
        rows.close()

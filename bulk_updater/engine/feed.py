"""The rows a job is given, as the pipeline takes them: held (an input file, one run at a time),
how their keys are read, numbered (the first ones only, with a limit), shown a batch ahead to the
rules that look ahead, and closed."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from ..inputs import ColumnMap, KeyPlan, Numbered, Rows, Source, numbered
from ..inputs.schema import REF_KEY, id_source
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
    return first.cut(items) if first is not None else items


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

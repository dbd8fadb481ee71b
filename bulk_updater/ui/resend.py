"""The done step's table: the rows a job did not update, read back from its rejects file, and the
ones the user fixed written out to be sent again (only those).

A rejects file is the input's rows as read, with `_status` and `_message` added: a table's in the
input's encoding and delimiter, a workbook's as a workbook (its numbers and booleans kept). The
reader of `bulk-updater run` leaves those two columns alone, so the fixed rows go back through the
same reader, and a workbook's send what the input's rows would have sent (`copies.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from ..inputs import Row
from .copies import edit, page_cells, write_copy
from .detect import JSON_LINE, ReadOptions

#: The most rows the page's table holds; the file itself has them all.
MAX_ROWS: Final = 500


def read_rejects(path: Path, options: ReadOptions) -> dict[str, Any]:
    """`{"header": [...], "rows": [{"row": N, "cells": [...]}]}`, N counting from 1; a JSON
    lines file's one column is each line, whole."""
    with options.source(path) as source:
        header = list(source.header or ()) if source.format != "jsonl" else [JSON_LINE]
        rows: list[dict[str, Any]] = []
        for row in source:
            if len(rows) == MAX_ROWS:
                break
            rows.append({"row": row.number, "cells": page_cells(row)})
    return {"header": header, "rows": rows}


def write_chosen(
    path: Path, options: ReadOptions, fixed: Mapping[int, Mapping[str, str]], target: Path
) -> None:
    """The rows of `path` numbered in `fixed`, with their edits, at `target`: a copy in the
    rejects file's kind (`write_copy`), read with the default options."""
    with options.source(path) as source:
        names = [JSON_LINE] if source.format == "jsonl" else list(source.header or ())

        def cells(row: Row) -> list[str] | None:
            edits = fixed.get(row.number)
            if edits is None:
                return None
            read = page_cells(row)
            read += [""] * (len(names) - len(read))  # a short row: the page shows every column
            return [edit(read[at], edits.get(name, read[at])) for at, name in enumerate(names)]

        write_copy(source, cells, target)

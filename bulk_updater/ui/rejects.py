"""The done step's table: the rows a job did not update, read back from its rejects file, and the
ones the user fixed written out to be sent again (only those).

A rejects file is the input's rows as read, with `_status` and `_message` added, in the input's
encoding and delimiter; the reader of `bulk-updater run` leaves those two columns alone, so the
fixed rows go back through the same reader.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from .check import cells_of
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
            rows.append({"row": row.number, "cells": cells_of(row)})
    return {"header": header, "rows": rows}


def write_chosen(
    path: Path, options: ReadOptions, fixed: Mapping[int, Mapping[str, str]], target: Path
) -> None:
    """The rows of `path` numbered in `fixed`, with their edits, in UTF-8 at `target` (CSV, or
    JSON lines for JSON lines)."""
    with options.source(path) as source, open(target, "w", encoding="utf-8", newline="") as file:
        if source.format == "jsonl":
            for row in source:
                edits = fixed.get(row.number)
                if edits is not None:
                    cells = cells_of(row)
                    file.write(edits.get(JSON_LINE, cells[0] if cells else "null") + "\n")
            return
        header = list(source.header or ())
        writer = csv.writer(file)
        writer.writerow(header)
        for row in source:
            edits = fixed.get(row.number)
            if edits is None or not isinstance(row.raw, tuple):
                continue
            writer.writerow(
                [edits.get(name, cell) for name, cell in zip(header, row.raw, strict=False)]
            )

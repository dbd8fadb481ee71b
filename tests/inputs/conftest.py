"""Helpers for the input tests: write an input file, read it back as `(row, item)` pairs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bulk_updater import Invalid, LeadUpdate, Source


def write(path: Path, text: str, *, bom: bool = False) -> str:
    """`text` as the UTF-8 file `path`, with a BOM if asked; its name, as `Source` takes it."""
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return str(path)


def read_all(path: str, **kwargs: Any) -> list[tuple[int, LeadUpdate | Invalid]]:
    """Every `(row, item)` pair a `Source` reads from `path`."""
    return [(row.number, row.item) for row in Source(path, **kwargs)]


def only_update(item: LeadUpdate | Invalid) -> LeadUpdate:
    assert isinstance(item, LeadUpdate), item
    return item


def only_invalid(item: LeadUpdate | Invalid) -> Invalid:
    assert isinstance(item, Invalid), item
    return item


def jsonl(path: Path, *records: object, bom: bool = False) -> str:
    """A JSON-lines file: each record as JSON, or as given when it is a string (a raw line)."""
    text = "".join(
        (r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in records
    )
    return write(path, text, bom=bom)

"""The sandbox's leads: reading them from a file and the documented PATCH semantics.

`customFields` is merged because the API docs say so and clients rely on it to set one custom
field without knowing the others. Every other field replaces the stored value, tags included.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from json import JSONDecodeError
from pathlib import Path
from typing import Any, Final

__all__ = ["api_timestamp", "apply_update", "copy_leads", "load_leads"]


def load_leads(path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """Read leads into an id -> lead dict: a JSON list of lead objects (each with a string
    `_id`), or a CSV whose header names the lead fields as the JSON does (`_id` or `id`,
    `email`, `firstName`, ..., `tags` as `a;b` or a JSON list, `customFields.NAME`).

    Raises `ValueError` naming the file and the format expected.
    """
    name = os.fspath(path)
    try:
        with open(path, encoding="utf-8-sig", newline="") as file:
            text = file.read()
    except UnicodeDecodeError:
        raise ValueError(f"{name}: not UTF-8 text; {_EXPECTED}") from None
    suffix = Path(name).suffix.lower()
    if suffix in (".csv", ".tsv", ".txt") or (suffix != ".json" and text.lstrip()[:1] not in "[{"):
        return _from_csv(name, text)
    try:
        data = json.loads(text)
    except ValueError as exc:
        where = f"line {exc.lineno} column {exc.colno}" if isinstance(exc, JSONDecodeError) else ""
        raise ValueError(f"{name}: not valid JSON ({where}); {_EXPECTED}") from None
    if not isinstance(data, list):
        raise ValueError(f"{name}: a JSON {type(data).__name__}, not a list; {_EXPECTED}")
    return _keyed(name, data, lambda index: f"item {index}")


_EXPECTED: Final = (
    "--leads takes a JSON list of lead objects (as samples/leads.json) or a CSV whose header "
    "names lead fields (_id or id, email, firstName, ..., tags, customFields.NAME)"
)
_DELIMITERS: Final = (",", ";", "\t", "|")


def _keyed(name: str, leads: list[Any], where: Callable[[int], str]) -> dict[str, dict[str, Any]]:
    keyed: dict[str, dict[str, Any]] = {}
    for index, lead in enumerate(leads):
        if not isinstance(lead, dict) or not isinstance(lead.get("_id"), str) or not lead["_id"]:
            raise ValueError(f"{name}: {where(index)} is not a lead with an _id; {_EXPECTED}")
        if lead["_id"] in keyed:
            raise ValueError(f"{name}: {where(index)}: duplicate lead id {lead['_id']!r}")
        keyed[lead["_id"]] = lead
    return keyed


def _from_csv(name: str, text: str) -> dict[str, dict[str, Any]]:
    """Leads from a CSV: one per row, each cell the field its header names (empty: left out)."""
    first = text.split("\n", 1)[0]
    delimiter = max(_DELIMITERS, key=first.count)
    rows = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = [cell.strip() for cell in next(rows, [])]
    if "_id" not in header and "id" not in header:
        raise ValueError(f"{name}: the CSV header has no _id or id column; {_EXPECTED}")
    leads: list[Any] = []
    lines: list[int] = []
    for cells in rows:
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) > len(header):
            raise ValueError(
                f"{name}: line {rows.line_num} has {len(cells)} cells, the header {len(header)}"
            )
        leads.append(_lead(dict(zip(header, cells, strict=False)), name, rows.line_num))
        lines.append(rows.line_num)
    return _keyed(name, leads, lambda index: f"line {lines[index]}")


def _lead(cells: dict[str, str], name: str, line: int) -> dict[str, Any]:
    lead: dict[str, Any] = {}
    for field, value in cells.items():
        value = value.strip()
        if field.startswith("customFields."):
            if value:
                lead.setdefault("customFields", {})[field.removeprefix("customFields.")] = value
        elif field == "tags":
            lead["tags"] = _tags(value, name, line)
        elif value:
            lead["_id" if field == "id" else field] = value
    return lead


def _tags(value: str, name: str, line: int) -> list[str]:
    """`a;b` or a JSON list of strings."""
    if not value.startswith("["):
        return [tag.strip() for tag in value.split(";") if tag.strip()]
    try:
        tags = json.loads(value)
    except ValueError:
        tags = None
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise ValueError(f"{name}: line {line}: tags must be a;b or a JSON list of strings")
    return tags


def copy_leads(leads: Mapping[str, Mapping[str, Any]] | None) -> dict[str, dict[str, Any]]:
    """A deep copy, so that updates never reach the caller's objects."""
    return {str(key): copy.deepcopy(dict(lead)) for key, lead in (leads or {}).items()}


def api_timestamp() -> str:
    """The current UTC time as the API writes it: `2026-01-01T00:00:00.000Z`."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def apply_update(lead: dict[str, Any], fields: Mapping[str, Any]) -> None:
    """Apply a checked update body to `lead` in place and stamp `updatedAt`."""
    for key, value in fields.items():
        if key == "customFields":
            custom = lead.get("customFields")
            lead["customFields"] = {**(custom if isinstance(custom, dict) else {}), **value}
        elif key == "tags":
            lead["tags"] = list(value)
        else:
            lead[key] = value
    lead["updatedAt"] = api_timestamp()

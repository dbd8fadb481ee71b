"""The row schema, written once: which column name means which lead field, and how a value of
that column becomes the field's value, for CSV cells and JSON values alike.

`column_for()` is the one place that maps a name to a `Column`; `CsvColumns` checks a CSV header
with it and converts records, `parse_mapping()` converts JSON-lines and library records. A new
column rule (a header alias, a column map) is a change to `column_for()` alone.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final

from pydantic import ValidationError

from ..errors import InputError
from ..models import TEXT_FIELDS, LeadUpdate

CUSTOM_PREFIX: Final = "customFields."
KNOWN: Final = ("id", "_id", *TEXT_FIELDS, "tags", "customFields", "email")


@dataclass(frozen=True, slots=True)
class Invalid:
    """A record that cannot be sent; `id` and `email` are what the record held, for the report."""

    id: str
    message: str
    email: str | None = None


Item = LeadUpdate | Invalid


class Kind(Enum):
    ID = "id"
    EMAIL = "email"
    TEXT = "text"
    TAGS = "tags"
    CUSTOM_JSON = "customFields"
    CUSTOM = "customFields.<name>"


@dataclass(frozen=True, slots=True)
class Column:
    """What one input column means: its kind, and the field (or custom field) it sets."""

    kind: Kind
    field: str


_EXACT: Final = {
    "id": Column(Kind.ID, "id"),
    "_id": Column(Kind.ID, "id"),
    "email": Column(Kind.EMAIL, "email"),
    "tags": Column(Kind.TAGS, "tags"),
    "customFields": Column(Kind.CUSTOM_JSON, "customFields"),
    **{name: Column(Kind.TEXT, name) for name in TEXT_FIELDS},
}


def column_for(name: str) -> Column | None:
    """The column a name stands for, or None for an unknown name."""
    column = _EXACT.get(name)
    if column is None and name.startswith(CUSTOM_PREFIX) and len(name) > len(CUSTOM_PREFIX):
        return Column(Kind.CUSTOM, name[len(CUSTOM_PREFIX) :])
    return column


def suggest(name: str, known: Iterable[str] = KNOWN) -> str:
    """' (did you mean `jobTitle`?)' for a near miss, else ''."""
    known = list(known)
    by_lower = {k.lower(): k for k in known}
    if name.lower().startswith(CUSTOM_PREFIX.lower()) and not name.startswith(CUSTOM_PREFIX):
        return f" (did you mean `{CUSTOM_PREFIX}{name[len(CUSTOM_PREFIX) :]}`?)"
    match = by_lower.get(name.lower()) or next(
        iter(difflib.get_close_matches(name, known, n=1, cutoff=0.6)), None
    )
    return f" (did you mean `{match}`?)" if match else ""


def problem_of(exc: ValidationError) -> str:
    """One line naming each column with a problem and what it must be, in plain words."""
    parts: list[str] = []
    for error in exc.errors(include_url=False, include_input=False):
        part = _plain(tuple(str(p) for p in error["loc"]), error["type"], str(error["msg"]))
        if part not in parts:  # a union type reports one problem once per member
            parts.append(part)
    return "; ".join(parts)


def _plain(loc: tuple[str, ...], kind: str, message: str) -> str:
    if kind == "value_error" or not loc:  # our own validators' words
        message = message.removeprefix("Value error, ")
        return f"column {'.'.join(loc)}: {message}" if loc else message
    field = loc[0]
    if field == "tags":
        return "column tags: must be a list of strings"
    if field == "customFields" and len(loc) > 1:
        return f"column customFields.{loc[1]}: must be text, a number, true/false or null"
    if field == "customFields":
        return "column customFields: must be an object (name: value)"
    if kind == "extra_forbidden":
        return f"unknown column `{field}`{suggest(field)}"
    return f"column {field}: must be text"


_LABEL_LIMIT: Final = 200


def label(value: object) -> str:
    """An id or email as the report shows it, whatever type a JSON record gave it (bounded)."""
    if not isinstance(value, str):
        try:
            value = json.dumps(value, default=str)
        except (ValueError, RecursionError):
            return f"<{type(value).__name__} nested too deeply>"
    return value if len(value) <= _LABEL_LIMIT else value[:_LABEL_LIMIT] + "…"


def validate(data: dict[str, Any], rid: str, email: str | None) -> Item:
    try:
        return LeadUpdate.model_validate(data)
    except ValidationError as exc:
        return Invalid(rid, problem_of(exc), email)
    except RecursionError:
        return Invalid(rid, "a value is nested too deeply", email)


def parse_mapping(record: Mapping[str, Any]) -> Item:
    """Validate one JSON-lines / library record (keys as in the CSV header, JSON types)."""
    raw_id = record.get("id", record.get("_id", ""))
    rid = label(raw_id) if raw_id is not None else ""
    if "email" in record:
        return Invalid(rid, "column email: email cannot be changed; remove it from the row")
    if "id" in record and "_id" in record:
        return Invalid(rid, "both `id` and `_id` are set; keep one")
    data: dict[str, Any] = {}
    custom: dict[str, Any] = {}
    for key, value in record.items():
        if not isinstance(key, str):
            return Invalid(rid, f"column {key!r}: a column name must be a string")
        if value is None:
            continue
        column = column_for(key)
        if column is None:
            return Invalid(rid, f"unknown column `{key}`{suggest(key)}")
        if column.kind is Kind.CUSTOM:
            custom[column.field] = value
        else:
            data[column.field] = value
    if custom:
        base = data.get("customFields", {})
        if not isinstance(base, dict):
            return Invalid(rid, "column customFields: must be a JSON object")
        data["customFields"] = {**base, **custom}
    return validate(data, rid, None)


def parse_tags(cell: str) -> list[str] | str:
    """The tag list of a cell, or a problem message."""
    if cell.lstrip().startswith("["):
        try:
            tags = json.loads(cell)
        except json.JSONDecodeError as exc:
            return f"column tags: not a valid JSON array ({exc.msg})"
        except RecursionError:
            return "column tags: the JSON array is nested too deeply"
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            return "column tags: the JSON array must hold only strings"
        return tags
    tags = [t.strip() for t in cell.split(";") if t.strip()]
    return tags if tags else f"column tags: no tag in {cell!r}"


def parse_custom_json(cell: str) -> dict[str, Any] | str:
    try:
        value = json.loads(cell)
    except json.JSONDecodeError as exc:
        return f"column customFields: not a valid JSON object ({exc.msg})"
    except RecursionError:
        return "column customFields: the JSON is nested too deeply"
    if not isinstance(value, dict):
        return 'column customFields: must be a JSON object like {"industry": "SaaS"}'
    return value


class CsvColumns:
    """The header of a CSV file, checked once, and the conversion of its records."""

    def __init__(self, header: list[str], name: str) -> None:
        self.names = [h.strip() for h in header]
        self.columns: list[Column] = []
        seen: set[str] = set()
        for heading in self.names:
            if not heading:
                raise InputError(f"{name}: the header has an empty column name; name or remove it")
            if heading in seen:
                raise InputError(f"{name}: column `{heading}` appears twice in the header")
            seen.add(heading)
            column = column_for(heading)
            if column is None:
                raise InputError(f"{name}: unknown column `{heading}`{suggest(heading)}")
            self.columns.append(column)
        ids = [i for i, c in enumerate(self.columns) if c.kind is Kind.ID]
        if len(ids) > 1:
            raise InputError(f"{name}: has both `id` and `_id` columns; keep one")
        if not ids:
            raise InputError(f"{name}: no `id` column; the first line must name the columns")
        self.id_index = ids[0]
        emails = [i for i, c in enumerate(self.columns) if c.kind is Kind.EMAIL]
        self.email_index = emails[0] if emails else None

    def convert(self, cells: list[str]) -> Item:
        rid = cells[self.id_index] if self.id_index < len(cells) else ""
        email = None
        if self.email_index is not None and self.email_index < len(cells):
            email = cells[self.email_index] or None
        if len(cells) != len(self.columns):
            return Invalid(
                rid, f"the row has {len(cells)} cells but the header {len(self.columns)}", email
            )
        data: dict[str, Any] = {"id": rid, "email": email}
        custom: dict[str, Any] = {}
        for heading, column, cell in zip(self.names, self.columns, cells, strict=True):
            kind = column.kind
            if not cell or kind is Kind.ID or kind is Kind.EMAIL:
                continue
            if max(cell) >= "\udc80" and any("\udc80" <= c <= "\udcff" for c in cell):
                return Invalid(rid, f"column {heading}: not valid UTF-8 text", email)
            if kind is Kind.TEXT:
                data[column.field] = cell
            elif kind is Kind.CUSTOM:
                custom[column.field] = cell
            elif kind is Kind.TAGS:
                tags = parse_tags(cell)
                if isinstance(tags, str):
                    return Invalid(rid, tags, email)
                data["tags"] = tags
            else:
                obj = parse_custom_json(cell)
                if isinstance(obj, str):
                    return Invalid(rid, obj, email)
                custom = {**obj, **custom}
        if custom:
            data["customFields"] = custom
        return validate(data, rid, email)

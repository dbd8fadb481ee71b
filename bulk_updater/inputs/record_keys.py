"""How a JSON-lines or dict record becomes a `LeadUpdate`: its keys resolved one by one
(`KeyPlan`, remembered), by `schema.column_for()`, as a table's header is in `columns.py`.

A record that cannot be sent becomes `Invalid`, with a message naming the key and what it must be.
A value of `null`, `""` or spaces only is not sent, as an empty cell of a CSV is not; nor is
such text in the `customFields` object.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Final

from ..models import ValueType
from .items import Invalid, Item
from .schema import DROP, RAW_COLUMN, REJECTS_COLUMNS, Column, ColumnMap, Kind, column_for
from .suggest import hint, hints, unknown_message
from .values import (
    by_email,
    label,
    set_fields,
    shows_nothing,
    trim_email,
    typed_value,
    validate,
)

__all__ = ["KeyPlan", "parse_mapping"]


class KeyPlan:
    """The columns of JSON-lines and dict records, resolved key by key (and remembered).

    `kept` names keys that mean no field but are known, so left out without a word: the `ref` of
    dict rows given in Python, the keys a `Source` keeps for the report.
    """

    def __init__(
        self,
        mapping: ColumnMap | None = None,
        *,
        ignore_unknown: bool = False,
        kept: Collection[str] = (),
    ) -> None:
        self.mapping = mapping
        self.ignore_unknown = ignore_unknown
        self.kept = kept
        self.dropped: dict[str, None] = {}  # unknown keys left out, in the order first seen
        self._known: dict[object, Column | None] = {}
        self._types: dict[str, ValueType] = {}  # keys the map gives a type (as many as it has)

    def column(self, key: object) -> Column | None:
        known = self._known
        if key not in known:
            column = None
            if isinstance(key, str):
                column = DROP if key in REJECTS_COLUMNS else column_for(key, self.mapping)
                if column is None and key in self.kept:
                    column = DROP
                value_type = self.mapping.type_of(key) if self.mapping is not None else None
                if value_type is not None:
                    self._types[key] = value_type
            if len(known) < 10_000:  # hostile input must not grow this without bound
                known[key] = column
            return column
        return known[key]

    def plan(self) -> list[str]:
        """`jobTitle → jobTitle`, `phoneNumber → dropped (did you mean `phone`?)` per key met
        so far (in the order first met), for `--dry-run`."""
        lines = []
        for key, column in self._known.items():
            if not isinstance(key, str):
                continue
            if column is not None:
                meaning = str(column) + (", kept in the report" if key in self.kept else "")
            else:
                meaning = ("dropped" if self.ignore_unknown else "unknown") + hint(key)
            lines.append(f"{key} → {meaning}")
        return lines

    def parse(self, record: Mapping[str, Any]) -> Item:
        """Validate one JSON-lines / library record (keys as in a header, JSON types)."""
        known, data, custom = self._known, {}, {}
        raw_id: Any = _NONE
        email: str | None = None
        problem: str | None = None  # the first one: reported once the id is known
        unknown: dict[str, Any] | None = None  # unknown keys: the first problem, all named
        nulls: set[Column] = set()  # columns given as JSON null (a second key for one is wrong)
        for key, value in record.items():
            column = known.get(key, _UNKNOWN)
            if column is _UNKNOWN:
                column = self.column(key)
            if column is None:
                if key == RAW_COLUMN:  # a rejects file's line that was no JSON, fed back as is
                    problem = problem or (
                        f"`{RAW_COLUMN}` holds a line that was not valid JSON when first read: "
                        "write its fields as a JSON object in its place"
                    )
                elif type(key) is not str:
                    problem = problem or f"column {key!r}: a column name must be a string"
                elif not self.ignore_unknown:
                    if unknown is None and problem is None:
                        unknown = {}
                    if unknown is not None:
                        unknown[key] = value
                elif len(self.dropped) < 100:
                    self.dropped[key] = None
                continue
            kind = column.kind
            if kind is _TEXT or kind is _TAGS or kind is _CUSTOM_JSON:
                if column.field in data or column in nulls:  # one key would lose silently
                    problem = problem or _twice(record, column, self)
                elif value is not None and not (type(value) is str and _blank(value)):
                    if kind is Kind.CUSTOM_JSON and isinstance(value, dict):
                        value = set_fields(value)  # `{"industry": ""}` leaves it alone too
                    data[column.field] = value
                else:
                    nulls.add(column)
            elif kind is _ID:
                if raw_id is not _NONE:
                    problem = problem or _twice(record, column, self)
                raw_id = value
            elif kind is _CUSTOM:
                if column.field in custom or column in nulls:
                    problem = problem or _twice(record, column, self)
                elif value is not None and not (type(value) is str and _blank(value)):
                    value_type = self._types.get(key) if self._types else None
                    if value_type is not None:
                        value, wrong = typed_value(value, value_type)
                        if wrong is not None:
                            problem = problem or f"column {key}: {wrong}"
                    custom[column.field] = value
                else:
                    nulls.add(column)
            elif kind is _EMAIL:
                if email is not None or column in nulls:
                    problem = problem or _twice(record, column, self)
                elif value is None:
                    nulls.add(column)
                else:  # an address is kept whole but for spaces around it (it is searched
                    email = trim_email(value) if type(value) is str else label(value)  # for)
        if raw_id is _NONE:
            raw_id = None
        rid = "" if raw_id is None else label(raw_id)
        if unknown is not None:
            problem = _unknown(unknown)
        if problem is not None:
            return Invalid(rid, problem, email)
        if custom:
            base = data.get("customFields", {})
            if not isinstance(base, dict):
                return Invalid(rid, "column customFields: must be a JSON object", email)
            data["customFields"] = {**base, **custom}
        if (raw_id is None and email is not None) or (_empty(raw_id) and email):
            return by_email(data, email)  # no id: the row is matched by its email
        data["id"] = "" if raw_id is None else raw_id
        if email is not None:
            data["email"] = email
        return validate(data, rid, email)


def _unknown(keys: dict[str, Any]) -> str:
    """The message for a record's unknown keys, each with its hint from its value."""
    values = [[] if value is None else [label(value)] for value in keys.values()]
    return unknown_message(keys, hints(list(keys), values))


def _blank(text: str) -> bool:
    """Text that means "leave this field alone", as an empty cell of a CSV does: `""`, or only
    spaces and characters that show nothing (what exporters write for a missing value; no one
    means to set a field to it)."""
    return not text or shows_nothing(text)


def _empty(value: object) -> bool:
    """An id that is no id: empty text, or spaces."""
    return type(value) is str and not value.strip()


_NONE: Final = object()  # no id key at all (an id of `null` is `None`)
_UNKNOWN: Final = Column(Kind.DROP, "<not looked up yet>")
#: The kinds `parse` tells apart, looked up once: `Kind.TEXT` costs a key 60 ns more.
_TEXT, _TAGS, _CUSTOM_JSON, _CUSTOM = Kind.TEXT, Kind.TAGS, Kind.CUSTOM_JSON, Kind.CUSTOM
_ID, _EMAIL = Kind.ID, Kind.EMAIL


def _twice(record: Mapping[str, Any], column: Column, plan: KeyPlan) -> str:
    """The message for two keys of `record` that mean `column` (rare: found the slow way)."""
    keys = [key for key in record if plan.column(key) is column]
    return f"keys `{keys[0]}` and `{keys[-1]}` both mean {column}; keep one"


def parse_mapping(record: Mapping[str, Any]) -> Item:
    """A record with the default rules (no map, unknown keys refused)."""
    return _DEFAULT.parse(record)


_DEFAULT: Final = KeyPlan()

"""The row schema, written once: which column name means which lead field.

`column_for()` is the one place that maps a name to a `Column`, for a CSV or spreadsheet header,
a JSON key or a dict key alike. A name matches a field ignoring case, spaces, `_` and `-`
(`First Name`, `first_name` and `FIRSTNAME` are `firstName`); `Custom Fields.Region` is the custom
field `Region`, its name kept as written. Nothing cleverer is guessed (`Record ID` is not an id):
for anything else the user says what a column is with a `ColumnMap` (`--map "HEADER=FIELD"`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Final

from ..errors import ConfigError
from ..models import TEXT_FIELDS, VALUE_TYPES, ValueType

CUSTOM_PREFIX: Final = "customFields."
#: Columns the reader leaves alone: the status and message a `--rejects` file adds (the report
#: writes them from here, so the file goes back in as the input).
REJECTS_COLUMNS: Final = ("_status", "_message")
#: Where a `--rejects` file of JSON lines keeps a line that was not JSON, as it was read (the
#: reader says what to do with it).
RAW_COLUMN: Final = "_raw"
#: The key of a dict row given in Python that holds the caller's reference: never a column.
REF_KEY: Final = "ref"


class Kind(Enum):
    ID = "id"
    EMAIL = "email"
    TEXT = "text"
    TAGS = "tags"
    CUSTOM_JSON = "customFields"
    CUSTOM = "customFields.<name>"
    DROP = "dropped"


@dataclass(frozen=True, slots=True)
class Column:
    """What one input column means: its kind, and the field (or custom field) it sets."""

    kind: Kind
    field: str

    def __str__(self) -> str:
        if self.kind is Kind.CUSTOM:
            return CUSTOM_PREFIX + self.field
        return "dropped" if self.kind is Kind.DROP else self.field


DROP: Final = Column(Kind.DROP, "")
_FIELDS: Final = (
    Column(Kind.ID, "id"),
    Column(Kind.EMAIL, "email"),
    Column(Kind.TAGS, "tags"),
    Column(Kind.CUSTOM_JSON, "customFields"),
    *(Column(Kind.TEXT, name) for name in TEXT_FIELDS),
)
_SPACING: Final = re.compile(r"[\s_\-]+")


def normal(name: str) -> str:
    """A name as it is compared: no case, no spaces, `_` or `-`."""
    return _SPACING.sub("", name).casefold()


_BY_NORMAL: Final = {normal(column.field): column for column in _FIELDS}
#: Each field's name as compared (`jobtitle`) -> as written (`jobTitle`).
FIELD_NAMES: Final = {name: column.field for name, column in _BY_NORMAL.items()}
_CUSTOM_NORMAL: Final = normal(CUSTOM_PREFIX)


_CUSTOM_COLUMNS: dict[str, Column] = {}  # one object per custom field: cheap to compare


def field_column(name: str) -> Column | None:
    """The column a name stands for by the matching rules alone, or None.

    One field is always one `Column` object, so two names for it are the same object.
    """
    name = name.strip()
    column = _BY_NORMAL.get(normal(name))
    if column is not None:
        return column
    head, dot, custom = name.partition(".")
    if dot and custom.strip() and normal(head + ".") == _CUSTOM_NORMAL:
        custom = custom.strip()
        column = _CUSTOM_COLUMNS.get(custom)
        if column is None:
            column = Column(Kind.CUSTOM, custom)
            if len(_CUSTOM_COLUMNS) < 10_000:
                _CUSTOM_COLUMNS[custom] = column
        return column
    return None


class ColumnMap:
    """`--map "HEADER=FIELD"` (library: `columns={"Lead ID": "id"}`): what the user says a
    column is. FIELD is `id`, `email`, a lead field, `customFields.<name>`, or `-` to drop it;
    `customFields.<name>:TYPE` gives its values a type (`VALUE_TYPES`).

    A header matches ignoring case and spaces around it, as the entries do among themselves:
    of two entries for one header, whatever their case, the later wins (a `--map` flag over a
    job file's entry, which comes first).
    """

    def __init__(self, entries: Mapping[str, str] | None = None) -> None:
        self.entries: dict[str, Column] = {}  # each header as last written -> its column
        self.types: dict[str, ValueType] = {}  # `customFields.n:number`: by folded header
        self._folded: dict[str, Column] = {}
        self._names: dict[str, str] = {}  # folded header -> as last written
        for header, target in (entries or {}).items():
            self._add(header, target)

    def _add(self, header: str, target: str) -> None:
        field, kind = _typed(header, target)
        column = DROP if field.strip() == "-" else field_column(field)
        if column is None:
            raise ConfigError(
                f"--map {header}={target}: `{target}` is not a field; use id, email, a lead "
                f"field ({', '.join(TEXT_FIELDS)}, tags, customFields), "
                "customFields.<name>, or - to drop the column"
            )
        name = header.strip()
        folded = name.casefold()
        earlier = self._names.pop(folded, None)
        if earlier is not None:
            del self.entries[earlier]
        self._names[folded] = name
        self.entries[name] = column
        self._folded[folded] = column
        self.types.pop(folded, None)
        if kind is not None:
            self.types[folded] = kind

    @classmethod
    def parse(cls, pairs: Iterable[str]) -> ColumnMap:
        """From `HEADER=FIELD` strings, as `--map` gives them (the later of two for a header
        wins)."""
        mapping = cls()
        for pair in pairs:
            header, equals, target = pair.rpartition("=")
            if not equals or not header.strip() or not target.strip():
                raise ConfigError(f'--map {pair}: write it as --map "HEADER=FIELD"')
            mapping._add(header, target)
        return mapping

    def type_of(self, name: str) -> ValueType | None:
        """The type the map gives the column `name`'s values, if any."""
        return self.types.get(name.strip().casefold())

    def get(self, name: str) -> Column | None:
        return self._folded.get(name.strip().casefold())

    def __bool__(self) -> bool:
        return bool(self.entries)

    def describe(self) -> str:
        """A stable text of the map, for `--resume` to tell whether it changed."""
        types = self.types
        return ";".join(
            f"{h}={c}{f':{types[h.casefold()]}' if h.casefold() in types else ''}"
            for h, c in sorted(self.entries.items())
        )


_TYPE_LIST: Final = ", ".join(f":{kind}" for kind in VALUE_TYPES[:-1]) + f" or :{VALUE_TYPES[-1]}"


def _typed(header: str, target: str) -> tuple[str, ValueType | None]:
    """`customFields.n:number` → (`customFields.n`, `number`); a target with no `:` as is.

    What follows the last `:` of a custom field is its type, or the target is refused: a type
    misspelt (`:int`, `:Boolean`) must never become part of the field's name. A custom field
    whose name holds `:` is written with its type (`customFields.utm:source:text`).
    """
    field, colon, kind = target.rpartition(":")
    if not colon:
        return target, None
    column = field_column(field) or field_column(target)
    if column is None:
        return target, None  # no field at all: refused as such
    if column.kind is not Kind.CUSTOM:
        raise ConfigError(
            f"--map {header}={target}: a type (:{kind.strip()}) is for customFields.<name> only"
        )
    kind = kind.strip()
    if kind not in VALUE_TYPES:
        named = f"`:{kind}` is not a type" if kind else "`:` is followed by no type"
        if kind.lower() in VALUE_TYPES:
            named += f" (types are written in lower case: `:{kind.lower()}`)"
        raise ConfigError(
            f"--map {header}={target}: {named}; use {_TYPE_LIST} (a custom field whose name "
            f"holds `:` takes its type after it: {CUSTOM_PREFIX}a:b:text)"
        )
    return field, VALUE_TYPES[VALUE_TYPES.index(kind)]


def column_for(name: str, mapping: ColumnMap | None = None) -> Column | None:
    """The column a name stands for: the user's map first, then the matching rules."""
    if mapping is not None and (column := mapping.get(name)) is not None:
        return column
    return field_column(name)


def id_source(names: Iterable[str] | None, mapping: ColumnMap | None = None) -> str:
    """Where the ids of a table (its header `names`) or of records come from, as a message says
    it: column `Lead ID` (a column mapped to id, or named so)."""
    table = names is not None
    if names is None:  # records: the key the map names, else the keys that mean id by name
        names = [h for h, c in mapping.entries.items() if c.kind is Kind.ID] if mapping else []
    for name in names:
        column = None if name in REJECTS_COLUMNS else column_for(name, mapping)
        if column is not None and column.kind is Kind.ID:
            return f"column `{name.strip()}`"
    return "the searches by email" if table else "column `id`"

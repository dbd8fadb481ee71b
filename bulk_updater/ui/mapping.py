"""The columns step: what each header means, how that was found, and the mapping remembered.

Each header gets a field (`id`, `email`, a lead field, `customFields.NAME`) or `-` (dropped),
found in this order: what the user chose on the page; what was remembered for the same set of
headers; the matching rules of `bulk-updater run` (`exact` when the header is the field's name,
`normalised` when it matches ignoring case, spaces, `_` and `-`); else a field the header names
(`Lead ID`: `id`), as a `suggested` one that the user confirms; else none (`unknown`, dropped).
The mapping is remembered per set of headers, not per file name, so that next month's export of
the same shape opens mapped, with the tags separator it was checked with (`page_separator`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ..errors import BulkUpdaterError
from ..inputs import ColumnMap
from ..inputs.schema import field_column, normal
from ..inputs.suggest import nearest
from ..models import TEXT_FIELDS
from ..settings import tags_separator
from ..state.paths import state_dir

#: The field of a column that is not sent, as `--map "HEADER=-"` writes it.
NO_FIELD: Final = "-"
#: Every field a column can mean, as the page's select lists them.
FIELDS: Final = ("id", "email", *TEXT_FIELDS, "tags", "customFields")
#: How a column's meaning was found; only `suggested` and `unknown` ask the user to look.
DECIDED: Final = frozenset({"chosen", "remembered", "exact", "normalised"})


@dataclass(frozen=True)
class Choice:
    """One header's meaning: its field (or `-`) and how it was found."""

    header: str
    field: str
    how: str

    def describe(self) -> dict[str, str]:
        return {"header": self.header, "field": self.field, "how": self.how}


def choose(
    header: list[str], chosen: Mapping[str, str], remembered: Mapping[str, str]
) -> list[Choice]:
    """The meaning of each header, by the order of precedence above."""
    choices = []
    for name in header:
        if name in chosen:
            choices.append(Choice(name, chosen[name], "chosen"))
        elif name in remembered:
            choices.append(Choice(name, remembered[name], "remembered"))
        else:
            choices.append(_matched(name))
    return choices


def _matched(name: str) -> Choice:
    column = field_column(name)
    if column is not None:
        how = "exact" if str(column) == name else "normalised"
        return Choice(name, str(column), how)
    suggestion = nearest(name)
    # Only a field named inside the header (`Lead ID`: id) is put forward: a look-alike
    # (`Owner`, near `phone`) would send a column's values to a field they do not belong in.
    if suggestion is not None and normal(suggestion) in normal(name):
        return Choice(name, suggestion, "suggested")
    return Choice(name, NO_FIELD, "unknown")


def needs_decision(choices: list[Choice]) -> bool:
    """Whether the user must look at the columns before the check runs by itself."""
    return any(choice.how not in DECIDED for choice in choices)


def column_map(choices: list[Choice]) -> ColumnMap:
    """The mapping as the library takes it: every header said, so nothing is guessed later."""
    return ColumnMap({choice.header: choice.field for choice in choices})


def map_options(choices: list[Choice]) -> list[str]:
    """The `--map` options `bulk-updater run` needs: the columns its rules would read otherwise."""
    options = []
    for choice in choices:
        automatic = field_column(choice.header)
        if str(automatic or NO_FIELD) != choice.field:
            options.append(f"{choice.header}={choice.field}")
    return options


def command_line(
    name: str,
    choices: list[Choice],
    encoding: str | None,
    sheet: str | None,
    header_row: int | None = None,
    tags_separator: str = ";",
) -> str:
    """The `bulk-updater run` command that reads the file as the page does, for a cron job."""
    words = ["bulk-updater", "run", name]
    for option in map_options(choices):
        words += ["--map", option]
    words.append("--ignore-unknown-columns")
    if encoding is not None and encoding not in ("utf-8", "utf-8-sig"):
        words += ["--encoding", encoding]
    if sheet is not None:
        words += ["--sheet", sheet]
    if header_row is not None:
        words += ["--header-row", str(header_row)]
    if tags_separator != ";":
        words += ["--tags-separator", "tab" if tags_separator == "\t" else tags_separator]
    return shlex.join(words)


def page_separator(value: str) -> str:
    """The separator a page's `value` names: one the page offers, or a printable ASCII mark.

    A control character would go raw into the command line the page shows.
    """
    try:
        separator = tags_separator(value)
    except ValueError as exc:
        raise BulkUpdaterError(f"tags separator {value!r}: {exc}") from None
    if separator != "\t" and not (separator.isascii() and separator.isprintable()):
        raise BulkUpdaterError(
            f"tags separator {value!r}: choose one the page offers, or a printable punctuation "
            "mark such as , or |"
        )
    return separator


class Remembered:
    """The mappings the user confirmed, one per set of headers, in the user's state folder, each
    with the tags separator it was checked with (next month's file has the same lists)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path if path is not None else state_dir() / "ui-columns.json"

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # none yet, or unreadable: nothing is remembered
            return {}
        return data if isinstance(data, dict) else {}

    def _entry(self, header: list[str]) -> dict[str, Any]:
        entry = self._load().get(_shape(header), {})
        if not isinstance(entry, dict):
            return {}
        if not isinstance(entry.get("columns"), dict):  # written before the separator was kept
            return {"columns": entry}
        return entry

    def get(self, header: list[str]) -> dict[str, str]:
        columns = self._entry(header).get("columns")
        if not isinstance(columns, dict):
            return {}
        return {k: v for k, v in columns.items() if isinstance(v, str)}

    def tags_separator(self, header: list[str]) -> str | None:
        """The separator this set of headers was last checked with; None if none was."""
        separator = self._entry(header).get("tags_separator")
        return separator if isinstance(separator, str) else None

    def save(self, choices: list[Choice], tags_separator: str = ";") -> None:
        """Remember a confirmed mapping and its separator, written whole or not at all."""
        data = self._load()
        data[_shape([choice.header for choice in choices])] = {
            "columns": {c.header: c.field for c in choices},
            "tags_separator": tags_separator,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".ui-columns.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                json.dump(data, file, ensure_ascii=False, indent=1)
            os.replace(temporary, self.path)
        except BaseException:
            os.unlink(temporary)
            raise


def _shape(header: list[str]) -> str:
    """A set of headers as a key: the same columns in another order are the same shape."""
    text = "\n".join(sorted(name.casefold() for name in header))
    return hashlib.sha256(text.encode()).hexdigest()[:32]

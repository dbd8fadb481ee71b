"""`--keep`: input columns copied into the report, so that it joins back to the source system.

A kept column is found in a table's header by its name (exactly, else ignoring case) and shown
under the header's own spelling. Each row's kept cells become its `ref`, a dict by column name,
which its `Outcome` carries to the report. In JSON lines, a kept key is looked up in each line: a
line without it keeps an empty cell.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator, Sequence

from ..errors import ConfigError
from .items import Raw, Row
from .values import label


class Keep:
    """The kept columns of one input: their names as the input spells them, and where they are."""

    def __init__(self, names: list[str], at: list[int] | None) -> None:
        self.names = names
        self._at = at  # each name's position among a table's cells; None: JSON lines' keys

    @classmethod
    def of_table(cls, wanted: Sequence[str], header: Sequence[str], input_name: str) -> Keep:
        """`wanted` found in `header` (a table's first row, margin cells and all)."""
        names = [heading.strip() for heading in header]
        at = list(dict.fromkeys(_find(name, names, input_name) for name in wanted))
        return cls(_checked([names[n] for n in at]), at)

    @classmethod
    def of_keys(cls, wanted: Sequence[str]) -> Keep:
        return cls(_checked([name.strip() for name in wanted]), None)

    def rows(self, rows: Iterator[Row]) -> Iterator[Row]:
        """Each row, its kept cells as its `ref`."""
        for row in rows:
            yield row._replace(ref=self.cells(row.raw))

    def cells(self, raw: Raw) -> dict[str, str]:
        """A record's kept cells by name: empty where the record has none (or was not read)."""
        if self._at is None:
            return self._keys(raw if isinstance(raw, str) else "")
        cells = raw if isinstance(raw, tuple) else ()
        at = zip(self.names, self._at, strict=True)
        return {name: cells[n] if n < len(cells) else "" for name, n in at}

    def _keys(self, line: str) -> dict[str, str]:
        try:
            record = json.loads(line) if line else None
        except (ValueError, RecursionError):
            record = None
        if not isinstance(record, dict):
            return dict.fromkeys(self.names, "")
        return {name: _text(record.get(name)) for name in self.names}


def _text(value: object) -> str:
    return "" if value is None else label(value) if not isinstance(value, str) else value


def _find(name: str, names: list[str], input_name: str) -> int:
    wanted = name.strip()
    if wanted in names:
        return names.index(wanted)
    folded = [heading.casefold() for heading in names]
    if wanted.casefold() in folded:
        return folded.index(wanted.casefold())
    headings = [heading for heading in names if heading]
    close = difflib.get_close_matches(wanted, headings, n=3, cutoff=0.6)
    what = "did you mean" if close else "its columns are"
    listed = ", ".join(f"`{heading}`" for heading in close or headings[:8])
    listed += "?" if close else ", ..." if len(headings) > 8 else ""
    raise ConfigError(f"--keep {name}: {input_name} has no such column ({what} {listed})")


def _checked(names: list[str]) -> list[str]:
    """The names, each once; none empty."""
    if not all(names):
        raise ConfigError("--keep: give the name of a column")
    return list(dict.fromkeys(names))

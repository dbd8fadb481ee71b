"""One line of the report: its columns, and an outcome written as a CSV row or a JSON record.

The columns kept from the input (`--keep`) follow the report's own, from each outcome's `ref`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Final

from ..errors import ConfigError
from ..models import Outcome, Status
from ..printable import escape, escape_json
from .formulas import cell, email_cell, id_cell

COLUMNS: Final = (
    "row",
    "line",
    "id",
    "status",
    "http_status",
    "error_code",
    "message",
    "attempts",
    "duration_ms",
    "email",
)
#: Each status as the report spells it (an `Enum`'s `.value` is a descriptor call, once a row).
_STATUS_TEXT: Final = {status: status.value for status in Status}


def kept_columns(keep: Sequence[str]) -> tuple[str, ...]:
    """The `--keep` columns, refused if one is named like a column of the report's own."""
    for name in keep:
        if name in COLUMNS:
            raise ConfigError(f"--keep {name}: the report has its own `{name}` column")
    return tuple(keep)


def json_line(outcome: Outcome, keep: Sequence[str]) -> str:
    """An outcome as a JSON-lines report's line, its end included."""
    record = {
        "row": outcome.row,
        "line": outcome.line,
        "id": escape(outcome.id),
        "status": outcome.status.value,
        "http_status": outcome.http_status,
        "error_code": outcome.error_code,
        "message": outcome.message,
        "attempts": outcome.attempts,
        "duration_ms": outcome.duration_ms,
        "email": outcome.email,
    }
    if keep:
        record.update(zip(keep, _kept(outcome, keep), strict=True))
    return escape_json(json.dumps(record, ensure_ascii=False)) + "\n"


def csv_cells(outcome: Outcome, keep: Sequence[str]) -> tuple[int | str, ...]:
    """An outcome as a CSV report's cells, each safe from a spreadsheet's formulas."""
    line, http, duration = outcome.line, outcome.http_status, outcome.duration_ms
    cells: tuple[int | str, ...] = (
        outcome.row,
        "" if line is None else line,
        id_cell(outcome.id),
        _STATUS_TEXT[outcome.status],
        "" if http is None else http,
        cell(outcome.error_code),
        cell(outcome.message),
        outcome.attempts,
        "" if duration is None else duration,
        email_cell(outcome.email),
    )
    if keep:
        cells += tuple(cell(text) for text in _kept(outcome, keep))
    return cells


def _kept(outcome: Outcome, keep: Sequence[str]) -> list[str]:
    """The kept cells of an outcome's row (its `ref`, from `Source(keep=...)`), by column."""
    ref = outcome.ref
    if not keep:
        return []
    cells = ref if isinstance(ref, Mapping) else {}
    return [text if isinstance(text := cells.get(name), str) else "" for name in keep]

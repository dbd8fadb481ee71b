"""What `bulk-updater state info` shows of a state file: what it holds, whose, the last run."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from .fields import BOUNDED, decode
from .fileformat import owner
from .lock import in_use

_RUN: Final = ("started_at", "finished_at", "input", "rows", "sent", "unchanged", "accepted")


@dataclass(frozen=True)
class StateInfo:
    """What `bulk-updater state info` shows."""

    path: Path
    leads: int
    size: int  # bytes: the file and its write-ahead log
    last_run: dict[str, Any] | None
    damaged: int = 0  # entries that cannot be read: their rows are sent next time
    account: str | None = None  # whose leads these are (`paths.Account`), if recorded
    in_use: bool = False  # a run holds the file now: the counts are changing


def read_info(conn: sqlite3.Connection, path: Path) -> StateInfo:
    """Every entry is read, as a run would read it, to count the damaged ones."""
    leads = damaged = 0
    for (blob,) in conn.execute(f"SELECT {BOUNDED} FROM leads"):  # a constant: no value
        leads += 1
        damaged += decode(blob) is None
    row = conn.execute(
        f"SELECT {', '.join(_RUN)} FROM runs ORDER BY id DESC LIMIT 1"  # names only: no value
    ).fetchone()
    last = dict(zip(_RUN, row, strict=True)) if row is not None else None
    held = owner(conn)
    size = sum(p.stat().st_size for p in (path, _wal(path)) if p.exists())
    return StateInfo(path, leads, size, last, damaged, str(held) if held else None, in_use(path))


def _wal(path: Path) -> Path:
    return path.with_name(path.name + "-wal")

"""`--dry-run --skip-unchanged`: how many rows would be sent, without writing the state file.

Each valid row is compared as the run would compare it, as if every row sent before it had been
accepted: with what the state file holds and what earlier rows of the lead would have set. Those
would-be values are kept in a private temporary database, so memory stays flat at any size.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Final

from ..models import LeadUpdate
from .fields import Fields, apply, encode, flatten, holds
from .fileformat import select_fields
from .statefile import StateFile

_BATCH: Final = 512


class Preview:
    """Counts the rows that would be sent (`send`) and those that would be `unchanged`."""

    def __init__(self, path: Path, *, batch: int = _BATCH) -> None:
        self.path = path
        self.exists = path.exists()
        self.store = StateFile(path, readonly=True) if self.exists else None
        self.send = 0
        self.unchanged = 0
        self.by_email = 0  # rows whose lead is not known until a search: not compared
        self._size = batch
        self._batch: list[LeadUpdate] = []
        self._scratch = sqlite3.connect("")  # "": private, on disk, deleted when closed
        self._scratch.execute("CREATE TABLE leads (id TEXT PRIMARY KEY, fields BLOB) WITHOUT ROWID")

    def add(self, update: LeadUpdate) -> None:
        self._batch.append(update)
        if len(self._batch) >= self._size:
            self._compare()

    def _compare(self) -> None:
        ids = {update.id for update in self._batch}
        known: dict[str, Fields] = select_fields(self._scratch, ids)  # earlier rows win
        missing = ids - known.keys()
        if self.store is not None and missing:
            known.update(self.store.lookup(missing))
        changed: dict[str, Fields] = {}
        for update in self._batch:
            wanted = flatten(update)
            if holds(known.get(update.id), wanted):
                self.unchanged += 1
            else:
                self.send += 1
                known[update.id] = changed[update.id] = apply(known.get(update.id), wanted)
        with self._scratch:
            self._scratch.executemany(
                "INSERT OR REPLACE INTO leads VALUES (?, ?)",
                [(lead, encode(fields)) for lead, fields in changed.items()],
            )
        self._batch.clear()

    def close(self) -> None:
        """Compare the last rows, close both databases."""
        if self._batch:
            self._compare()
        self._scratch.close()
        if self.store is not None:
            self.store.close()

"""Exact maps whose memory stays flat at any size: a bit table in front of a SQLite file.

The bit table (4 MB, a Bloom filter of one hash: https://en.wikipedia.org/wiki/Bloom_filter)
answers most lookups of absent keys without a query; the entries live in a private on-disk
SQLite database (deleted when the map is closed), written in batches. `--resume` keeps the leads
it sends again in one (`LeadSet`); matching by email keeps each email's answer.
"""

from __future__ import annotations

import sqlite3
from typing import Final

_PENDING: Final = 4096  # entries held in memory before they are written to the table


class DiskMap:
    """`str` keys to `str` values, exact, in flat memory."""

    def __init__(self, bits: int = 1 << 25) -> None:
        self._table = bytearray(bits // 8)
        self._mask = bits - 1
        self._pending: dict[str, str] = {}
        self._db: sqlite3.Connection | None = None

    def _slot(self, key: str) -> tuple[int, int]:
        slot = hash(key) & self._mask
        return slot >> 3, 1 << (slot & 7)

    def put(self, key: str, value: str) -> None:
        byte, bit = self._slot(key)
        self._table[byte] |= bit
        self._pending[key] = value
        if len(self._pending) >= _PENDING:
            self._write()

    def get(self, key: str) -> str | None:
        byte, bit = self._slot(key)
        if not self._table[byte] & bit:
            return None
        if key in self._pending:
            return self._pending[key]
        if self._db is None:
            return None
        row = self._db.execute("SELECT value FROM entries WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def _write(self) -> None:
        if self._db is None:
            self._db = sqlite3.connect("")  # "": a private temporary database on disk
            self._db.execute(
                "CREATE TABLE entries (key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID"
            )
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO entries VALUES (?, ?)", self._pending.items()
            )
        self._pending.clear()

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


class LeadSet(DiskMap):
    """An exact set of lead ids, in flat memory."""

    def add(self, lead_id: str) -> None:
        if lead_id not in self:
            self.put(lead_id, "")

"""What makes a SQLite file a state file: its tables, its version, and whose leads it holds.

    leads (id TEXT PRIMARY KEY, fields BLOB)   WITHOUT ROWID; `fields`: the lead's flat
                                               field -> value map (`fields.py`), compact JSON
    runs  (id, started_at, finished_at, input, rows, sent, unchanged, accepted)   the last 100
    meta  (key, value)                         `application` (`bulk-updater`: ours), `schema`;
                                               `account` and `key_sha256`, whose leads these
                                               are (`paths.Account`, never the key)

The functions run inside the caller's transaction; `select_fields()` reads entries in batches.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Final

from ..errors import StateError
from .fields import BOUNDED, Fields, decode
from .paths import Account

SCHEMA: Final = "1"
_CHUNK: Final = 500  # ids per query: well under SQLite's limit of bound parameters
_TABLES: Final = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS leads (id TEXT PRIMARY KEY, fields BLOB NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY, started_at REAL NOT NULL, "
    "finished_at REAL, input TEXT, rows INTEGER, sent INTEGER, unchanged INTEGER, "
    "accepted INTEGER)",
)
_OWNER: Final = ("account", "key_sha256")
_MARK: Final = ("application", "bulk-updater")
_OURS: Final = frozenset({"meta", "leads", "runs"})


def recognise(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse, before anything is written, a database that is not empty and not ours: ours says
    so in `meta` (or, made before that mark, has our tables and nothing else)."""
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not tables:
        return
    marked = unmarked = False
    if "meta" in tables:
        with contextlib.suppress(sqlite3.Error):  # a `meta` of another shape: not ours
            held = dict(
                conn.execute(
                    "SELECT key, value FROM meta WHERE key IN (?, ?)", (_MARK[0], "schema")
                )
            )
            marked = held.get(_MARK[0]) == _MARK[1]
            unmarked = _MARK[0] not in held and "schema" in held and tables <= _OURS
    if not (marked or unmarked):
        raise StateError(
            f"{path}: not a bulk-updater state file (another program's database); choose "
            "another --state"
        )


def create(conn: sqlite3.Connection, path: Path, account: Account | None) -> None:
    """The tables, unless there, marked ours; one of another account refused."""
    recognise(conn, path)
    for table in _TABLES:
        conn.execute(table)
    conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (SCHEMA,))
    conn.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", _MARK)
    if account is not None:
        _claim(conn, path, account)


def check_version(conn: sqlite3.Connection, path: Path) -> None:
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    if row is None or row[0] != SCHEMA:
        found = "no schema" if row is None else f"schema {row[0]}"
        raise StateError(f"{path}: a state file of another version ({found})")


def _claim(conn: sqlite3.Connection, path: Path, account: Account) -> None:
    """Refuse a file of another account; else record this one, if not yet."""
    held = owner(conn)
    if held is not None and not held.same(account):
        raise StateError(
            f"{path}: the state file of another account ({held}; this run: {account}); use "
            f"another --state, or empty this one with `bulk-updater state forget --state {path}`"
        )
    mine = ((_OWNER[0], account.label), (_OWNER[1], account.key))
    conn.executemany("INSERT OR IGNORE INTO meta VALUES (?, ?)", [m for m in mine if m[1]])


def owner(conn: sqlite3.Connection) -> Account | None:
    """Whose leads the file holds, as far as it says."""
    held = dict(conn.execute("SELECT key, value FROM meta WHERE key IN (?, ?)", _OWNER))
    label = held.get(_OWNER[0])
    return Account(label, held.get(_OWNER[1])) if label is not None else None


def disown(conn: sqlite3.Connection) -> None:
    """Forget whose the file was (once it holds no lead): any account may use it then."""
    conn.execute("DELETE FROM meta WHERE key IN (?, ?)", _OWNER)


def select_fields(
    conn: sqlite3.Connection, ids: Collection[str], damaged: Callable[[str], None] | None = None
) -> dict[str, Fields]:
    """What the file holds for each of `ids`; a damaged entry is left out, and told `damaged`."""
    out: dict[str, Fields] = {}
    wanted = list(ids)
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        marks = ",".join("?" * len(chunk))
        query = f"SELECT id, {BOUNDED} FROM leads WHERE id IN ({marks})"  # marks only: no value
        for lead, blob in conn.execute(query, chunk):
            fields = decode(blob)
            if fields is not None:
                out[lead] = fields
            elif damaged is not None:
                damaged(lead)
    return out

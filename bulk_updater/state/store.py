"""The state file of `skip_unchanged`: what each lead was last set to, in SQLite (WAL mode).

    leads (id TEXT PRIMARY KEY, fields BLOB)   WITHOUT ROWID; `fields`: the lead's flat
                                               field -> value map (`fields.py`), compact JSON
    runs  (id, started_at, finished_at, input, rows, sent, unchanged, accepted)   the last 100
    meta  (key, value)                         `schema`, and `account` (never the key)

Reads are batched (`lookup()` takes many ids, one query per 500) and run on the caller's thread:
a WAL reader never waits for a writer. Changes are queued to a writer thread, which applies them
in transactions of at most `every` seconds or `batch` changes, each merged into what the file
holds at that moment (another run may have written since). `committed` tells how far the file
has them. `synchronous=NORMAL`: a killed process loses no committed transaction, a power cut may
lose the last ones, and a lost change only means that a row is sent again.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ..errors import StateError, StateLockedError
from .fields import Fields, apply, decode, encode

log = logging.getLogger("bulk_updater")

SCHEMA: Final = "1"
_CHUNK: Final = 500  # ids per query: well under SQLite's limit of bound parameters
_KEEP_RUNS: Final = 100
_TABLES: Final = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS leads (id TEXT PRIMARY KEY, fields BLOB NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY, started_at REAL NOT NULL, "
    "finished_at REAL, input TEXT, rows INTEGER, sent INTEGER, unchanged INTEGER, "
    "accepted INTEGER)",
)
_UPSERT: Final = (
    "INSERT INTO leads (id, fields) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET fields = "
    "excluded.fields"
)


@dataclass(frozen=True)
class StateInfo:
    """What `bulk-updater state info` shows."""

    path: Path
    leads: int
    size: int  # bytes: the file and its write-ahead log
    last_run: dict[str, Any] | None


@dataclass(frozen=True)
class _Close:
    counts: Mapping[str, int]


def _locked(exc: sqlite3.OperationalError) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


class Store:
    """One state file, opened (and created, unless `readonly`) at construction.

    `wait`: seconds to wait for another process's lock when opening, or for each write
    transaction before warning; `give_up`: seconds after which queued changes are dropped (with
    `problem` saying so) rather than waited for. Not thread-safe except as described above:
    `lookup()`, `change()` and `close()` are for one thread, the writer is the store's own.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        readonly: bool = False,
        account: str = "",
        wait: float = 10.0,
        give_up: float = 120.0,
        every: float = 0.5,
        batch: int = 2000,
    ) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self.wait, self.give_up, self.every, self.batch = wait, give_up, every, batch
        self.committed = 0  # the last change the file holds (set by the writer thread)
        self.problem: str | None = None  # why changes stopped being written, if they did
        self._seq = 0
        self._commits = threading.Condition()
        self._queue: queue.SimpleQueue[tuple[int, str, Fields] | _Close] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._run: int | None = None
        self._reader = self._connect(readonly)
        try:
            self._check(account)
        except BaseException:
            self._reader.close()
            raise

    def _connect(self, readonly: bool) -> sqlite3.Connection:
        # SQLite waits up to a second for a lock; `_transaction` goes on waiting, and says so.
        wait = min(self.wait, 1.0)
        try:
            if readonly:
                uri = f"file:{urllib.parse.quote(str(self.path))}?mode=ro"
                conn = sqlite3.connect(uri, uri=True, timeout=wait, check_same_thread=False)
            else:
                self.path.parent.mkdir(
                    parents=True, exist_ok=True, mode=0o700
                )  # lead data: private
                conn = sqlite3.connect(self.path, timeout=wait, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise StateError(f"{self.path}: the state file cannot be opened ({exc})") from None
        conn.isolation_level = None  # transactions are ours: BEGIN IMMEDIATE ... COMMIT
        return conn

    def _check(self, account: str) -> None:
        """The schema, created if need be; a file that is not ours is refused."""
        conn = self._reader
        try:
            if not self.readonly:
                if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    conn.execute("PRAGMA journal_mode=WAL")  # kept by the file from then on
                conn.execute("PRAGMA synchronous=NORMAL")
                with self._transaction(conn, self.wait):
                    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
                    if tables and "meta" not in tables:  # someone else's database: keep out
                        raise StateError(
                            f"{self.path}: not a bulk-updater state file (a database with "
                            "other tables); choose another --state"
                        )
                    for table in _TABLES:
                        conn.execute(table)
                    conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (SCHEMA,))
                    if account:
                        conn.execute("INSERT OR IGNORE INTO meta VALUES ('account', ?)", (account,))
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        except StateError:
            raise
        except sqlite3.OperationalError as exc:
            if _locked(exc):
                raise self._locked_error(self.wait) from None
            raise StateError(f"{self.path}: not a bulk-updater state file ({exc})") from None
        except sqlite3.DatabaseError as exc:
            raise StateError(f"{self.path}: not a bulk-updater state file ({exc})") from None
        if row is None or row[0] != SCHEMA:
            found = "no schema" if row is None else f"schema {row[0]}"
            raise StateError(f"{self.path}: a state file of another version ({found})")

    def _locked_error(self, waited: float) -> StateLockedError:
        return StateLockedError(
            f"{self.path}: another process kept the state file locked for {waited:g}s; "
            "try again once it is done"
        )

    @contextlib.contextmanager
    def _transaction(self, conn: sqlite3.Connection, give_up: float) -> Iterator[None]:
        """`BEGIN IMMEDIATE ... COMMIT`, waiting (with one warning) for another writer."""
        started = time.monotonic()
        warned = False
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError as exc:
                waited = time.monotonic() - started
                if not _locked(exc) or waited >= give_up:
                    raise self._locked_error(give_up) if _locked(exc) else exc from None
                if not warned:
                    log.warning("state: waiting for another process writing %s", self.path)
                    warned = True
        try:
            yield
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise

    # --- reading ----------------------------------------------------------------------------

    def lookup(self, ids: Collection[str]) -> dict[str, Fields]:
        """What the file holds for each of `ids` that it knows (batched: one query per 500).

        A file that cannot be read now knows nothing: the rows are sent, which is always safe.
        """
        try:
            return select_fields(self._reader, ids)
        except sqlite3.Error as exc:
            log.warning("state: %s cannot be read (%s); sending the rows", self.path, exc)
            return {}

    @contextlib.contextmanager
    def _usable(self) -> Iterator[None]:
        """An SQLite error on a file that opened (a damaged one) as a `StateError`."""
        try:
            yield
        except StateError:
            raise
        except sqlite3.Error as exc:
            raise StateError(f"{self.path}: the state file cannot be used ({exc})") from None

    def info(self) -> StateInfo:
        with self._usable():
            return self._info()

    def _info(self) -> StateInfo:
        conn = self._reader
        leads = conn.execute("SELECT COUNT(*) FROM leads").fetchone()[0]
        row = conn.execute(
            "SELECT started_at, finished_at, input, rows, sent, unchanged, accepted FROM runs "
            "ORDER BY id DESC LIMIT 1"
        ).fetchone()
        names = ("started_at", "finished_at", "input", "rows", "sent", "unchanged", "accepted")
        last = dict(zip(names, row, strict=True)) if row is not None else None
        size = sum(p.stat().st_size for p in (self.path, _wal(self.path)) if p.exists())
        return StateInfo(self.path, int(leads), size, last)

    # --- writing ----------------------------------------------------------------------------

    def forget(self, ids: Iterable[str] | None) -> int:
        """Forget some leads (or all, with None), so that their rows are sent next time."""
        conn = self._reader
        with self._usable(), self._transaction(conn, self.give_up):
            if ids is None:
                count = conn.execute("DELETE FROM leads").rowcount
            else:
                rows = [(lead,) for lead in dict.fromkeys(ids)]
                before = conn.total_changes
                conn.executemany("DELETE FROM leads WHERE id = ?", rows)
                count = conn.total_changes - before
        if ids is None:  # give the space back; a reader elsewhere may keep it from happening
            with contextlib.suppress(sqlite3.Error):
                conn.execute("VACUUM")
        return int(count)

    def begin(self, input_name: str) -> None:
        """Start remembering: note the run, start the writer thread."""
        conn = self._reader
        with self._usable(), self._transaction(conn, self.wait):
            self._run = conn.execute(
                "INSERT INTO runs (started_at, input) VALUES (?, ?)", (time.time(), input_name)
            ).lastrowid
            conn.execute("DELETE FROM runs WHERE id <= ?", ((self._run or 0) - _KEEP_RUNS,))
        self._thread = threading.Thread(target=self._write, name="bulk-updater-state", daemon=True)
        self._thread.start()

    def change(self, lead: str, change: Fields) -> int:
        """Queue a change of one lead (see `fields.apply`); its sequence number."""
        self._seq += 1
        self._queue.put((self._seq, lead, change))
        return self._seq

    def close(self, counts: Mapping[str, int] | None = None) -> None:
        """Write what is queued (and the run's `counts`), then close."""
        if self._thread is not None:
            self._queue.put(_Close(counts or {}))
            self._thread.join()
            self._thread = None
        self._reader.close()

    def _write(self) -> None:
        """The writer thread: changes in transactions of at most `every` s or `batch` changes."""
        conn = self._connect(False)
        pending: list[tuple[int, str, Fields]] = []
        deadline = 0.0
        try:
            while True:
                timeout = max(0.0, deadline - time.monotonic()) if pending else None
                try:
                    item = self._queue.get(timeout=timeout)
                except queue.Empty:
                    item = None
                if isinstance(item, _Close):
                    self._commit(conn, pending)
                    self._finish(conn, item.counts)
                    return
                if item is not None:
                    if not pending:
                        deadline = time.monotonic() + self.every
                    pending.append(item)
                    if len(pending) < self.batch and time.monotonic() < deadline:
                        continue
                self._commit(conn, pending)
                pending = []
        finally:
            conn.close()

    def _commit(self, conn: sqlite3.Connection, changes: list[tuple[int, str, Fields]]) -> None:
        if not changes or self.problem is not None:
            return
        try:
            with self._transaction(conn, self.give_up):
                held = select_fields(conn, {lead for _, lead, _ in changes})
                for _, lead, change in changes:
                    held[lead] = apply(held.get(lead), change)
                conn.executemany(_UPSERT, [(k, encode(v)) for k, v in held.items() if v])
                gone = [(k,) for k, v in held.items() if not v]
                conn.executemany("DELETE FROM leads WHERE id = ?", gone)
        except (StateError, sqlite3.Error) as exc:
            self.problem = (
                f"{exc}; from then on this run's accepted rows were not remembered, and are "
                "sent again next time"
            )
            log.warning("state: %s", self.problem)
            return
        with self._commits:
            self.committed = changes[-1][0]
            self._commits.notify_all()

    def wait_committed(self, seq: int, timeout: float) -> bool:
        """Wait until the file holds change `seq` (for tests and tools); False on timeout."""
        with self._commits:
            return self._commits.wait_for(lambda: self.committed >= seq, timeout)

    def _finish(self, conn: sqlite3.Connection, counts: Mapping[str, int]) -> None:
        if self.problem is not None or self._run is None:
            return
        names = ("rows", "sent", "unchanged", "accepted")
        with contextlib.suppress(StateError, sqlite3.Error), self._transaction(conn, self.wait):
            conn.execute(
                "UPDATE runs SET finished_at = ?, rows = ?, sent = ?, unchanged = ?, "
                "accepted = ? WHERE id = ?",
                (time.time(), *(counts.get(n, 0) for n in names), self._run),
            )


def select_fields(conn: sqlite3.Connection, ids: Collection[str]) -> dict[str, Fields]:
    out: dict[str, Fields] = {}
    wanted = list(ids)
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        marks = ",".join("?" * len(chunk))
        query = f"SELECT id, fields FROM leads WHERE id IN ({marks})"  # marks only: no value
        for lead, blob in conn.execute(query, chunk):
            out[lead] = decode(blob)
    return out


def _wal(path: Path) -> Path:
    return path.with_name(path.name + "-wal")

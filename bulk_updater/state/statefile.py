"""The state file of `skip_unchanged`: what each lead was last set to, in SQLite (WAL mode).

Its tables, and whose leads it holds, are in `fileformat.py`; its connections and transactions in
`database.py`. A run holds the file from start to end (`lock.FileLock`, on the file itself): a
second run, or a `forget`, is refused with `StateLockedError` at once, so the file's order of
changes is the API's.

Reads are batched (`lookup()` takes many ids, one query per 500) and run on the caller's thread:
a WAL reader never waits for a writer. Changes are queued to a writer thread, which applies them
in transactions of at most `every` seconds or `batch` changes, each merged into what the file
holds. A change queued with `mark()` (the fields a request is about to set, made unknown before it
goes out) is committed at once, with whatever else is queued: a group commit. `committed` tells
how far the file has them, and `on_commit` is called after each commit, or its failure.
`synchronous=FULL` for those commits: a mark must outlive a power cut as well as a kill, since
the request it covers may have been applied. A damaged entry (not a JSON object) is read as
unknown, with one warning: its rows are sent, and it is rewritten.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ..errors import StateError
from . import fileformat
from .database import (
    cannot_open,
    check_regular,
    connect,
    hold,
    locked,
    locked_error,
    patiently,
    transaction,
)
from .fields import Fields, apply, encode, unknown
from .info import StateInfo, read_info
from .paths import Account

log = logging.getLogger("bulk_updater")

_KEEP_RUNS: Final = 100
_UPSERT: Final = (
    "INSERT INTO leads (id, fields) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET fields = "
    "excluded.fields"
)


@dataclass(frozen=True)
class _Close:
    counts: Mapping[str, int]


_Change = tuple[int, str, Fields, bool]  # sequence number, lead, change, committed at once


class StateFile:
    """One state file, opened (and created, unless `readonly`) at construction.

    Unless `readonly`, it is held for this store alone until `close()`, and a file of another
    `account` is refused. `wait`: seconds to wait for another process's SQLite lock when opening,
    or for each write transaction before warning; `give_up`: seconds after which queued changes
    are dropped (with `problem` saying so) rather than waited for. `stop`, once set (or
    `stop_waiting()` called), ends a wait for another process's lock within a twentieth of a
    second: on the caller's thread (opening, `begin()`, `forget()`) with `StateLockedError`, in
    the writer with `problem` set. Not thread-safe except as described above: `lookup()`,
    `change()`, `mark()` and `close()` are for one thread, the writer is the store's own.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        readonly: bool = False,
        account: Account | None = None,
        wait: float = 10.0,
        give_up: float = 120.0,
        every: float = 0.5,
        batch: int = 2000,
        stop: threading.Event | None = None,
    ) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._stop = stop if stop is not None else threading.Event()
        self.wait, self.give_up, self.every, self.batch = wait, give_up, every, batch
        self.committed = 0  # the last change the file holds (set by the writer thread)
        self.problem: str | None = None  # why changes stopped being written, if they did
        self.cause: str | None = None  # what failed then, in a few words
        self.on_commit: Callable[[], None] | None = None  # called by the writer thread
        self._seq = 0
        self._commits = threading.Condition()
        self._queue: queue.SimpleQueue[_Change | _Close] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._run: int | None = None
        self._damaged: set[str] = set()  # the leads whose entries could not be read
        self._damaged_lock = threading.Lock()  # both threads read entries
        self._run_lock = None if readonly else hold(self.path)
        try:
            if readonly:
                check_regular(self.path)
            self._reader = connect(self.path, readonly, self.wait, stop)
            try:
                self._check(account)
            except BaseException:
                self._reader.close()
                raise
        except BaseException:
            if self._run_lock is not None:
                self._run_lock.release()
            raise

    def _check(self, account: Account | None) -> None:
        """The schema, created if need be; a file that is not ours is refused."""
        conn = self._reader
        try:
            patiently(self._prepare, self.path, self.wait, self._stop)
            if not self.readonly:
                with transaction(conn, self.path, self.wait, self._stop):
                    fileformat.create(conn, self.path, account)
            fileformat.check_version(conn, self.path)
        except StateError:
            raise
        except sqlite3.OperationalError as exc:
            if locked(exc):
                raise locked_error(self.path, self.wait) from None
            if cannot_open(exc):
                raise StateError(
                    f"{self.path}: the state file cannot be opened here ({exc}): SQLite must "
                    "also open its -wal and -shm files beside it"
                ) from None
            raise StateError(f"{self.path}: not a bulk-updater state file ({exc})") from None
        except sqlite3.DatabaseError as exc:
            raise StateError(f"{self.path}: not a bulk-updater state file ({exc})") from None

    def _prepare(self) -> None:
        """The file found ours (or empty) and put in WAL mode: tried again while another process
        holds it (a rollback journal's writer keeps readers out)."""
        conn = self._reader
        fileformat.recognise(conn, self.path)  # before the journal mode changes the file
        if not self.readonly:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode=WAL")  # kept by the file from then on
            conn.execute("PRAGMA synchronous=NORMAL")

    # --- reading ----------------------------------------------------------------------------

    def lookup(self, ids: Collection[str]) -> dict[str, Fields]:
        """What the file holds for each of `ids` that it knows (batched: one query per 500).

        A file that cannot be read now knows nothing: the rows are sent, which is always safe.
        """
        try:
            return fileformat.select_fields(self._reader, ids, self._found_damaged)
        except sqlite3.Error as exc:
            log.warning("state: %s cannot be read (%s); sending the rows", self.path, exc)
            return {}

    def _found_damaged(self, lead: str) -> None:
        with self._damaged_lock:
            first = not self._damaged
            self._damaged.add(lead)
            if first:
                log.warning(
                    "state: %s holds damaged entries (lead %s first); they count as unknown: "
                    "their rows are sent and the entries rewritten",
                    self.path,
                    lead,
                )

    @property
    def warnings(self) -> list[str]:
        """What a run's summary should say of the file: damaged entries, writes given up."""
        out = []
        if self._damaged:
            count = len(self._damaged)
            out.append(
                f"{self.path}: {count} damaged {'entry' if count == 1 else 'entries'} counted as "
                f"unknown: {'its' if count == 1 else 'their'} rows were sent, to be remembered "
                "afresh"
            )
        if self.problem is not None:
            out.append(self.problem)
        return out

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
            return read_info(self._reader, self.path)

    # --- writing ----------------------------------------------------------------------------

    def forget(self, ids: Iterable[str] | None) -> int:
        """Forget some leads, so that their rows are sent next time; or all, with None, and
        whose they were: the file may then serve another account."""
        conn = self._reader
        with self._usable(), transaction(conn, self.path, self.give_up, self._stop):
            if ids is None:
                count = conn.execute("DELETE FROM leads").rowcount
                fileformat.disown(conn)
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
        with self._usable(), transaction(conn, self.path, self.wait, self._stop):
            self._run = conn.execute(
                "INSERT INTO runs (started_at, input) VALUES (?, ?)", (time.time(), input_name)
            ).lastrowid
            conn.execute("DELETE FROM runs WHERE id <= ?", ((self._run or 0) - _KEEP_RUNS,))
        self._thread = threading.Thread(target=self._write, name="bulk-updater-state", daemon=True)
        self._thread.start()

    def change(self, lead: str, change: Fields) -> int:
        """Queue a change of one lead (see `fields.apply`); its sequence number."""
        return self._put(lead, change, False)

    def mark(self, lead: str, fields: Iterable[str]) -> int:
        """Queue `fields` of one lead as unknown, to be committed at once (with what else is
        queued): before a request that sets them goes out. Its sequence number."""
        return self._put(lead, unknown(fields), True)

    def _put(self, lead: str, change: Fields, urgent: bool) -> int:
        self._seq += 1
        self._queue.put((self._seq, lead, change, urgent))
        return self._seq

    def stop_waiting(self) -> None:
        """The job stops: waits for another process's lock end now, and what could not be
        written is not remembered (the marks before each request make that safe)."""
        self._stop.set()

    def close(self, counts: Mapping[str, int] | None = None) -> None:
        """Write what is queued (and the run's `counts`), then close."""
        if self._thread is not None:
            self._queue.put(_Close(counts or {}))
            self._thread.join()
            self._thread = None
        self._reader.close()
        if self._run_lock is not None:
            self._run_lock.release()

    def _write(self) -> None:
        """The writer thread: changes in transactions of at most `every` s or `batch` changes, or
        at once when a mark is queued."""
        conn = connect(self.path, False, self.wait, self._stop)
        conn.execute("PRAGMA synchronous=FULL")
        pending: list[_Change] = []
        deadline = 0.0
        try:
            while True:
                timeout = max(0.0, deadline - time.monotonic()) if pending else None
                try:
                    item: _Change | _Close | None = self._queue.get(timeout=timeout)
                except queue.Empty:
                    item = None
                while item is not None and not isinstance(item, _Close):
                    if not pending:
                        deadline = time.monotonic() + self.every
                    pending.append(item)
                    item = self._next() if len(pending) < self.batch else None
                if isinstance(item, _Close):
                    self._commit(conn, pending)
                    self._finish(conn, item.counts)
                    return
                urgent = any(change[3] for change in pending)
                if urgent or len(pending) >= self.batch or time.monotonic() >= deadline:
                    self._commit(conn, pending)
                    pending = []
        finally:
            conn.close()

    def _next(self) -> _Change | _Close | None:
        """What else is queued now, if anything: it joins the same transaction."""
        try:
            return self._queue.get_nowait()
        except queue.Empty:
            return None

    def _commit(self, conn: sqlite3.Connection, changes: list[_Change]) -> None:
        if not changes or self.problem is not None:
            return
        try:
            with transaction(conn, self.path, self.give_up, self._stop):
                held = fileformat.select_fields(conn, {c[1] for c in changes}, self._found_damaged)
                for _, lead, change, _ in changes:
                    held[lead] = apply(held.get(lead), change)
                conn.executemany(_UPSERT, [(k, encode(v)) for k, v in held.items() if v])
                gone = [(k,) for k, v in held.items() if not v]
                conn.executemany("DELETE FROM leads WHERE id = ?", gone)
        except (StateError, sqlite3.Error) as exc:
            where = "" if str(exc).startswith(str(self.path)) else f"{self.path}: "
            self.cause = str(exc).removeprefix(f"{self.path}: ")
            self.problem = (
                f"{where}{exc}; from then on this run's accepted rows were not remembered, and are "
                "sent again next time"
            )
            log.warning("state: %s", self.problem)
        else:
            with self._commits:
                self.committed = changes[-1][0]
                self._commits.notify_all()
        if self.on_commit is not None:
            self.on_commit()

    def wait_committed(self, seq: int, timeout: float) -> bool:
        """Wait until the file holds change `seq` (for tests and tools); False on timeout."""
        with self._commits:
            return self._commits.wait_for(lambda: self.committed >= seq, timeout)

    def _finish(self, conn: sqlite3.Connection, counts: Mapping[str, int]) -> None:
        if self.problem is not None or self._run is None:
            return
        names = ("rows", "sent", "unchanged", "accepted")
        with (
            contextlib.suppress(StateError, sqlite3.Error),
            transaction(conn, self.path, self.wait, self._stop),
        ):
            conn.execute(
                "UPDATE runs SET finished_at = ?, rows = ?, sent = ?, unchanged = ?, "
                "accepted = ? WHERE id = ?",
                (time.time(), *(counts.get(n, 0) for n in names), self._run),
            )

"""The state file's SQLite connections: held for a run, opened (read-only or not), and transactions.

A run holds the file with `hold()` (`lock.FileLock`, on the file itself). `connect()` opens it,
read-only where asked, and `transaction()` waits (with one warning) for another process's writer.
SQLite's and the system's errors on the way are said in one line, as `StateError` or
`StateLockedError`.

SQLite waits for a lock in its own busy handler, which nothing can wake: not `interrupt()`, not a
progress handler. So a wait that a job's stop may end (`stop`, a `threading.Event`) is cut into
short steps, and `patiently()` looks at `stop` between them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import stat
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final, TypeVar

from ..errors import StateError, StateLockedError
from .lock import Busy, FileLock, NotAFile

log = logging.getLogger("bulk_updater")

_T = TypeVar("_T")
_STEP: Final = 1.0  # the longest SQLite waits for a lock in one go; `patiently` then warns
_STOPPABLE_STEP: Final = 0.05  # the same where a stop may end the wait: how late it is seen


def locked(exc: sqlite3.OperationalError) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


def cannot_open(exc: sqlite3.Error) -> bool:
    return exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_CANTOPEN


def hold(path: Path) -> FileLock:
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)  # lead data: private
        return FileLock(path)
    except Busy as busy:
        raise StateLockedError(
            f"{path}: another run is using this state file{busy.who()}; try again once it is done"
        ) from None
    except NotAFile:
        raise not_a_file(path) from None
    except OSError as exc:
        raise StateError(
            f"{path}: the state file cannot be opened ({exc.strerror or exc})"
        ) from None


def check_regular(path: Path) -> None:
    """A FIFO would make SQLite wait for a writer forever: refused before it opens."""
    try:
        found = os.stat(path)
    except OSError:
        return  # SQLite says why it cannot open it
    if not stat.S_ISREG(found.st_mode):
        raise not_a_file(path)


def connect(
    path: Path, readonly: bool, wait: float, stop: threading.Event | None = None
) -> sqlite3.Connection:
    """A connection whose every wait for a lock is one step of `patiently()`'s."""
    wait = min(wait, _STEP if stop is None else _STOPPABLE_STEP)
    try:
        if readonly:
            conn = _open_readonly(path, wait)
        else:
            conn = sqlite3.connect(path, timeout=wait, check_same_thread=False)
    except (OSError, sqlite3.Error) as exc:
        raise StateError(f"{path}: the state file cannot be opened ({exc})") from None
    conn.isolation_level = None  # transactions are ours: BEGIN IMMEDIATE ... COMMIT
    return conn


def _open_readonly(path: Path, wait: float) -> sqlite3.Connection:
    """`mode=ro`; `immutable=1` where SQLite cannot make the WAL's index beside the file.

    In a folder that cannot be written (read-only storage), no writer can change the file.
    """
    uri = f"file:{urllib.parse.quote(str(path))}"
    conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=wait, check_same_thread=False)
    try:
        conn.execute("PRAGMA schema_version")  # the first read opens the WAL's index
    except sqlite3.Error as exc:
        if not cannot_open(exc) or os.access(path.parent, os.W_OK):
            return conn  # `StateFile._check` says what is wrong
        conn.close()
        uri = f"{uri}?immutable=1"
        conn = sqlite3.connect(uri, uri=True, timeout=wait, check_same_thread=False)
    return conn


def locked_error(path: Path, waited: float) -> StateLockedError:
    return StateLockedError(
        f"{path}: another process kept the state file locked for {waited:g}s; "
        "try again once it is done"
    )


def stopped_error(path: Path) -> StateLockedError:
    return StateLockedError(f"{path}: the job stopped while another process kept it locked")


def patiently(
    attempt: Callable[[], _T], path: Path, give_up: float, stop: threading.Event | None = None
) -> _T:
    """`attempt()`, tried again (with one warning) while another process holds the file's lock.

    Each try waits one step of its connection's (`connect()`). `StateLockedError` after `give_up`
    seconds, or after the step during which `stop` is set.
    """
    started = time.monotonic()
    warned = False
    while True:
        try:
            return attempt()
        except sqlite3.OperationalError as exc:
            if not locked(exc):
                raise
        if stop is not None and stop.is_set():
            raise stopped_error(path)
        if time.monotonic() - started >= give_up:
            raise locked_error(path, give_up)
        if not warned:
            log.warning("state: waiting for another process writing %s", path)
            warned = True


@contextlib.contextmanager
def transaction(
    conn: sqlite3.Connection, path: Path, give_up: float, stop: threading.Event | None = None
) -> Iterator[None]:
    """`BEGIN IMMEDIATE ... COMMIT`, waiting `patiently()` for another writer."""
    patiently(lambda: conn.execute("BEGIN IMMEDIATE"), path, give_up, stop)
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise


def not_a_file(path: Path) -> StateError:
    return StateError(
        f"{path}: not a regular file (a FIFO, a device or a folder); choose another --state"
    )

"""Waiting for another process's SQLite lock on the state file: how long, what it says, and a
stop that ends the wait."""

from __future__ import annotations

import contextlib
import logging
import re
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bulk_updater.errors import StateLockedError
from bulk_updater.state import StateFile
from bulk_updater.state.lock import in_use
from tests.conftest import integrity, remembered


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[sqlite3.Connection]:
    """Another process's write lock on the file, held until the block ends."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("BEGIN EXCLUSIVE")
    try:
        yield db
    finally:
        db.execute("ROLLBACK")
        db.close()


@contextlib.contextmanager
def _warned() -> Iterator[threading.Event]:
    """Set once the package logs a warning, from whichever thread."""
    warned = threading.Event()
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: warned.set()  # type: ignore[method-assign]
    logging.getLogger("bulk_updater").addHandler(handler)
    try:
        yield warned
    finally:
        logging.getLogger("bulk_updater").removeHandler(handler)


def test_opening_a_file_another_process_keeps_locked_gives_up_with_one_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.sqlite3"
    StateFile(path).close()
    with _locked(path), pytest.raises(StateLockedError, match=re.escape("locked for 0.2s")):
        StateFile(path, wait=0.2)


def test_writes_that_cannot_get_the_lock_are_dropped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "s.sqlite3"
    store = StateFile(path, wait=0.1, give_up=0.3, every=0.0)
    store.begin("in.csv")
    with caplog.at_level(logging.WARNING, "bulk_updater"), _locked(path):
        store.change("a", {"city": "x"})
        store.close()
    assert store.problem is not None
    assert "locked" in store.problem
    assert "sent again next time" in store.problem
    messages = [r.getMessage() for r in caplog.records]
    assert any("waiting for another process" in m for m in messages), messages
    assert remembered(path) == {}


@pytest.mark.parametrize("journal", ["wal", "delete"])
def test_a_stop_ends_the_wait_for_another_process_lock(tmp_path: Path, journal: str) -> None:
    """An hour's wait ends with the stop, the file let go of and left as it was. In WAL mode the
    opening waits for its write transaction; with a rollback journal, already for its first read
    (SQLite's own wait for a lock cannot be woken: the wait must be cut short by us)."""
    path = tmp_path / "s.sqlite3"
    StateFile(path).close()
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute(f"PRAGMA journal_mode={journal}")  # a name from the list above: no value
    stop = threading.Event()
    failed: list[BaseException] = []

    def open_it() -> None:
        try:
            StateFile(path, wait=3600, stop=stop).close()
        except StateLockedError as exc:
            failed.append(exc)

    opener = threading.Thread(target=open_it)
    with _warned() as waiting, _locked(path) as other:
        opener.start()
        assert waiting.wait(30)  # "waiting for another process writing ..."
        stop.set()
        opener.join(30)  # a guard against a hang: only the stop ends a wait of an hour
        assert not opener.is_alive()
        assert not in_use(path)
        assert other.in_transaction  # the other process's lock was never taken from it
    assert [str(exc) for exc in failed] == [
        f"{path}: the job stopped while another process kept it locked"
    ]
    assert integrity(path) == "ok"
    store = StateFile(path)
    assert store.info().last_run is None  # the stopped opening noted no run
    store.close()

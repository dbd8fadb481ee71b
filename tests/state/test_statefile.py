"""The state file: schema, WAL, batched lookups, the writer thread and bad files."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from pathlib import Path

import pytest

from bulk_updater.errors import StateError
from bulk_updater.state import Account, StateFile, unknown
from bulk_updater.state.fields import MAX_STORED
from tests.conftest import integrity, remembered

ACCOUNT = Account("http://127.0.0.1:1", "0123456789abcdef")


def test_changes_are_merged_into_what_the_file_holds(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    store = StateFile(path, account=ACCOUNT)
    store.begin("night1.csv")
    store.change("a", {"jobTitle": "CTO", "tags": ["vip"], "customFields.x": "1"})
    store.change("a", {"tags": ["smb"], "customFields.y": 2})
    store.change("b", {"city": "Oslo"})
    store.close({"rows": 3, "sent": 3, "unchanged": 0, "accepted": 3})
    assert remembered(path) == {
        "a": {"jobTitle": "CTO", "tags": ["smb"], "customFields.x": "1", "customFields.y": 2},
        "b": {"city": "Oslo"},
    }
    again = StateFile(path)
    again.begin("night2.csv")
    again.change("a", unknown(["jobTitle", "tags", "customFields.x", "customFields.y"]))
    again.close()
    assert remembered(path) == {"b": {"city": "Oslo"}}  # a lead known to hold nothing is gone
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        meta = dict(db.execute("SELECT key, value FROM meta"))
    assert meta == {
        "application": "bulk-updater",
        "schema": "1",
        "account": ACCOUNT.label,
        "key_sha256": ACCOUNT.key,
    }
    assert integrity(path) == "ok"


def test_lookups_are_batched_and_see_only_what_was_committed(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    store = StateFile(path, every=60.0, batch=1200)  # commit by size only
    store.begin("in.csv")
    for n in range(1200):
        store.change(f"lead{n}", {"jobTitle": f"T{n}"})
    store.close()
    reader = StateFile(path, readonly=True)
    statements: list[str] = []
    reader._reader.set_trace_callback(statements.append)
    found = reader.lookup([f"lead{n}" for n in range(1300)])
    assert len(found) == 1200
    assert found["lead7"] == {"jobTitle": "T7"}
    assert len(statements) == 3  # 500 ids per query
    reader.close()


def test_the_writer_commits_by_size_and_by_time(tmp_path: Path) -> None:
    store = StateFile(tmp_path / "s.sqlite3", every=0.0, batch=2)
    store.begin("in.csv")
    seq = 0
    for n in range(4):
        seq = store.change(f"l{n}", {"city": "x"})
    assert store.wait_committed(seq, timeout=10)  # the writer's own thread commits
    assert store.lookup(["l0", "l3"]) == {"l0": {"city": "x"}, "l3": {"city": "x"}}
    store.close()


def test_info_forget_and_the_last_run(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    store = StateFile(path)
    assert store.info().last_run is None
    store.begin("nightly.csv")
    for n in range(10):
        store.change(f"l{n}", {"city": "x"})
    store.close({"rows": 12, "sent": 10, "unchanged": 2, "accepted": 10})
    store = StateFile(path)
    info = store.info()
    assert (info.leads, info.path) == (10, path)
    assert info.size > 0
    assert info.last_run is not None
    assert info.last_run["input"] == "nightly.csv"
    assert (info.last_run["rows"], info.last_run["unchanged"]) == (12, 2)
    assert store.forget(["l1", "l2", "l2", "nope"]) == 2
    assert store.info().leads == 8
    assert store.forget(None) == 8
    assert store.info().leads == 0
    store.close()


def test_a_file_that_is_not_a_state_file_is_refused(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("x" * 5000)
    with pytest.raises(StateError, match="not a bulk-updater state file"):
        StateFile(text)
    other = tmp_path / "other.sqlite3"
    with contextlib.closing(sqlite3.connect(other)) as db:
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        db.execute("INSERT INTO meta VALUES ('schema', '99')")
        db.commit()
    with pytest.raises(StateError, match="another version"):
        StateFile(other)
    with pytest.raises(StateError, match="cannot be opened"):
        StateFile(tmp_path / "missing.sqlite3", readonly=True)
    (tmp_path / "empty.sqlite3").write_bytes(b"")  # an empty database, without our tables
    with pytest.raises(StateError, match="not a bulk-updater state file"):
        StateFile(tmp_path / "empty.sqlite3", readonly=True)


def test_a_file_whose_wal_index_cannot_be_opened_is_not_called_foreign(tmp_path: Path) -> None:
    """A `-shm` SQLite cannot open (here a link to nowhere; another user's file, say) does not
    make the file foreign: the message says what SQLite needs."""
    path = tmp_path / "state.sqlite3"
    StateFile(path).close()
    (tmp_path / "state.sqlite3-shm").symlink_to(tmp_path / "gone" / "shm")
    with pytest.raises(StateError) as caught:
        StateFile(path, readonly=True)
    assert str(caught.value) == (
        f"{path}: the state file cannot be opened here (unable to open database file): SQLite "
        "must also open its -wal and -shm files beside it"
    )


def test_another_programs_database_with_a_meta_table_is_refused_untouched(
    tmp_path: Path,
) -> None:
    """A browser's history has a `meta` table too: it is not taken, not even its journal mode."""
    history = tmp_path / "History"
    with contextlib.closing(sqlite3.connect(history)) as db:
        db.executescript(
            "CREATE TABLE meta (key LONGVARCHAR NOT NULL UNIQUE PRIMARY KEY, value LONGVARCHAR);"
            "INSERT INTO meta VALUES ('version', '46');"
            "CREATE TABLE urls (id INTEGER PRIMARY KEY, url TEXT);"
        )
    before = history.read_bytes()
    for readonly in (False, True):
        with pytest.raises(StateError, match="History: not a bulk-updater state file"):
            StateFile(history, account=ACCOUNT, readonly=readonly)
    assert history.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["History"]


def test_a_state_file_from_before_the_mark_is_still_ours(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    StateFile(path).close()
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("DELETE FROM meta WHERE key = 'application'")
        db.commit()
    StateFile(path).close()
    with contextlib.closing(sqlite3.connect(path)) as db:
        mark = db.execute("SELECT value FROM meta WHERE key = 'application'").fetchone()
    assert mark == ("bulk-updater",)


def test_one_damaged_entry_and_a_write_error_are_told_of_this_file(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    store = StateFile(path, every=0.0)
    store.begin("in.csv")
    store.change("l0", {"city": "x"})
    store.close()
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("UPDATE leads SET fields = 'oops' WHERE id = 'l0'")
        db.commit()
    store = StateFile(path, every=0.0)
    store.begin("in.csv")
    assert store.lookup(["l0"]) == {}
    store._reader.execute("ALTER TABLE leads RENAME COLUMN fields TO gone")  # a file broken by hand
    store.change("l1", {"city": "y"})
    store.close()
    assert store.warnings[0] == (
        f"{path}: 1 damaged entry counted as unknown: its rows were sent, to be remembered afresh"
    )
    assert store.warnings[1].startswith(f"{path}: no such column: fields; from then on")


def test_a_lookup_that_fails_knows_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = StateFile(tmp_path / "s.sqlite3")
    store._reader.execute("DROP TABLE leads")
    with caplog.at_level(logging.WARNING, "bulk_updater"):
        assert store.lookup(["a"]) == {}
    assert "cannot be read" in caplog.text
    store.close()


def test_a_file_of_another_account_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    StateFile(path, account=ACCOUNT).close()
    other_key = Account(ACCOUNT.label, "fedcba9876543210")
    other_api = Account("http://127.0.0.1:2", ACCOUNT.key)
    for other in (other_key, other_api):
        with pytest.raises(StateError) as refused:
            StateFile(path, account=other)
        message = str(refused.value)
        assert "\n" not in message
        assert f"another account ({ACCOUNT}; this run: {other})" in message
        assert f"state forget --state {path}" in message
    StateFile(path, account=Account(ACCOUNT.label, None)).close()  # no key to compare: same API
    StateFile(path, account=ACCOUNT).close()
    store = StateFile(path)
    assert store.info().account == f"{ACCOUNT.label}, key sha256 {ACCOUNT.key}…"
    store.forget(None)  # an emptied file is no one's
    store.close()
    StateFile(path, account=other_key).close()
    with pytest.raises(StateError, match="another account"):
        StateFile(path, account=ACCOUNT)


def test_a_file_from_before_keys_were_recorded_takes_the_key_of_its_api(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    StateFile(path).close()
    with contextlib.closing(sqlite3.connect(path)) as db:  # what the earlier version wrote
        db.execute("INSERT INTO meta VALUES ('account', ?)", (ACCOUNT.label,))
        db.commit()
    with pytest.raises(StateError, match="another account"):
        StateFile(path, account=Account("https://api.sendkit.ai", ACCOUNT.key))
    StateFile(path, account=ACCOUNT).close()
    with pytest.raises(StateError, match="another account"):
        StateFile(path, account=Account(ACCOUNT.label, "fedcba9876543210"))


def test_a_damaged_entry_counts_as_unknown_and_is_rewritten(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "s.sqlite3"
    store = StateFile(path)
    store.begin("in.csv")
    for n in range(5):
        store.change(f"l{n}", {"city": "x"})
    store.close()
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("UPDATE leads SET fields = 'oops' WHERE id = 'l0'")
        db.execute("UPDATE leads SET fields = 5 WHERE id = 'l1'")
        db.execute("UPDATE leads SET fields = '[1]' WHERE id = 'l2'")
        db.commit()
    store = StateFile(path, every=0.0)
    assert (store.info().leads, store.info().damaged) == (5, 3)
    store.begin("in.csv")
    with caplog.at_level(logging.WARNING, "bulk_updater"):
        assert store.lookup(["l0", "l1", "l2", "l3"]) == {"l3": {"city": "x"}}
        assert store.lookup(["l0", "l1", "l4"]) == {"l4": {"city": "x"}}
        assert store.warnings == [
            f"{path}: 3 damaged entries counted as unknown: their rows were sent, to be "
            "remembered afresh"
        ]
        store.change("l0", {"city": "y"})
        seq = store.change("l1", unknown(["city"]))
        assert store.wait_committed(seq, timeout=10)
    assert [r.getMessage() for r in caplog.records] == [
        f"state: {path} holds damaged entries (lead l0 first); they count as unknown: their "
        "rows are sent and the entries rewritten"
    ]
    store.close()
    held = remembered(path)
    assert held == {"l0": {"city": "y"}, "l2": [1], "l3": {"city": "x"}, "l4": {"city": "x"}}
    store = StateFile(path, readonly=True)
    assert (store.info().leads, store.info().damaged) == (4, 1)
    store.close()


def test_an_entry_longer_than_the_bound_is_damaged_not_read(tmp_path: Path) -> None:
    """A hand-made entry of hundreds of MB took gigabytes to read: past `MAX_STORED` it is not
    read, and counts as damaged; one at the bound is read."""
    path = tmp_path / "s.sqlite3"
    store = StateFile(path)
    store.begin("in.csv")
    store.change("l0", {"city": "x"})
    store.close()
    at_bound = b'{"city":"' + b"y" * (MAX_STORED - 11) + b'"}'
    assert len(at_bound) == MAX_STORED
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("INSERT INTO leads VALUES ('big', ?)", (at_bound[:-2] + b'y"}',))
        db.execute("INSERT INTO leads VALUES ('text', ?)", ("x" * (MAX_STORED + 1),))
        db.execute("INSERT INTO leads VALUES ('fits', ?)", (at_bound,))
        db.commit()
    store = StateFile(path)
    assert (store.info().leads, store.info().damaged) == (4, 2)
    found = store.lookup(["l0", "big", "text", "fits"])
    store.close()
    assert sorted(found) == ["fits", "l0"]
    assert len(found["fits"]["city"]) == MAX_STORED - 11
    assert store.warnings[0].startswith(f"{path}: 2 damaged entries counted as unknown")

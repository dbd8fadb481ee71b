"""One run at a time on a state file: the lock is on the file itself, by every name of it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bulk_updater.errors import StateError, StateLockedError
from bulk_updater.state import StateFile
from bulk_updater.state.lock import in_use

_HOLD = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def held_elsewhere(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A state file another process holds (as a run would), and that process's pid."""
    path = tmp_path / "s.sqlite3"
    StateFile(path).close()
    with subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    ) as holder:
        assert holder.stdout is not None
        assert holder.stdin is not None
        assert holder.stdout.readline() == b"held\n"  # waits until the lock is taken
        yield path, holder.pid
        holder.stdin.close()  # the holder ends, and the kernel drops its lock


def test_one_store_at_a_time_holds_a_file(tmp_path: Path) -> None:
    """Two runs cannot tell whose PATCH the API applied last: the second is refused at once."""
    path = tmp_path / "s.sqlite3"
    first = StateFile(path)
    assert in_use(path)
    with pytest.raises(StateLockedError) as refused:
        StateFile(path)  # in the same process too
    assert str(refused.value) == (
        f"{path}: another run is using this state file (pid {os.getpid()}); try again once it "
        "is done"
    )
    reader = StateFile(path, readonly=True)  # `state info`, `--dry-run`: read, never held
    assert reader.info().in_use
    reader.close()
    first.close()
    assert not in_use(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.sqlite3"]  # nothing left beside
    second = StateFile(path)
    second.close()


def test_every_name_of_a_state_file_is_the_same_file(tmp_path: Path) -> None:
    """A symbolic link or a hard link to a held file is refused: two runs would share it."""
    path = tmp_path / "s.sqlite3"
    (tmp_path / "link.sqlite3").symlink_to(path.name)
    first = StateFile(path)
    os.link(path, tmp_path / "hard.sqlite3")
    for name in ("link.sqlite3", "hard.sqlite3"):
        with pytest.raises(StateLockedError, match="another run is using this state file"):
            StateFile(tmp_path / name)
    first.close()
    StateFile(tmp_path / "link.sqlite3").close()


def test_a_run_in_another_process_is_refused_and_named(held_elsewhere: tuple[Path, int]) -> None:
    """No lock file beside the state file: none to remove under a run, or to remove another's."""
    path, pid = held_elsewhere
    assert in_use(path)
    for leftover in path.parent.iterdir():
        if leftover != path:
            leftover.unlink()  # whatever lies beside the file, gone: the hold stays
    with pytest.raises(StateLockedError, match=f"using this state file \\(pid {pid}\\)"):
        StateFile(path)


def test_a_link_where_a_lock_file_was_is_left_alone(tmp_path: Path) -> None:
    """Versions before kept `<state>.lock`: a link there is not followed nor written."""
    precious = tmp_path / "precious.txt"
    precious.write_text("precious")
    (tmp_path / "s.sqlite3.lock").symlink_to(precious.name)
    StateFile(tmp_path / "s.sqlite3").close()
    assert precious.read_text() == "precious"
    assert (tmp_path / "s.sqlite3.lock").is_symlink()


def test_a_fifo_is_refused_not_waited_for(tmp_path: Path) -> None:
    fifo = tmp_path / "s.sqlite3"
    os.mkfifo(fifo)
    writer = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)  # so that a wrong open() never blocks
    try:
        for readonly in (False, True):
            with pytest.raises(StateError, match=r"s\.sqlite3: not a regular file"):
                StateFile(fifo, readonly=readonly)
        assert not in_use(fifo)
    finally:
        os.close(writer)

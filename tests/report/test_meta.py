"""What lives beside a report and in the state folder: the lock, and what `--resume` checks."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any

import pytest

from bulk_updater.errors import ConfigError, ReportLockedError
from bulk_updater.report import ReportWriter
from bulk_updater.report import meta as meta_module
from bulk_updater.report.meta import ReportLock, lock_path, meta_path, read_meta


def test_a_second_lock_on_a_report_is_refused_and_the_file_goes_with_the_lock(
    tmp_path: Path,
) -> None:
    report = tmp_path / "r.csv"
    first = ReportLock(report, report)
    with pytest.raises(ReportLockedError, match=f"pid {os.getpid()}"):
        ReportLock(report, report)
    first.release()
    assert not lock_path(report).exists()
    ReportLock(report, report).release()


def test_a_lock_file_removed_under_a_waiting_run_is_taken_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that opened the lock file just before the holder removed it must not lock the
    removed file: a third run, creating a new one, would then run beside it."""
    report = tmp_path / "r.csv"
    path = lock_path(report)
    flock = fcntl.flock
    swapped: list[int] = []

    def holder_leaves_then_another_comes(fd: Any, operation: int) -> None:
        flock(fd, operation)
        if not swapped:  # the file we just locked is removed, and a new one is made
            swapped.append(os.fstat(fd.fileno()).st_ino)
            path.unlink()
            path.write_text("")

    monkeypatch.setattr(meta_module.fcntl, "flock", holder_leaves_then_another_comes)
    lock = ReportLock(report, report)
    monkeypatch.undo()
    held = os.fstat(lock._handle.fileno()).st_ino
    assert held != swapped[0]
    assert held == os.stat(path).st_ino  # the lock is on the file every run sees
    with pytest.raises(ReportLockedError):
        ReportLock(report, report)
    lock.release()


def test_meta_of_reports_that_are_gone_is_forgotten(tmp_path: Path) -> None:
    kept, gone = tmp_path / "kept.csv", tmp_path / "gone.csv"
    for report in (gone, kept):
        ReportWriter(report, fingerprint=report.name).close()
    gone.unlink()
    ReportWriter(tmp_path / "new.csv", fingerprint="n").close()
    assert not meta_path(gone.resolve()).exists()
    assert read_meta(kept.resolve()) is not None


def test_a_state_folder_that_cannot_be_written_is_a_clear_error(tmp_path: Path) -> None:
    blocked = tmp_path / "state"
    blocked.write_text("a file where the folder should be")
    before = os.environ["XDG_STATE_HOME"]
    os.environ["XDG_STATE_HOME"] = str(blocked)
    try:
        with pytest.raises(ConfigError, match="set XDG_STATE_HOME to a folder this user can write"):
            ReportWriter(tmp_path / "r.csv", fingerprint="f")
    finally:
        os.environ["XDG_STATE_HOME"] = before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state"]  # no report, no lock

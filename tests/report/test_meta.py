"""What lives beside a report and in the state folder: the lock, and what `--resume` checks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bulk_updater.errors import ConfigError, InputChangedError, ReportLockedError
from bulk_updater.report import ReportWriter
from bulk_updater.report.meta import ReportLock, meta_path, read_meta


def test_a_second_lock_on_a_report_is_refused_and_nothing_is_left_beside(
    tmp_path: Path,
) -> None:
    report = tmp_path / "r.csv"
    first = ReportLock(report, report)
    with pytest.raises(ReportLockedError, match=f"pid {os.getpid()}"):
        ReportLock(report, report)
    first.release()
    assert [p.name for p in tmp_path.iterdir()] == ["r.csv"]
    ReportLock(report, report).release()


def test_every_name_of_a_report_is_the_same_report(tmp_path: Path) -> None:
    """A symbolic link or a hard link to a report being written is refused: two runs writing
    one file would lose lines."""
    report = tmp_path / "r.csv"
    writer = ReportWriter(report, fingerprint="f")
    (tmp_path / "link.csv").symlink_to(report.name)
    os.link(report, tmp_path / "hard.csv")
    for name in ("link.csv", "hard.csv"):
        with pytest.raises(ReportLockedError, match="another run is writing this report"):
            ReportWriter(tmp_path / name, fingerprint="f")
    writer.close()


def test_a_report_held_by_a_run_elsewhere_is_refused_whatever_lies_beside(
    tmp_path: Path,
) -> None:
    """The lock is the report's own: removing every file beside it lets no second run in."""
    report = tmp_path / "r.csv"
    report.write_text("the other run's lines\n")
    hold = "import fcntl,os,sys; fd=os.open(sys.argv[1],os.O_RDWR); fcntl.flock(fd,fcntl.LOCK_EX)"
    with subprocess.Popen(
        [sys.executable, "-c", hold + "; print('held', flush=True); sys.stdin.read()", report],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    ) as holder:
        assert holder.stdout is not None
        assert holder.stdin is not None
        assert holder.stdout.readline() == b"held\n"  # waits until the lock is taken
        with pytest.raises(ReportLockedError, match=f"\\(pid {holder.pid}\\)"):
            ReportWriter(report, fingerprint="f")
        holder.stdin.close()
    assert report.read_text() == "the other run's lines\n"


def test_a_link_where_a_lock_file_was_is_left_alone(tmp_path: Path) -> None:
    """Versions before kept `.<report>.lock`: a link there is not followed nor written."""
    precious = tmp_path / "precious.txt"
    precious.write_text("precious")
    (tmp_path / ".r.csv.lock").symlink_to(precious.name)
    ReportWriter(tmp_path / "r.csv", fingerprint="f").close()
    assert precious.read_text() == "precious"
    assert (tmp_path / ".r.csv.lock").is_symlink()


def test_a_fifo_is_refused_not_waited_for(tmp_path: Path) -> None:
    fifo = tmp_path / "r.csv"
    os.mkfifo(fifo)
    writer = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)  # so that a wrong open() never blocks
    try:
        for resume in (False, True):
            with pytest.raises(ConfigError, match=r"r\.csv: not a regular file"):
                ReportWriter(fifo, fingerprint="f", resume=resume)
    finally:
        os.close(writer)


def test_a_report_that_cannot_be_opened_keeps_its_meta(tmp_path: Path) -> None:
    """Else `--resume` would take the old report for the new input, and skip its rows."""
    report = tmp_path / "r.csv"
    ReportWriter(report, fingerprint="night 1").close()
    report.unlink()
    report.mkdir()  # the report cannot be opened now
    with pytest.raises(ConfigError):
        ReportWriter(report, fingerprint="night 2")
    meta = read_meta(report.resolve())
    assert meta is not None
    assert meta["input_sha256"] == "night 1"


def test_meta_of_reports_gone_for_long_is_forgotten(tmp_path: Path) -> None:
    kept, gone, lately = tmp_path / "kept.csv", tmp_path / "gone.csv", tmp_path / "lately.csv"
    for report in (gone, kept, lately):
        ReportWriter(report, fingerprint=report.name).close()
    month = 31 * 86400
    for report in (gone, kept):
        old = meta_path(report.resolve()).stat().st_mtime - month
        os.utime(meta_path(report.resolve()), (old, old))
    gone.unlink()
    lately.unlink()  # moved, or on a share not mounted now: kept for a while
    ReportWriter(tmp_path / "new.csv", fingerprint="n").close()
    assert not meta_path(gone.resolve()).exists()
    assert read_meta(kept.resolve()) is not None
    assert read_meta(lately.resolve()) is not None


def test_a_moved_report_resumes_with_the_same_input(tmp_path: Path) -> None:
    first, moved = tmp_path / "a" / "night.csv", tmp_path / "b" / "night.csv"
    first.parent.mkdir()
    moved.parent.mkdir()
    writer = ReportWriter(first, fingerprint="the input", options={"match": "id"})
    writer.close()
    first.rename(moved)
    with pytest.raises(InputChangedError) as refused:
        ReportWriter(moved, resume=True, fingerprint="another input")
    assert str(refused.value) == (
        f"{moved}: cannot resume, what --resume checks of this report is not in "
        f"{meta_path(moved).parent}: the report was moved since its run (and the input with it "
        "changed), or XDG_STATE_HOME differs from that run's (a cron job's may); resume with "
        "that run's XDG_STATE_HOME, or start over without --resume"
    )
    again = ReportWriter(moved, resume=True, fingerprint="the input", options={"match": "id"})
    assert again.resumed
    again.close()
    meta = read_meta(moved.resolve())
    assert meta is not None
    assert meta["report"] == str(moved.resolve())
    assert not meta_path(first.resolve()).exists()  # the old place forgotten


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

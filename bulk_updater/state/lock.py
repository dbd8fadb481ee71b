"""One run at a time on a state file: an exclusive `flock` on `<state>.lock`, beside it.

Two runs that each remember what they set cannot tell which PATCH the API applied last, so a
state file shared by two runs at once could skip a row the API does not hold. Holding the file
for the whole run makes the order of the file the order of the API.

The lock is `flock`, not SQLite's own locks: it is tied to an open file, so two runs in one
process exclude each other too, and the kernel drops it when a process dies. It is on a file of
its own because closing any descriptor of the database would drop SQLite's POSIX locks. The file
is removed when the lock is let go; a run that locked a file removed meanwhile tries again.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path
from typing import Final

from ..errors import StateError, StateLockedError

SUFFIX: Final = ".lock"
_RETRY: Final = 0.01  # seconds between attempts while `in_use()` glances at the lock
_PATIENCE: Final = 0.5  # a glance lasts microseconds; a run holding the file lasts far longer


def lock_path(state: Path) -> Path:
    return state.with_name(state.name + SUFFIX)


class RunLock:
    """The exclusive hold of one state file, taken at construction, until `release()`."""

    def __init__(self, state: Path) -> None:
        self.path = lock_path(state)
        self._state = state
        self._fd: int | None = self._acquire()

    def _acquire(self) -> int:
        deadline = time.monotonic() + _PATIENCE
        while True:
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() < deadline:
                    os.close(fd)
                    time.sleep(_RETRY)
                    continue
                holder = _read_pid(fd)
                os.close(fd)
                raise self._held_error(holder) from None
            except OSError as exc:  # a file system without locks
                os.close(fd)
                raise self._cannot(exc) from None
            if self._still_there(fd):
                os.ftruncate(fd, 0)
                os.pwrite(fd, str(os.getpid()).encode(), 0)
                return fd
            os.close(fd)  # the run before let go of it and removed it: lock the new one

    def _open(self) -> int:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise self._cannot(exc) from None

    def _cannot(self, exc: OSError) -> StateError:
        return StateError(f"{self._state}: the state file cannot be locked ({exc.strerror or exc})")

    def _still_there(self, fd: int) -> bool:
        try:
            here = os.stat(self.path)
        except FileNotFoundError:
            return False
        held = os.fstat(fd)
        return (here.st_dev, here.st_ino) == (held.st_dev, held.st_ino)

    def _held_error(self, holder: str) -> StateLockedError:
        who = f" (pid {holder})" if holder.isdigit() else ""
        return StateLockedError(
            f"{self._state}: another run is using this state file{who}; try again once it is done"
        )

    def release(self) -> None:
        """Remove the lock file, then let go: a run waiting on it finds it gone and retries."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        os.close(self._fd)
        self._fd = None


def in_use(state: Path) -> bool:
    """Whether a run holds `state` now; read-only (a glance, never a file created)."""
    try:
        fd = os.open(lock_path(state), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # closing lets go of the shared lock, if taken
    return False


def _read_pid(fd: int) -> str:
    try:
        return os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""

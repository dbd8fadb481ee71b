"""One run at a time on a file: an exclusive `flock` on the file itself (`FileLock`).

Two runs that each remember what they set cannot tell which PATCH the API applied last, so a
state file shared by two runs at once could skip a row the API does not hold; two runs writing
one report would lose lines. Holding the file for the whole run makes its order the API's.

The lock is on the file's identity, not on a name: a symbolic link, a hard link or a bind mount
of the file is the same file, and there is no lock file that could be removed or replaced under
a run. It is `flock`, not POSIX locks: tied to an open file, so two runs in one process exclude
each other too, and the kernel drops it when a process dies.

SQLite's own locks are POSIX locks, and closing any descriptor of a file drops those of the whole
process. So the descriptor that holds the lock is opened before SQLite's and closed after them,
and a file this process holds already is refused without being opened again (`_HELD`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import threading
from pathlib import Path
from typing import Final

_HELD: Final[set[tuple[int, int]]] = set()  # (device, inode) of the files this process holds
_GUARD: Final = threading.Lock()
_FLAGS: Final = os.O_RDWR | os.O_CREAT | os.O_NONBLOCK | os.O_CLOEXEC  # a FIFO never blocks


class Busy(Exception):
    """Another run holds the file; `holder` is its pid, or "" when it cannot be told."""

    def __init__(self, holder: str) -> None:
        super().__init__(holder)
        self.holder = holder

    def who(self) -> str:
        """` (pid N)`, or nothing."""
        return f" (pid {self.holder})" if self.holder.isdigit() else ""


class NotAFile(Exception):
    """The path is there but is not a regular file (a FIFO, a device, a folder)."""


class FileLock:
    """The exclusive hold of one file (created with `mode` if missing), until `release()`.

    Raises `Busy`, `NotAFile`, or `OSError` when the file cannot be opened or locked.
    """

    def __init__(self, path: Path, mode: int = 0o600) -> None:
        self.path = path
        with _GUARD:
            with contextlib.suppress(OSError):
                if _identity(os.stat(path)) in _HELD:
                    raise Busy(str(os.getpid()))
            fd = os.open(path, _FLAGS, mode)
            try:
                self.identity = _check(fd)
                if self.identity in _HELD:  # the name was pointed at a file we hold meanwhile
                    raise Busy(str(os.getpid()))
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise Busy(_holder(self.identity)) from None
            except BaseException:
                os.close(fd)
                raise
            os.set_blocking(fd, True)
            _HELD.add(self.identity)
        self.fd: int | None = fd

    def same_file(self, fd: int) -> bool:
        """Whether `fd` is open on the file this lock holds."""
        return _identity(os.fstat(fd)) == self.identity

    def release(self) -> None:
        """Let go: the file stays, nothing is removed (a name may be another run's by now)."""
        if self.fd is None:
            return
        with _GUARD:
            _HELD.discard(self.identity)
            os.close(self.fd)
            self.fd = None


def in_use(path: Path) -> bool:
    """Whether a run holds `path` now; read-only (a glance, never a file created)."""
    try:
        if _identity(os.stat(path)) in _HELD:
            return True
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # closing lets go of the shared lock, if taken
    return False


def _check(fd: int) -> tuple[int, int]:
    found = os.fstat(fd)
    if not stat.S_ISREG(found.st_mode):
        raise NotAFile()
    return _identity(found)


def _identity(found: os.stat_result) -> tuple[int, int]:
    return found.st_dev, found.st_ino


def _holder(identity: tuple[int, int]) -> str:
    """The pid holding a `flock` on the file, as Linux's `/proc/locks` tells; "" if it cannot."""
    device, inode = identity
    where = f"{os.major(device):02x}:{os.minor(device):02x}:{inode}"
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as locks:
            for line in locks:
                parts = line.split()
                if parts[1:4] == ["FLOCK", "ADVISORY", "WRITE"] and parts[5:6] == [where]:
                    return parts[4]
    except OSError:
        pass
    return ""

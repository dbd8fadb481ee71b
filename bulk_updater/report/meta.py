"""What `--resume` checks of a report, and the lock that keeps a second run off it.

- The meta: which input the report was started from (its sha256) and how it was read. It lives
  in the user's state folder (`$XDG_STATE_HOME/bulk-updater/reports/`, named from a hash of the
  report's real path), not beside the report: dated reports a night would otherwise leave a new
  file each. Entries of reports that no longer exist are removed as new ones are written.
- The lock: `.<report>.lock`, hidden beside the report, held with `flock` while a run writes it
  and removed when the run ends. A killed run leaves it behind; the kernel dropped its lock, so it
  blocks nothing. Beside a network share's report, the lock stays where every machine sees it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from ..errors import ConfigError, ReportLockedError
from ..state.paths import state_dir


def lock_path(real: Path) -> Path:
    """The hidden lock file beside a report (its real path, links resolved)."""
    return real.with_name(f".{real.name}.lock")


def meta_path(real: Path) -> Path:
    """Where the meta of a report (its real path) is kept, in the user's state folder."""
    digest = hashlib.sha256(os.fsencode(real)).hexdigest()[:32]
    return state_dir() / "reports" / f"{digest}.json"


def legacy_paths(real: Path) -> tuple[Path, Path]:
    """The `<report>.lock` and `<report>.meta.json` that versions before 2026-12 left beside it."""
    return real.with_name(real.name + ".lock"), real.with_name(real.name + ".meta.json")


def read_meta(real: Path) -> dict[str, Any] | None:
    """The meta of a report: from the state folder, else from beside it (an older version's)."""
    for path, check in ((meta_path(real), True), (legacy_paths(real)[1], False)):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and (not check or data.get("report") == os.fspath(real)):
            return data
    return None


def write_meta(
    real: Path,
    fingerprint: str | None,
    options: Mapping[str, Any] | None,
    limit: int | None = None,
) -> None:
    """Keep the meta of a report in the state folder (replaced in one step), and drop what an
    older version left beside the report. `limit`: the run reads only its first rows."""
    path = meta_path(real)
    data: dict[str, Any] = {
        "report": os.fspath(real),
        "input_sha256": fingerprint,
        "input_options": dict(options or {}),
    }
    if limit is not None:
        data["limit"] = limit
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        _prune(path.parent)
        handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                file.write(json.dumps(data) + "\n")
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise ConfigError(
            f"{path.parent}: cannot keep what --resume checks there ({exc.strerror}); set "
            "XDG_STATE_HOME to a folder this user can write"
        ) from None
    for old in legacy_paths(real):
        old.unlink(missing_ok=True)


def _prune(folder: Path) -> None:
    """Forget the reports that are gone: their meta would only pile up."""
    for entry in folder.glob("*.json"):
        try:
            report = json.loads(entry.read_text(encoding="utf-8")).get("report")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(report, str) and not os.path.exists(report):
            entry.unlink(missing_ok=True)


class ReportLock:
    """An exclusive lock on a report, tied to this process (the kernel frees it if it dies)."""

    def __init__(self, real: Path, report: Path) -> None:
        self.path = lock_path(real)
        self._handle = _acquire(self.path, report)

    def release(self) -> None:
        """Remove the lock file, then let go: a run waiting on the removed file starts over."""
        try:
            self.path.unlink(missing_ok=True)
        finally:
            self._handle.close()


def _acquire(path: Path, report: Path) -> IO[str]:
    while True:
        handle = open(path, "a+")  # noqa: SIM115 - the handle is the lock
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip()
            handle.close()
            who = f" (pid {holder})" if holder.isdigit() else ""
            raise ReportLockedError(
                f"{report}: another run is writing this report{who}; "
                "wait for it to finish or use another --report"
            ) from None
        # The run that held it may have removed the file between our open and our lock: then
        # this lock is on a file nobody else sees, and the one at `path` is the one to take.
        try:
            current = os.stat(path)
        except FileNotFoundError:
            handle.close()
            continue
        mine = os.fstat(handle.fileno())
        if (current.st_dev, current.st_ino) != (mine.st_dev, mine.st_ino):
            handle.close()
            continue
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        return handle

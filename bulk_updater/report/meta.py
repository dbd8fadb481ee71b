"""What `--resume` checks of a report, and the lock that keeps a second run off it.

- The meta: which input the report was started from (its sha256), how it was read, and which
  API account its rows went to (`state.paths.Account`: origin, workspace, key sha256). It lives
  in the user's state folder (`$XDG_STATE_HOME/bulk-updater/reports/`, named from a hash of the
  report's real path), not beside the report: dated reports a night would otherwise leave a new
  file each. The meta of a report gone for `_FORGET_AFTER` is removed as new ones are written;
  until then, a report moved elsewhere finds it by its input's sha256 (`moved_meta()`).
- The lock: an exclusive `flock` on the report file itself (`state.lock.FileLock`), held while a
  run writes it. Every name of the file (a link, a hard link) is the same file, nothing is left
  beside it, and the kernel drops the lock when a process dies.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from ..errors import ConfigError, ReportLockedError
from ..state.lock import Busy, FileLock, NotAFile
from ..state.paths import Account, state_dir

log = logging.getLogger("bulk_updater")

#: The meta's names for the account, as a state file's (`state.fileformat`).
ACCOUNT: Final = "account"
KEY_SHA256: Final = "key_sha256"
#: The bytes of a text input its fingerprint covers: `--resume` continues a file that only grew.
INPUT_SIZE: Final = "input_size"
#: How long the meta of a report that is gone is kept: the report may only have been moved.
_FORGET_AFTER: Final = 30 * 86400.0


def meta_path(real: Path) -> Path:
    """Where the meta of a report (its real path) is kept, in the user's state folder."""
    digest = hashlib.sha256(os.fsencode(real)).hexdigest()[:32]
    return meta_folder() / f"{digest}.json"


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
    account: Account | None = None,
    input_size: int | None = None,
) -> None:
    """Keep the meta of a report in the state folder (replaced in one step), and drop what an
    older version left beside the report. `limit`: the run reads only its first rows.
    `account`: where its rows go, named as a state file names it (never the key).
    `input_size`: the bytes of the input `fingerprint` covers (a text file's)."""
    path = meta_path(real)
    data: dict[str, Any] = {
        "report": os.fspath(real),
        "input_sha256": fingerprint,
        "input_options": dict(options or {}),
    }
    if limit is not None:
        data["limit"] = limit
    if input_size is not None:
        data[INPUT_SIZE] = input_size
    if account is not None:
        data[ACCOUNT] = account.label
        data[KEY_SHA256] = account.key
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
        raise _folder_error(path.parent, exc) from None
    for old in legacy_paths(real):
        old.unlink(missing_ok=True)


def meta_account(meta: Mapping[str, Any]) -> Account | None:
    """The account a report's rows went to, as its meta says (None: an older version's meta)."""
    label, key = meta.get(ACCOUNT), meta.get(KEY_SHA256)
    if not isinstance(label, str):
        return None
    return Account(label, key if isinstance(key, str) else None)


def report_account(report: Path) -> Account | None:
    """The account a report's rows went to, if its meta says."""
    meta = read_meta(Path(os.path.realpath(report)))
    return meta_account(meta) if meta is not None else None


def check_account(
    report: Path, meta: Mapping[str, Any], account: Account | None, answered: bool = True
) -> bool:
    """Refuse to resume a report whose rows went to another account: finished there is not
    finished here. False: the meta is to name this run's account, as it does not say (an older
    version's, which is warned about) or, `answered` False (no row of the report got a final
    answer from the API), it names another: a key the API refused finished nothing."""
    held = meta_account(meta)
    if account is None:
        return True
    if not answered:
        return held is not None and held.same(account)
    if held is None:
        log.warning(
            "%s: the meta of this report (written by an older version) does not say which API "
            "account its rows went to; resuming as if it was %s",
            report,
            account.label,
        )
        return False
    if held.label != account.label:
        raise ConfigError(
            f"{report}: cannot resume, this report's rows went to {held.label} (this run: "
            f"{account.label}); resume with that base URL and workspace id, or give a new "
            "--report to start over"
        )
    if not held.same(account):
        raise ConfigError(
            f"{report}: cannot resume, this report's rows went through another API key (key "
            f"sha256 {held.key}…, this run's {account.key}…); resume with that key, or give a "
            "new --report to start over"
        )
    return True


def meta_folder() -> Path:
    """Where the meta of every report is kept."""
    return state_dir() / "reports"


def check_meta_folder(real: Path) -> None:
    """Refuse, before anything is written, a state folder where the meta cannot be kept."""
    folder = meta_path(real).parent
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        handle, tmp = tempfile.mkstemp(dir=folder, prefix=".", suffix=".tmp")
        os.close(handle)
        os.unlink(tmp)
    except OSError as exc:
        raise _folder_error(folder, exc) from None


def _folder_error(folder: Path, exc: OSError) -> ConfigError:
    return ConfigError(
        f"{folder}: cannot keep what --resume checks there ({exc.strerror}); set "
        "XDG_STATE_HOME to a folder this user can write"
    )


def moved_meta(fingerprint: str) -> dict[str, Any] | None:
    """The meta of a report that is no longer where it was, started from an input with this
    sha256: the same report, moved (the newest, if several)."""
    found: list[tuple[float, dict[str, Any]]] = []
    for entry in meta_folder().glob("*.json"):
        try:
            data = json.loads(entry.read_text(encoding="utf-8"))
            when = entry.stat().st_mtime
        except (OSError, ValueError):
            continue
        report = data.get("report") if isinstance(data, dict) else None
        mine = isinstance(report, str) and data.get("input_sha256") == fingerprint
        if mine and not os.path.lexists(str(report)):
            found.append((when, data))
    return max(found, key=lambda item: item[0])[1] if found else None


def forget_meta(report: str) -> None:
    """Remove the meta kept for a report's former path (it moved, and has its own now)."""
    meta_path(Path(report)).unlink(missing_ok=True)


def _prune(folder: Path) -> None:
    """Forget the reports gone for long: their meta would only pile up. A report gone lately
    may have been moved, or sit on a share not mounted now: its meta stays."""
    old = time.time() - _FORGET_AFTER
    for entry in folder.glob("*.json"):
        try:
            if entry.stat().st_mtime > old:
                continue
            report = json.loads(entry.read_text(encoding="utf-8")).get("report")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(report, str) and not os.path.lexists(report):
            entry.unlink(missing_ok=True)


class ReportLock:
    """An exclusive lock on a report file itself, tied to this process (the kernel frees it if
    it dies). It opens the file, creating it if missing, and never truncates it."""

    def __init__(self, real: Path, report: Path) -> None:
        try:
            self._lock = FileLock(real, 0o666)  # the umask decides, as for any file written
        except Busy as busy:
            raise ReportLockedError(
                f"{report}: another run is writing this report{busy.who()}; "
                "wait for it to finish or use another --report"
            ) from None
        except NotAFile:
            raise ConfigError(
                f"{report}: not a regular file (a FIFO, a device or a folder); choose another "
                "--report"
            ) from None

    def truncate(self) -> None:
        """Empty the report: this run starts it over."""
        assert self._lock.fd is not None
        os.ftruncate(self._lock.fd, 0)

    def same_file(self, fd: int) -> bool:
        """Whether `fd` is open on the locked report."""
        return self._lock.same_file(fd)

    def holds(self, path: Path) -> bool:
        """Whether `path` names the locked report."""
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            return self._lock.same_file(fd)
        finally:
            os.close(fd)

    def release(self) -> None:
        """Let go; the report stays, and nothing else is removed."""
        self._lock.release()

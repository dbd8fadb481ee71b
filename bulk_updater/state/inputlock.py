"""One run at a time per input file and account: a second run of the same job exits 75.

The documented cron line names its report by date, so the report's lock never meets the next
night's run; without `skip_unchanged` nothing else keeps two nights apart, and the older export's
values would land after the newer ones. The lock is named from the input's real path (not its
inode: an exporter replaces the file by a rename) and the account (base URL, workspace and the
key's sha256: two workspace keys are two workspaces, even with no workspace id), and held for
the run: a `FileLock` on a file of its own in the state folder, freed by the kernel if the run
dies.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

from ..errors import InputLockedError
from .lock import Busy, FileLock, NotAFile
from .paths import Account, state_dir

log = logging.getLogger("bulk_updater")


def input_lock_path(path: str, account: Account) -> Path:
    """The lock file of an input (its real path) sent to an account (its key's digest, never the
    key: the name is on disk)."""
    whose = f"{account.label}\0{account.key or ''}".encode()
    name = os.fsencode(os.path.realpath(path)) + b"\0" + whose
    return state_dir() / "runs" / f"{hashlib.sha256(name).hexdigest()[:32]}.lock"


def hold_input(path: str, shown: str, account: Account) -> FileLock | None:
    """The run's hold of its input for `account`; `InputLockedError` when another run has it.

    None when the state folder cannot keep the lock (read-only, say): the run goes on, warned.
    """
    where = input_lock_path(path, account)
    try:
        where.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        return FileLock(where)
    except Busy as busy:
        raise InputLockedError(
            f"{shown}: another run is sending this input to {account}{busy.who()}; "
            "wait for it to finish, or stop it first"
        ) from None
    except (NotAFile, OSError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not a regular file"
        log.warning("%s: cannot keep a second run of this input out (%s)", where, reason)
        return None

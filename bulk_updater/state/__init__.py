"""The state of `skip_unchanged`: what each lead was last set to by this tool, on disk.

- `fields`   what a row sets and what a lead holds, as flat field -> value maps
- `statefile` `StateFile`: the SQLite file (WAL), batched lookups, a writer thread for changes
- `database` its SQLite connections: held for a run, opened (read-only or not), transactions,
             waits for another process's lock (that a stop ends)
- `lock`     one run at a time on a file: `FileLock`, and `in_use()` to glance at it
- `inputlock` one run at a time of an input file to an account: `hold_input()`
- `info`     what `state info` shows: counts, damaged entries, whose, the last run
- `paths`    the default file: one per API account under the user's state directory; `Account`
- `preview`  `--dry-run --skip-unchanged`: how many rows would be sent, read-only
"""

from .fields import UNKNOWN, Fields, apply, flatten, holds, unknown
from .info import StateInfo
from .paths import Account, default_state_path, state_dir, state_files, state_path
from .statefile import StateFile

__all__ = [
    "UNKNOWN",
    "Account",
    "Fields",
    "StateFile",
    "StateInfo",
    "apply",
    "default_state_path",
    "flatten",
    "holds",
    "state_dir",
    "state_files",
    "state_path",
    "unknown",
]

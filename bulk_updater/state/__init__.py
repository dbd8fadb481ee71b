"""The state of `skip_unchanged`: what each lead was last set to by this tool, on disk.

- `fields`   what a row sets and what a lead holds, as flat field -> value maps
- `store`    `Store`: the SQLite file (WAL), batched lookups, a writer thread for changes
- `paths`    the default file: one per API account under the user's state directory
- `preview`  `--dry-run --skip-unchanged`: how many rows would be sent, read-only
"""

from .fields import UNKNOWN, Fields, apply, flatten, holds, unknown
from .paths import default_state_path, state_dir, state_path
from .store import StateInfo, Store

__all__ = [
    "UNKNOWN",
    "Fields",
    "StateInfo",
    "Store",
    "apply",
    "default_state_path",
    "flatten",
    "holds",
    "state_dir",
    "state_path",
    "unknown",
]

"""Where the state of `skip_unchanged` lives by default: one file per API account.

`$XDG_STATE_HOME/bulk-updater/` (else `~/.local/state/bulk-updater/`), the file named by
`account_name()`: base URL, workspace id and a hash of the key, never the key itself.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from ..account import account_name
from ..settings import Settings

SUFFIX = ".sqlite3"


def state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The user's state directory for this tool (XDG Base Directory specification)."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_STATE_HOME", "").strip()
    # The specification says a relative XDG_STATE_HOME is invalid and must be ignored.
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".local" / "state"
    return root / "bulk-updater"


def default_state_path(
    base_url: str,
    workspace_id: str | None,
    api_key: str,
    environ: Mapping[str, str] | None = None,
) -> Path:
    """The state file of one API account."""
    return state_dir(environ) / (account_name(base_url, workspace_id, api_key) + SUFFIX)


def state_path(settings: Settings) -> Path:
    """The state file of a job: `settings.state`, else the account's default file."""
    if settings.state is not None:
        return Path(settings.state)
    key = settings.api_key.get_secret_value() if settings.api_key is not None else ""
    return default_state_path(settings.base_url, settings.workspace_id, key)

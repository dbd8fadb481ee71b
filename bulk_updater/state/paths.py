"""Where the state of `skip_unchanged` lives by default, and whose it is: one file per account.

`$XDG_STATE_HOME/bulk-updater/` (else `~/.local/state/bulk-updater/`), the file named by
`account_name()`: base URL, workspace id and a hash of the key, never the key itself. A file
records its `Account` too, so that one given as `--state PATH` is never used for another.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..account import account_label, account_name, key_digest
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
    return default_state_path(settings.base_url, settings.workspace_id, _key(settings))


def state_files(environ: Mapping[str, str] | None = None) -> list[Path]:
    """Every state file in the user's state directory, by name."""
    folder = state_dir(environ)
    return sorted(p for p in folder.glob("*" + SUFFIX) if p.is_file()) if folder.is_dir() else []


@dataclass(frozen=True)
class Account:
    """Whose leads a state file holds: the API and workspace, and which key (`key_digest()`).

    `key` is None when there is no key (a library job with its own sender): not compared.
    """

    label: str
    key: str | None

    @classmethod
    def of(cls, settings: Settings) -> Account:
        key = _key(settings)
        label = account_label(settings.base_url, settings.workspace_id)
        return cls(label, key_digest(key) if key else None)

    def same(self, other: Account) -> bool:
        """The same account, as far as both say: a key not known on one side is not compared."""
        keys = (self.key, other.key)
        return self.label == other.label and (None in keys or keys[0] == keys[1])

    def __str__(self) -> str:
        return self.label if self.key is None else f"{self.label}, key sha256 {self.key}…"


def _key(settings: Settings) -> str:
    return settings.api_key.get_secret_value() if settings.api_key is not None else ""

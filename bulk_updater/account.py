"""Which API account a job speaks for: a stable name derived from base URL, workspace and key.

A SendKit rate limit belongs to the account, so whatever is kept per account (the shared rate
budget in Redis, a sync state file) is named by `account_id()`. The name is a digest: it never
holds the key, nor anything from which the key could be read back, and it is safe in a file
name or a Redis key.
"""

from __future__ import annotations

import hashlib
from typing import Final

from yarl import URL

#: Bumped if the derivation ever changes, so that old and new names never collide.
_VERSION: Final = "bulk-updater account v1"


def account_id(base_url: str, workspace_id: str | None, api_key: str) -> str:
    """A 32-hex-digit name for the account behind `api_key` at `base_url` (and `workspace_id`).

    The same account gives the same name whatever the spelling of the URL
    (`https://API.sendkit.ai/` and `https://api.sendkit.ai`); another key, workspace or API
    gives another. Only the sha256 of the key enters the name.
    """
    origin = str(URL(base_url).origin()).lower()
    key_digest = hashlib.sha256(api_key.encode()).hexdigest()
    text = "\n".join((_VERSION, origin, workspace_id or "", key_digest))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def account_label(base_url: str, workspace_id: str | None) -> str:
    """What a person reads to tell accounts apart: the API's origin and the workspace, no key."""
    origin = str(URL(base_url).origin())
    return f"{origin} workspace {workspace_id}" if workspace_id else origin

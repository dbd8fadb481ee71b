"""One name per API account: base URL, workspace id and a hash of the key, never the key itself.

Whatever is kept per account (the state file of `skip_unchanged`, a shared rate budget) is named
by `account_name()`, so two keys, two workspaces or two API hosts never share it.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

from yarl import URL

_UNSAFE: Final = re.compile(r"[^A-Za-z0-9._-]+")


def _digest(text: str, length: int) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:length]


def _safe(text: str) -> str:
    """`text` as a file-name part; a short hash is added when characters had to be replaced."""
    safe = _UNSAFE.sub("_", text).strip("._") or "_"
    return safe if safe == text else f"{safe}.{_digest(text, 8)}"


def account_name(base_url: str, workspace_id: str | None, api_key: str) -> str:
    """`api.sendkit.ai.ws_ab12.k3f2a…`: host (and port), workspace, sha256 of the key.

    Safe as a file name and as a Redis key part; the key is known by `key_digest()` only.
    """
    url = URL(base_url)
    host = url.host or "host"
    where = host if url.is_default_port() else f"{host}-{url.port}"
    workspace = f".ws_{_safe(workspace_id)}" if workspace_id else ""
    return f"{_safe(where)}{workspace}.k{key_digest(api_key)}"


def key_digest(api_key: str) -> str:
    """16 hex digits (64 bits) of the key's sha256: tells keys apart without revealing one."""
    return _digest(api_key, 16)


def account_label(base_url: str, workspace_id: str | None) -> str:
    """What a person reads to tell accounts apart: the API's origin and the workspace, no key."""
    origin = str(URL(base_url).origin())
    return f"{origin} workspace {workspace_id}" if workspace_id else origin

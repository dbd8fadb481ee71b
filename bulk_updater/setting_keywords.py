"""`Options`: the keyword arguments `BulkUpdater(**options)` takes, typed, one per `Settings` field.

Each field's default, bounds and meaning are on `Settings` (`settings.py`); a test checks that
`Options` names exactly its fields.
"""

from __future__ import annotations

import os
from typing import Literal, TypedDict

from .settings import RedisClock


class Options(TypedDict, total=False):
    """The keyword arguments `BulkUpdater` takes, one per `Settings` field (a test checks it)."""

    api_key: str | None
    base_url: str
    workspace_id: str | None
    rate: float | Literal["auto"]
    concurrency: int | None
    max_attempts: int
    timeout: float
    backoff_base: float
    backoff_max: float
    max_pause: float
    streak_limit: int
    give_up_after: float
    match: Literal["id", "email"] | None
    grace: float
    skip_unchanged: bool
    state: str | os.PathLike[str] | None
    redis_url: str | None
    redis_clock: RedisClock
    proxy: str | None

    limit: int | None
    allow_not_found: bool

    tags_separator: str
    header_row: int | None
    hidden_rows: Literal["skip", "send"]

"""The sandbox's leads: reading them from a file and the documented PATCH semantics.

`customFields` is merged because the API docs say so and clients rely on it to set one custom
field without knowing the others. Every other field replaces the stored value, tags included.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

__all__ = ["apply_update", "copy_leads", "load_leads", "now_iso"]


def load_leads(path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """Read a JSON list of lead objects (each with a string `_id`) into an id -> lead dict."""
    with open(path, encoding="utf-8") as file:
        data = json.load(file)
    if not isinstance(data, list):
        raise ValueError(f"{os.fspath(path)}: expected a JSON list of lead objects")
    leads: dict[str, dict[str, Any]] = {}
    for index, lead in enumerate(data):
        if not isinstance(lead, dict) or not isinstance(lead.get("_id"), str) or not lead["_id"]:
            raise ValueError(f"{os.fspath(path)}: item {index} is not a lead object with an _id")
        if lead["_id"] in leads:
            raise ValueError(f"{os.fspath(path)}: duplicate lead id {lead['_id']!r}")
        leads[lead["_id"]] = lead
    return leads


def copy_leads(leads: Mapping[str, Mapping[str, Any]] | None) -> dict[str, dict[str, Any]]:
    """A deep copy, so that updates never reach the caller's objects."""
    return {str(key): copy.deepcopy(dict(lead)) for key, lead in (leads or {}).items()}


def now_iso() -> str:
    """The current UTC time as the API writes it: `2026-01-01T00:00:00.000Z`."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def apply_update(lead: dict[str, Any], fields: Mapping[str, Any]) -> None:
    """Apply a checked update body to `lead` in place and stamp `updatedAt`."""
    for key, value in fields.items():
        if key == "customFields":
            custom = lead.get("customFields")
            lead["customFields"] = {**(custom if isinstance(custom, dict) else {}), **value}
        elif key == "tags":
            lead["tags"] = list(value)
        else:
            lead[key] = value
    lead["updatedAt"] = now_iso()

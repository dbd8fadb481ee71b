"""What a row sets and what a lead is known to hold, as flat field → value maps.

A text field is its name (`jobTitle`), the tag list is `tags` (replaced as a whole, like the API
does), and each custom field is `customFields.<name>` (merged key by key, like the API does). So
"the lead already holds what the row sets" is one check per key, and remembering an accepted row
is a plain dict update.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

import orjson

from ..models import TEXT_FIELDS, LeadUpdate

Fields = dict[str, Any]
CUSTOM: Final = "customFields."
#: The longest stored entry read (its `length()` in SQLite: bytes, or characters of a text).
#: An input record is at most 1 MiB: a longer entry was not written by a run, and reading it
#: could take gigabytes. It counts as damaged, as other entries that cannot be read do.
MAX_STORED: Final = 4 << 20
#: The SQL that reads an entry's `fields`: NULL (damaged) when longer than `MAX_STORED`. SQLite
#: tells the length of a blob without reading it.
BOUNDED: Final = f"CASE WHEN length(fields) <= {MAX_STORED} THEN fields END"
_MISSING: Final = object()


def flatten(update: LeadUpdate) -> Fields:
    """The fields a row sets, flat: `{"jobTitle": "CTO", "customFields.tier": "gold"}`."""
    flat: Fields = {}
    for name in TEXT_FIELDS:
        value = getattr(update, name)
        if value is not None:
            flat[name] = value
    if update.tags is not None:
        flat["tags"] = list(update.tags)
    for key, value in (update.customFields or {}).items():
        flat[CUSTOM + key] = value
    return flat


def _same(held: Any, wanted: Any) -> bool:
    # `True == 1 == 1.0` in Python, but they are different JSON values: compare types too.
    return type(held) is type(wanted) and held == wanted


def holds(known: Mapping[str, Any] | None, wanted: Mapping[str, Any]) -> bool:
    """Whether a lead known to hold `known` already holds every value of `wanted`."""
    if not known:
        return False
    return all(_same(known.get(key, _MISSING), value) for key, value in wanted.items())


class _Unknown:
    def __repr__(self) -> str:
        return "UNKNOWN"


#: A change's value for a field that may or may not have been applied (a request that got no
#: answer): the field is forgotten, so the next row setting it is sent.
UNKNOWN: Final = _Unknown()


def apply(known: Mapping[str, Any] | None, change: Mapping[str, Any] | None) -> Fields:
    """What the lead holds once `change` is applied over `known` (a new dict)."""
    out = dict(known or {})
    for key, value in (change or {}).items():
        if value is UNKNOWN:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def unknown(fields: Iterable[str]) -> Fields:
    """A change that forgets `fields`."""
    return dict.fromkeys(fields, UNKNOWN)


def encode(fields: Mapping[str, Any]) -> bytes:
    """The stored form: compact JSON, keys sorted so equal states are equal bytes."""
    return bytes(orjson.dumps(fields, option=orjson.OPT_SORT_KEYS))


def decode(blob: object) -> Fields | None:
    """The stored form read back; None for a damaged entry (anything but a JSON object)."""
    if not isinstance(blob, bytes | str):
        return None
    try:
        value = orjson.loads(blob)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None

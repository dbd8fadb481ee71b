"""bulk-updater: update SendKit leads in bulk, one PATCH /v1/leads/{id} per row.

Everything public is importable from here.
"""

from importlib import import_module as _import_module
from typing import TYPE_CHECKING as _TYPE_CHECKING

if _TYPE_CHECKING:
    from .client import Reply, Sender, SendKitClient, TransportError
    from .engine import BulkUpdater, OutcomeStream
    from .errors import (
        BulkUpdaterError,
        ConfigError,
        InputChangedError,
        InputError,
        ReportLockedError,
        StateError,
        StateLockedError,
    )
    from .inputs import Invalid, Source
    from .models import LeadUpdate, Outcome, Status, StopReason, Summary

    __version__: str

#: The module each public name comes from, imported at its first use: the command then answers
#: a signal (`launch.py`) before the heavy imports (aiohttp, pydantic) are done.
_EXPORTS = {
    "client": ("Reply", "Sender", "SendKitClient", "TransportError"),
    "engine": ("BulkUpdater", "OutcomeStream"),
    "errors": (
        "BulkUpdaterError",
        "ConfigError",
        "InputChangedError",
        "InputError",
        "ReportLockedError",
        "StateError",
        "StateLockedError",
    ),
    "inputs": ("Invalid", "Source"),
    "models": ("LeadUpdate", "Outcome", "Status", "StopReason", "Summary"),
}
_HOMES = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name: str) -> object:
    if name == "__version__":
        value: object = _import_module("importlib.metadata").version("bulk-updater")
    elif name in _HOMES:
        value = getattr(_import_module(f".{_HOMES[name]}", __name__), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # once: later uses do not come back here
    return value


__all__ = [
    "BulkUpdater",
    "BulkUpdaterError",
    "ConfigError",
    "InputChangedError",
    "InputError",
    "Invalid",
    "LeadUpdate",
    "Outcome",
    "OutcomeStream",
    "Reply",
    "ReportLockedError",
    "SendKitClient",
    "Sender",
    "Source",
    "StateError",
    "StateLockedError",
    "Status",
    "StopReason",
    "Summary",
    "TransportError",
    "__version__",
]

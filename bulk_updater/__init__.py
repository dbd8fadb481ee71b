"""bulk-updater: update SendKit leads in bulk, one PATCH /v1/leads/{id} per row.

Everything public is importable from here.
"""

import typing as _typing
from importlib import import_module as _import_module

if _typing.TYPE_CHECKING:  # mypy knows `TYPE_CHECKING` by its name, not by an alias
    from .client import Reply, Sender, SendKitClient, TransportError
    from .engine import BulkUpdater, OutcomeStream
    from .errors import (
        BulkUpdaterError,
        ConfigError,
        InputChangedError,
        InputError,
        InputLockedError,
        InputModifiedError,
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
        "InputLockedError",
        "InputModifiedError",
        "ReportLockedError",
        "StateError",
        "StateLockedError",
    ),
    "inputs": ("Invalid", "Source"),
    "models": ("LeadUpdate", "Outcome", "Status", "StopReason", "Summary"),
}
_HOMES = {name: module for module, names in _EXPORTS.items() for name in names}


if not _typing.TYPE_CHECKING:  # hidden from type checkers: a misspelt name stays an error there

    def __getattr__(name: str) -> object:
        if name == "__version__":
            value: object = _import_module("importlib.metadata").version("bulk-updater")
        elif name in _HOMES:
            value = getattr(_home(_HOMES[name], name), name)
        else:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        globals()[name] = value  # once: later uses do not come back here
        return value


def _home(module: str, name: str) -> object:
    """The module `name` comes from, imported: an `AttributeError` while it is imported would
    read as a missing name (`cannot import name`, `hasattr()` false), so it is an `ImportError`
    that keeps its cause."""
    try:
        return _import_module(f".{module}", __name__)
    except AttributeError as exc:
        raise ImportError(
            f"cannot import {name!r}: importing {__name__}.{module} failed: {exc}", name=__name__
        ) from exc


def __dir__() -> list[str]:
    """The public names too, loaded or not, for `dir()`, `help()` and completion."""
    return sorted({*globals(), *__all__})


__all__ = [
    "BulkUpdater",
    "BulkUpdaterError",
    "ConfigError",
    "InputChangedError",
    "InputError",
    "InputLockedError",
    "InputModifiedError",
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

"""bulk-updater: update SendKit leads in bulk, one PATCH /v1/leads/{id} per row.

Everything public is importable from here.
"""

from importlib.metadata import version as _version

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

__version__ = _version("bulk-updater")

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

"""The exception tree for whole-job errors; row-level problems are outcomes, not exceptions.

BulkUpdaterError                 anything that stops a job before or while it runs
├── ConfigError                  bad settings, missing key, refused base URL      (exit 2)
├── InputError                   unreadable file, no id column, unknown column    (exit 2)
│   └── InputChangedError        --resume against a report of a different input   (exit 2)
├── ReportLockedError            another run holds the report's lock               (exit 75)
└── StateError                   the state file of skip_unchanged cannot be used   (exit 2)
    └── StateLockedError         another process kept the state file locked       (exit 75)
"""

from __future__ import annotations


class BulkUpdaterError(Exception):
    """Base class of every error bulk-updater raises for a whole job."""


class ConfigError(BulkUpdaterError):
    """A setting is missing or has a value that cannot work; the message says how to fix it."""


class InputError(BulkUpdaterError):
    """The input cannot be read as a whole (as opposed to one bad row, which becomes `invalid`)."""


class InputChangedError(InputError):
    """`--resume` was asked for, but the input is not the one the report was started from."""


class ReportLockedError(BulkUpdaterError):
    """Another run is writing the same report."""


class StateError(BulkUpdaterError):
    """The state file of `skip_unchanged` cannot be opened or is not one of ours."""


class StateLockedError(StateError):
    """Another process kept the state file locked longer than a run waits for it."""

"""Every exception the package raises, in trees; row-level problems are outcomes, not exceptions.

For a whole job, with the command line's exit code at the right:

BulkUpdaterError                 anything that stops a job before or while it runs
├── ConfigError                  bad settings, missing key, refused base URL      (exit 2)
├── InputError                   unreadable file, no id column, unknown column    (exit 2)
│   └── InputChangedError        --resume against a report of a different input   (exit 2)
├── InputModifiedError           the input file changed before any row was sent    (exit 3)
├── InputLockedError             another run sends the same input to the account   (exit 75)
├── JobBusy                      the page runs one job at a time (`ui.session`)    (HTTP 409)
├── ReportLockedError            another run holds the report's lock               (exit 75)
└── StateError                   the state file of skip_unchanged cannot be used   (exit 2)
    └── StateLockedError         another process kept the state file locked       (exit 75)

Outside that tree, what a caller of the library can also see:

TransportError                   no HTTP answer (`client`): a `Sender` raises it, a row's outcome
Stopped                          a `Limiter`'s wait ends because the job stops (`limits`)
├── LimiterDown                  the shared budget's Redis is lost: the job stops as an outage
└── GivenUp                      held past `give_up_after` with no request taken: an outage too
ValueError                       a value that cannot work: a `Pacer`'s rate, a sandbox's options
└── pydantic.ValidationError     `Settings(...)` or `LeadUpdate(...)` built with a bad value
TypeError                        rows that are not rows: `run("file.csv")`, one row alone
AttributeError                   a name `bulk_updater` does not have (its names load on first use)
ImportError                      a public name whose module fails to import (its cause attached)
OSError                          a file the job writes fails (a full disk), a sandbox's port in use
RuntimeError                     a `BulkUpdater`, `SendKitClient`, `Sandbox` or `RedisLimiter` used
                                 outside `async with`, or a job started while one runs

`Settings.build()` and `BulkUpdater(...)` turn a `ValidationError` into one `ConfigError` line.

Inside the package only, each caught where it is raised and told as one of the above:

Broken                           an .xlsx part that cannot be read (`inputs.sheet`): `InputError`
└── TooMuchText                  a workbook's text too large for memory: `InputError`
Busy                             a file another process holds locked (`state.lock`): `*LockedError`
NotAFile                         a lock on what is no regular file (`state.lock`): `ConfigError`,
                                 `StateError`
BadRequest                       a request the sandbox refuses (`sandbox.contract`): its 400 or 413
aiohttp.web.HTTPNotFound         an unknown path or upload of the page (`ui.routes`): its 404
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


class InputModifiedError(BulkUpdaterError):
    """The input file changed while it was read (an exporter still writing it): what was read
    may be cut off, or half of one export and half of the next. Raised before any row is sent;
    once rows go out, the job stops instead (`StopReason.INPUT_CHANGED`)."""


class InputLockedError(BulkUpdaterError):
    """Another run is sending the same input file to the same account."""


class ReportLockedError(BulkUpdaterError):
    """Another run is writing the same report."""


class StateError(BulkUpdaterError):
    """The state file of `skip_unchanged` cannot be opened or is not one of ours."""


class StateLockedError(StateError):
    """Another process kept the state file locked longer than a run waits for it."""

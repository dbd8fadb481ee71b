"""A local SendKit-compatible API server, for the demo, end-to-end tests and users without a key.

It serves `PATCH /v1/leads/{id}` with the documented semantics and `GET /v1/leads` (list and
search), checks every request against the API contract strictly, and can misbehave on purpose:
rate limits of several shapes with 429s and rate-limit headers, injected faults, latency, and
an `intercept` hook for anything stranger. Everything a test wants to check afterwards is
recorded in a `SandboxState`.

It is self-contained (standard library and aiohttp only) so it never depends on the code it
tests. Only `command.py`, the `bulk-updater sandbox` command, also uses click.

| module | owns |
| --- | --- |
| `runners.py` | `Sandbox`, `SandboxThread`, `serve`: running it; `start_app`, any app on a port |
| `app.py` | `create_app`: the routes and the path every API request takes |
| `contract.py` | auth and body checks, the error body shape |
| `leads.py` | `load_leads` and the PATCH semantics |
| `search.py` | `GET /v1/leads`: query checks, matching, pages and cursors |
| `ratelimit.py` | the limit's shapes (windows, buckets), 429s, rate-limit headers |
| `faults.py` | `FaultPlan` and the injected faults |
| `recorded.py` | `SandboxState` |
| `command.py` | the click command |
"""

from .app import Intercept, SandboxOptions, create_app
from .faults import FaultPlan
from .leads import load_leads
from .ratelimit import HeaderStyle, RetryAfter, max_in_any_window
from .recorded import DEFAULT_SANDBOX_KEY, SandboxState
from .runners import Sandbox, SandboxThread, serve, start_app

__all__ = [
    "DEFAULT_SANDBOX_KEY",
    "FaultPlan",
    "HeaderStyle",
    "Intercept",
    "RetryAfter",
    "Sandbox",
    "SandboxOptions",
    "SandboxState",
    "SandboxThread",
    "create_app",
    "load_leads",
    "max_in_any_window",
    "serve",
    "start_app",
]

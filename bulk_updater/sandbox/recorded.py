"""`SandboxState`: everything the sandbox saw and did, for a test to check afterwards.

The state is plain data updated by the server's event loop. Another thread may read it, and
waits on `changed` rather than polling, so a test never sleeps to let a request land.
"""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DEFAULT_SANDBOX_KEY", "SandboxState"]

DEFAULT_SANDBOX_KEY = "sk_sandbox_demo"


@dataclass
class SandboxState:
    """Everything the sandbox saw and did, for tests to inspect afterwards.

    "API requests" below are all requests except those under `/_sandbox/`, which are for people
    looking at the sandbox, not for the client under test.
    """

    leads: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Lead id -> lead object, in the API's shape; updated in place."""
    requests: int = 0
    """Every API request received, on any path but `/_sandbox/`."""
    patches_by_lead: collections.Counter[str] = field(default_factory=collections.Counter)
    """PATCH requests per lead id, whatever the answer (faults, 429, 404 included)."""
    applied_by_lead: collections.Counter[str] = field(default_factory=collections.Counter)
    """Successful updates applied per lead id."""
    stray: list[str] = field(default_factory=list)
    """`"METHOD path"` of every API request to no API route."""
    bad_requests: list[str] = field(default_factory=list)
    """A description of every request that broke the API contract."""
    max_in_flight_per_lead: int = 0
    """Highest number of requests for one lead id being handled at once (arrival to answer)."""
    rate_limited: int = 0
    """429 answers sent by the rate limit."""
    faults: collections.Counter[str] = field(default_factory=collections.Counter)
    """Injected faults by kind."""
    auth_failures: int = 0
    """401 and 403 answers sent."""
    # Fields added later come last, so that positional construction keeps its meaning.
    arrivals: list[float] = field(default_factory=list)
    """Event-loop time (`time.monotonic()` on the standard loops) of every API request's arrival."""
    search_requests: int = 0
    """`GET /v1/leads` requests, whatever the answer."""
    searches: collections.Counter[str] = field(default_factory=collections.Counter)
    """`search` text -> `GET /v1/leads` requests for it, every page counted (`""` when absent)."""
    changed: threading.Condition = field(default_factory=threading.Condition, compare=False)
    """Notified when a request arrives, when an update is applied and when a request is answered."""

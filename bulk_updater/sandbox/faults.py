"""Injected faults: the trouble a real API and the proxies in front of it cause now and then.

`FaultPlan` says how often and which kinds; `Faults` draws them per admitted API request:

- `"503"`: an HTML page from a proxy, as load balancers send when the backend is away.
- `"500"`: a JSON error from the API itself.
- `"drop"`: the connection closes without an answer.
- `"slow"`: the update is applied but the answer comes `slow_seconds` late.
  A client with a shorter timeout retries an update that already happened.

The three answering kinds leave the lead alone, so a retry is the only way to apply the update.
"""

from __future__ import annotations

import collections
import random
from dataclasses import dataclass

from aiohttp import web

from .contract import error

__all__ = ["FAULT_KINDS", "FaultPlan", "Faults"]

FAULT_KINDS = ("503", "500", "drop", "slow")

_HTML_503 = "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>"


@dataclass(frozen=True)
class FaultPlan:
    """Which faults the sandbox injects into API requests, and how often."""

    rate: float = 0.0
    """Probability (0..1) that an admitted API request gets an injected fault."""
    kinds: tuple[str, ...] = FAULT_KINDS
    """Fault kinds, chosen uniformly: `"503"`, `"500"`, `"drop"`, `"slow"`."""
    slow_seconds: float = 5.0
    """How long a `"slow"` answer waits (after the update was applied)."""
    seed: int | None = None
    """Seed for a reproducible fault sequence."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"fault rate must be between 0 and 1, got {self.rate!r}")
        if not self.kinds:
            raise ValueError(f"fault kinds must not be empty; choose from {', '.join(FAULT_KINDS)}")
        unknown = [kind for kind in self.kinds if kind not in FAULT_KINDS]
        if unknown:
            raise ValueError(
                f"unknown fault kind(s) {', '.join(map(repr, unknown))}; "
                f"choose from {', '.join(FAULT_KINDS)}"
            )
        if not self.slow_seconds >= 0.0:
            raise ValueError(f"slow_seconds must be >= 0, got {self.slow_seconds!r}")


class Faults:
    """Draws the faults of one `FaultPlan` and counts them into `counts`."""

    def __init__(self, plan: FaultPlan, counts: collections.Counter[str]) -> None:
        self.plan = plan
        self.counts = counts
        # Its own generator, so that other random choices never shift a seeded fault sequence.
        self._random = random.Random(plan.seed)

    def draw(self) -> str | None:
        """The fault kind for this request, or None for a normal answer."""
        if self.plan.rate <= 0 or self._random.random() >= self.plan.rate:
            return None
        kind = self._random.choice(self.plan.kinds)
        self.counts[kind] += 1
        return kind

    @staticmethod
    def answer(kind: str, request: web.Request) -> web.StreamResponse | None:
        """The answer that replaces the normal one, or None for `"slow"` (answered late instead)."""
        if kind == "503":
            return web.Response(status=503, text=_HTML_503, content_type="text/html")
        if kind == "500":
            return error(500, "INTERNAL", "Internal server error")
        if kind == "drop":
            return _drop(request)
        return None


def _drop(request: web.Request) -> web.StreamResponse:
    # Close the socket without an answer; aiohttp then fails to write the response below
    # with a ConnectionError, which it treats as a client that went away (nothing logged).
    response = web.Response(status=204)
    response.force_close()
    if request.transport is not None:
        request.transport.close()
    return response

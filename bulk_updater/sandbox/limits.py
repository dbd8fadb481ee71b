"""The sandbox's rate limit: a sliding one-second window, its 429 answer and rate-limit headers.

**The window.** With `rate` > 0, at most `rate + burst` API requests are admitted in any sliding
second. A request admitted at loop time `t` counts until `t + 1.0` exactly, so two requests one
second apart never share a window. A refused request is not counted, so a client that keeps
knocking is not locked out for longer. The check comes after authentication, so a wrong key is
told so even when the window is full.

**The 429 answer.** `Retry-After` says when the oldest counted request leaves the window, in
whole seconds rounded up (at least 1), as an HTTP date, or not at all (`retry_after`).

**The headers.** `headers="xrl"` or `"ietf"` adds rate-limit headers to every answer of the API
paths (2xx, 4xx, 429, injected 500 and 503; not a dropped connection, not an intercepted answer).
The advertised limit is `limit = max(1, int(rate))`: `burst` is hidden tolerance, as real APIs
keep some. `counted` is the number of requests in the window when the answer is sent, this one
included if it was admitted.

- `xrl` (GitHub's form): `X-RateLimit-Limit: <limit>`,
  `X-RateLimit-Remaining: <max(0, limit - counted)>`, and `X-RateLimit-Reset: <UTC epoch seconds
  when the oldest counted request leaves the window, rounded up>` (the current second rounded up
  when the window is empty).
- `ietf` (the IETF draft): `RateLimit: "default";r=<remaining>;t=<seconds until that moment,
  rounded up, >= 0>` and `RateLimit-Policy: "default";q=<limit>;w=1`.
- `exhausted` (a broken API): `xrl`'s headers, but always `X-RateLimit-Remaining: 0` and a
  reset 22 hours away, whatever the window holds; the answers themselves follow the window.

`max_in_any_window` checks the same window from the other side: given arrival times, it says the
most that fell within any one second.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import email.utils
import math
import time
from collections.abc import Iterable
from typing import Literal, cast

from aiohttp import web

from .contract import error

__all__ = [
    "HEADER_STYLES",
    "RETRY_AFTER_MODES",
    "HeaderStyle",
    "RateLimit",
    "RetryAfter",
    "check_rate",
    "max_in_any_window",
    "retry_after_mode",
]

RetryAfter = Literal["seconds", "date", "none"]
HeaderStyle = Literal["xrl", "ietf", "exhausted"]

RETRY_AFTER_MODES = ("seconds", "date", "none")
HEADER_STYLES = ("xrl", "ietf", "exhausted")
#: How far away `exhausted` headers put the reset: a daily quota's, 22 hours.
EXHAUSTED_RESET = 22 * 3600


def retry_after_mode(value: str) -> RetryAfter:
    """`value` as a `RetryAfter`, or a ValueError that lists the choices."""
    if value not in RETRY_AFTER_MODES:
        raise ValueError(
            f"retry_after must be one of {', '.join(RETRY_AFTER_MODES)}, got {value!r}"
        )
    return cast(RetryAfter, value)


def _header_style(value: str | None) -> HeaderStyle | None:
    if value is not None and value not in HEADER_STYLES:
        raise ValueError(f"headers must be one of {', '.join(HEADER_STYLES)}, got {value!r}")
    return cast(HeaderStyle | None, value)


def check_rate(rate: float, burst: int, headers: str | None) -> None:
    """Raise ValueError for a rate and burst the window cannot enforce or advertise."""
    if not rate >= 0.0:
        raise ValueError(f"rate must be >= 0 (0 disables the limit), got {rate!r}")
    if burst < 0:
        raise ValueError(f"burst must be >= 0, got {burst!r}")
    if headers is not None and rate == 0:
        raise ValueError("rate-limit headers need a rate limit: set a rate > 0")


class RateLimit:
    """The sliding window of one sandbox; `set` changes its limit while it serves."""

    def __init__(
        self,
        *,
        rate: float,
        burst: int,
        retry_after: RetryAfter = "seconds",
        headers: HeaderStyle | None = None,
    ) -> None:
        self.retry_after = retry_after_mode(retry_after)
        self.headers = _header_style(headers)
        self._window: collections.deque[float] = collections.deque()
        self.rate = 0.0
        self.burst = 0
        self.set(rate, burst)

    def set(self, rate: float, burst: int) -> None:
        """Change the limit; requests already counted stay counted."""
        check_rate(rate, burst, self.headers)
        self.rate = rate
        self.burst = burst

    def admit(self) -> web.Response | None:
        """Count the request and return None, or return the 429 answer if the window is full."""
        if not self.rate:
            return None
        now = self._prune()
        if len(self._window) < self.rate + self.burst:
            self._window.append(now)
            return None
        return self._too_many(self._window[0] + 1.0 - now)

    def _prune(self) -> float:
        now = asyncio.get_running_loop().time()
        while self._window and self._window[0] <= now - 1.0:
            self._window.popleft()
        return now

    def _too_many(self, wait: float) -> web.Response:
        response = error(429, "RATE_LIMITED", "Too many requests")
        if self.retry_after == "seconds":
            response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
        elif self.retry_after == "date":
            response.headers["Retry-After"] = email.utils.formatdate(
                math.ceil(time.time() + wait), usegmt=True
            )
        return response

    def add_headers(self, response: web.StreamResponse) -> None:
        """Add the configured rate-limit headers, describing the window as it is now."""
        if self.headers is None or not self.rate:
            return
        now = self._prune()
        limit = max(1, int(self.rate))
        remaining = max(0, limit - len(self._window))
        reset_in = self._window[0] + 1.0 - now if self._window else 0.0
        if self.headers == "exhausted":
            remaining, reset_in = 0, EXHAUSTED_RESET
        if self.headers in ("xrl", "exhausted"):
            response.headers["X-RateLimit-Limit"] = str(limit)
            response.headers["X-RateLimit-Remaining"] = str(remaining)
            response.headers["X-RateLimit-Reset"] = str(math.ceil(time.time() + reset_in))
        else:
            response.headers["RateLimit"] = f'"default";r={remaining};t={math.ceil(reset_in)}'
            response.headers["RateLimit-Policy"] = f'"default";q={limit};w=1'


def max_in_any_window(arrivals: Iterable[float], width: float = 1.0) -> int:
    """The most arrivals within any window of `width` seconds, as the sandbox's limit counts them.

    Two arrivals share a window when they are less than `width` apart: the rule `RateLimit` uses.
    """
    times = sorted(arrivals)
    most = 0
    for last, at in enumerate(times):
        first = bisect.bisect_right(times, at - width, 0, last + 1)
        most = max(most, last - first + 1)
    return most

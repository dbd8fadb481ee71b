"""The sandbox's rate limit: the shapes real APIs have, their 429 answer and rate-limit headers.

**The shapes** (`shape`), each with `rate` > 0 (loop seconds):

- `sliding` (the default): a sliding window log, at most `rate + burst` API requests in any
  sliding second. A request admitted at loop time `t` counts until `t + 1.0` exactly, so two
  requests one second apart never share a window.
- `fixed`: a fixed window, at most `rate + burst` in each whole second of the clock
  (`[n, n + 1)`), which resets on the second: a client may send twice the rate across a boundary.
- `bucket`: a token bucket (https://en.wikipedia.org/wiki/Token_bucket) of `max(1, burst)`
  tokens refilled at `rate` a second; each request takes one. Requests closer together than
  `1 / rate` soon find it empty.
- `window+bucket`: both at once: at most `rate` in any sliding second, and a bucket of
  `max(1, burst)` on top, so requests sent in a clump are refused even when the second has room.

A refused request is not counted, so a client that keeps knocking is not locked out for longer.
The check comes after authentication, so a wrong key is told so even when the window is full.
`halve_after` and `restore_after` (seconds after the first request admitted) make the limit
drop to half mid-job, and come back.

**The 429 answer.** `Retry-After` says when a request would be admitted again, in
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
from collections.abc import Callable, Iterable
from typing import Literal, cast

from aiohttp import web

from .contract import error

__all__ = [
    "HEADER_STYLES",
    "RETRY_AFTER_MODES",
    "SHAPES",
    "HeaderStyle",
    "RateLimit",
    "RetryAfter",
    "Shape",
    "check_rate",
    "limit_shape",
    "max_in_any_window",
    "retry_after_mode",
]

RetryAfter = Literal["seconds", "date", "none"]
HeaderStyle = Literal["xrl", "ietf", "exhausted"]

Shape = Literal["sliding", "fixed", "bucket", "window+bucket"]

RETRY_AFTER_MODES = ("seconds", "date", "none")
SHAPES = ("sliding", "fixed", "bucket", "window+bucket")
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


def limit_shape(value: str) -> Shape:
    """`value` as a `Shape`, or a ValueError that lists the choices."""
    if value not in SHAPES:
        raise ValueError(f"shape must be one of {', '.join(SHAPES)}, got {value!r}")
    return cast(Shape, value)


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
    """The limit of one sandbox, of one `Shape`; `set` changes it while it serves."""

    def __init__(
        self,
        *,
        rate: float,
        burst: int,
        retry_after: RetryAfter = "seconds",
        headers: HeaderStyle | None = None,
        shape: Shape = "sliding",
        halve_after: float | None = None,
        restore_after: float | None = None,
    ) -> None:
        self.retry_after = retry_after_mode(retry_after)
        self.headers = _header_style(headers)
        self.shape = limit_shape(shape)
        if halve_after is not None and not halve_after >= 0:
            raise ValueError(f"halve_after must be >= 0 seconds, got {halve_after!r}")
        if restore_after is not None and (halve_after is None or not restore_after > halve_after):
            raise ValueError("restore_after needs halve_after, and must come after it")
        self.halve_after, self.restore_after = halve_after, restore_after
        #: The wall clock a `Retry-After` date is written by (a test in virtual time sets its own).
        self.wall: Callable[[], float] = time.time
        self._window: collections.deque[float] = collections.deque()
        self._first: float | None = None  # when the first request was admitted
        self._second = -math.inf  # the whole second `fixed` counts in, and its count
        self._in_second = 0
        self._tokens = 0.0  # the bucket, as of `_filled`
        self._filled: float | None = None
        self.rate = 0.0
        self.burst = 0
        self.set(rate, burst)

    def set(self, rate: float, burst: int) -> None:
        """Change the limit; requests already counted stay counted."""
        check_rate(rate, burst, self.headers)
        self.rate = rate
        self.burst = burst

    def _rate(self, now: float) -> float:
        """The rate in force at `now`: half of `rate` between `halve_after` and `restore_after`."""
        if self.halve_after is None or self._first is None:
            return self.rate
        since = now - self._first
        restored = self.restore_after is not None and since >= self.restore_after
        return self.rate / 2 if since >= self.halve_after and not restored else self.rate

    def admit(self) -> web.Response | None:
        """Count the request and return None, or return the 429 answer if the limit is reached."""
        if not self.rate:
            return None
        now = self._prune()
        rate = self._rate(now)
        wait = self._wait(now, rate)
        if wait > 0:
            return self._too_many(wait)
        self._first = now if self._first is None else self._first
        self._window.append(now)
        self._in_second += 1
        if self.shape in ("bucket", "window+bucket"):
            self._tokens -= 1
        return None

    def _wait(self, now: float, rate: float) -> float:
        """0 when a request may be admitted now, else how long until one may."""
        waits = [0.0]
        if self.shape in ("sliding", "window+bucket"):
            allowed = rate + (self.burst if self.shape == "sliding" else 0)
            if len(self._window) >= allowed:
                waits.append(self._window[0] + 1.0 - now)
        if self.shape == "fixed":
            second = math.floor(now)
            if second != self._second:
                self._second, self._in_second = second, 0
            if self._in_second >= rate + self.burst:
                waits.append(second + 1.0 - now)
        if self.shape in ("bucket", "window+bucket"):
            size = max(1, self.burst)
            since = now - (self._filled if self._filled is not None else now - size / rate)
            self._tokens, self._filled = min(size, self._tokens + since * rate), now
            if self._tokens < 1 - 1e-9:  # a token refilled over float sums of time is whole
                waits.append((1 - self._tokens) / rate)
        return max(waits)

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
                math.ceil(self.wall() + wait), usegmt=True
            )
        return response

    def _state(self, now: float) -> tuple[int, float]:
        """What the headers say is left, and the seconds until it resets, for the shape."""
        limit = max(1, int(self._rate(now)))
        if self.shape == "fixed":
            second = math.floor(now)
            used = self._in_second if second == self._second else 0
            return max(0, limit - used), second + 1.0 - now
        if self.shape == "bucket":
            rate = self._rate(now)
            return max(0, math.floor(self._tokens)), (max(1, self.burst) - self._tokens) / rate
        remaining = max(0, limit - len(self._window))
        return remaining, self._window[0] + 1.0 - now if self._window else 0.0

    def add_headers(self, response: web.StreamResponse) -> None:
        """Add the configured rate-limit headers, describing the limit as it is now."""
        if self.headers is None or not self.rate:
            return
        now = self._prune()
        limit = max(1, int(self._rate(now)))
        remaining, reset_in = self._state(now)
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

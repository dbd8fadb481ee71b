"""Rate-limit headers: what an answer says of the limit, read leniently and checked for sense.

Two forms are read (`sendkit-api.md` says SendKit sends one of them, names undocumented):

- GitHub's: `X-RateLimit-Limit: 40`, `X-RateLimit-Remaining: 12` and `X-RateLimit-Reset`, in
  UTC epoch seconds (or, when it is small, seconds from now, as some APIs send it). It does not
  say how long the window is: `WindowGuess` infers that from the resets seen.
- The IETF draft's (https://datatracker.ietf.org/doc/draft-ietf-httpapi-ratelimit-headers/):
  `RateLimit-Policy: "default";q=100;w=10` (quota `q` per window of `w`
  seconds) and `RateLimit: "default";r=50;t=30` (`r` left, reset in `t` seconds). Several
  policies may be listed: the tightest (smallest `q / w`) is used, with its `RateLimit` item.

`read_hint()` reduces them to one `RateHint`. A malformed or absurd value (not a number, a
negative count, more left than the quota, a reset more than a day away) is ignored, never
guessed at; `Complaints` logs each kind of problem once at debug level (`-v`). `Allowance` is the
rule the headers give: never start more requests than `Remaining` said were left before `Reset`.
"""

from __future__ import annotations

import collections
import logging
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

#: The largest quota, window or reset believed: beyond that a value is a bug, not a limit.
MAX_QUOTA: Final = 10_000_000
MAX_SECONDS: Final = 86_400.0
#: `X-RateLimit-Reset` values above this are epoch seconds; below, seconds from now.
_EPOCH_FROM: Final = 1e9
#: A reset this far in the past is a skewed clock, read as "now"; further, it is nonsense.
_SKEW: Final = 5.0
_ITEM: Final = re.compile(r'\s*("(?:[^"\\]|\\.)*"|[A-Za-z*][\w.*:/%-]*)((?:\s*;[^,;]*)*)\s*(?:,|$)')
_PARAM: Final = re.compile(r';\s*([a-z*][a-z0-9_.*-]*)\s*(?:=\s*("(?:[^"\\]|\\.)*"|[^;,\s]*))?')

Complain = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class RateHint:
    """What one answer's headers say; any part may be missing."""

    quota: int | None = None  # requests allowed per window
    window: float | None = None  # seconds, when the answer says (IETF `w`)
    remaining: int | None = None  # requests left in the current window
    reset: float | None = None  # seconds from the answer until the window resets
    source: str = ""  # the header that gave the quota, as the summary names it
    none_allowed: bool = False  # the quota stated was 0: an answer that is not a 429 belies it


class Complaints:
    """Logs each distinct problem with the headers once, at debug level (shown with `-v`)."""

    def __init__(self, log: logging.Logger) -> None:
        self._log = log
        self._seen: set[str] = set()

    def __call__(self, problem: str) -> None:
        if problem not in self._seen:
            self._seen.add(problem)
            self._log.debug("ignoring a rate-limit header: %s (said once)", problem)


def read_hint(
    headers: Mapping[str, str] | None, epoch: float, complain: Complain
) -> RateHint | None:
    """The hint in an answer's rate-limit headers (`epoch`: now, in UTC seconds), or None."""
    if not headers:
        return None
    if "RateLimit-Policy" in headers or "RateLimit" in headers:
        return _ietf(headers, complain)
    if "X-RateLimit-Limit" in headers or "X-RateLimit-Remaining" in headers:
        return _xrl(headers, epoch, complain)
    return None


def _count(name: str, text: str, complain: Complain) -> int | None:
    """A whole number from 0 to `MAX_QUOTA`, else None (and a complaint)."""
    text = text.strip()
    if not text.isdigit() or int(text) > MAX_QUOTA:
        complain(f"{name}: {text[:40]!r} is not a whole number from 0 to {MAX_QUOTA}")
        return None
    return int(text)


def _seconds(name: str, text: str, complain: Complain) -> float | None:
    """Seconds from 0 to a day, else None (and a complaint)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value <= MAX_SECONDS:
        complain(f"{name}: {text.strip()[:40]!r} is not a number of seconds up to a day")
        return None
    return value


def _reset(text: str, epoch: float, complain: Complain) -> float | None:
    """`X-RateLimit-Reset` as seconds from now: epoch seconds, or seconds when small."""
    try:
        stamp = float(text)
    except ValueError:
        stamp = math.nan
    if not stamp >= _EPOCH_FROM:
        return _seconds("X-RateLimit-Reset", text, complain)
    if not -_SKEW <= stamp - epoch <= MAX_SECONDS:
        complain(f"X-RateLimit-Reset: {text.strip()[:40]!r} is not within a day of now")
        return None
    return max(0.0, stamp - epoch)


def _checked(hint: RateHint, complain: Complain) -> RateHint | None:
    """The hint without the parts that contradict each other; None when nothing is left."""
    if hint.quota == 0:
        complain(f"{hint.source}: a quota of 0 allows nothing")
        hint = RateHint(None, None, hint.remaining, hint.reset, "", none_allowed=True)
    if hint.quota is not None and hint.remaining is not None and hint.remaining > hint.quota:
        complain(f"{hint.source}: {hint.remaining} left is more than the quota {hint.quota}")
        hint = RateHint(hint.quota, hint.window, None, hint.reset, hint.source)
    if hint.quota is None and hint.remaining is None:
        return None
    if hint.quota is None and hint.source:
        hint = RateHint(None, None, hint.remaining, hint.reset, "")
    return hint


def _xrl(headers: Mapping[str, str], epoch: float, complain: Complain) -> RateHint | None:
    limit = headers.get("X-RateLimit-Limit")
    left = headers.get("X-RateLimit-Remaining")
    reset_text = headers.get("X-RateLimit-Reset")
    quota = _count("X-RateLimit-Limit", limit, complain) if limit is not None else None
    remaining = _count("X-RateLimit-Remaining", left, complain) if left is not None else None
    reset = _reset(reset_text, epoch, complain) if reset_text is not None else None
    if reset is None:
        remaining = None  # what is left, but until when? It cannot pace anything.
    return _checked(RateHint(quota, None, remaining, reset, "X-RateLimit-Limit"), complain)


def _items(name: str, text: str, complain: Complain) -> dict[str, dict[str, str]]:
    """A structured-field list: item name -> its parameters (`q`, `w`, `r`, `t`, ...)."""
    items: dict[str, dict[str, str]] = {}
    position = 0
    while position < len(text.rstrip()):
        match = _ITEM.match(text, position)
        if match is None or match.end() == position:
            complain(f"{name}: {text[:60]!r} is not a list of policies")
            return {}
        item = match.group(1).strip('"')
        items[item] = {key: (value or "").strip('"') for key, value in _PARAM.findall(match[2])}
        position = match.end()
    return items


def _ietf(headers: Mapping[str, str], complain: Complain) -> RateHint | None:
    policies = _items("RateLimit-Policy", headers.get("RateLimit-Policy", ""), complain)
    limits = _items("RateLimit", headers.get("RateLimit", ""), complain)
    best: tuple[float, str, int, float] | None = None  # (rate, name, quota, window)
    for item, params in policies.items():
        if "q" not in params:
            continue
        quota = _count("RateLimit-Policy q", params["q"], complain)
        window = _seconds("RateLimit-Policy w", params["w"], complain) if "w" in params else None
        if quota and window and (best is None or quota / window < best[0]):
            best = (quota / window, item, quota, window)
    state = limits.get(best[1]) if best is not None else None
    if state is None and limits:  # no policy named: the item with the least left
        state = min(limits.values(), key=lambda p: int(p["r"]) if p.get("r", "").isdigit() else 0)
    remaining = reset = None
    if state is not None and "r" in state and "t" in state:
        remaining = _count("RateLimit r", state["r"], complain)
        reset = _seconds("RateLimit t", state["t"], complain)
        if reset is None:
            remaining = None
    quota, window = (best[2], best[3]) if best is not None else (None, None)
    return _checked(RateHint(quota, window, remaining, reset, "RateLimit-Policy"), complain)


class WindowGuess:
    """The window of a limit whose headers do not say it (`X-RateLimit-*`), from its resets.

    A window never resets later than its length from now, so the longest reset seen is a lower
    bound. Resets come in whole seconds (rounded up, by the sandbox and most APIs): one second
    is taken off that bound, and the guess is never below one second.
    """

    def __init__(self) -> None:
        self.longest = 0.0

    def see(self, reset: float) -> float:
        """Take in one reset; the window as now guessed, in seconds."""
        self.longest = max(self.longest, reset)
        return max(1.0, math.ceil(self.longest - 1.0))

    def stated(self, hint: RateHint, in_flight: float) -> tuple[float, str] | None:
        """The limit a hint states, as a rate over its window less `in_flight` seconds (the
        time requests spend on their way), and how the summary says where it came from."""
        if hint.quota is None:
            return None
        window = hint.window
        if window is None:  # X-RateLimit-*: the window is not said, the resets tell it
            if hint.reset is None:
                return None
            window = self.see(hint.reset)
        per = "" if window == 1 else f" per {window:g}s"
        return hint.quota / (window + in_flight), f"from {hint.source}: {hint.quota}{per}"


class Allowance:
    """`Remaining` before `Reset`: never more starts than the latest answer said were left.

    The latest answer is the one whose request started last: it has seen the most. Starts after
    that request were not counted in its `Remaining`, so they use it up. At its reset the rule
    lapses, until an answer brings a new one. Times are loop times, passed in.

    The rule holds starts back for at most `most` seconds in a row (the job's `--max-pause`):
    past that it is overridden (`overridden_at`) until it lapses or an answer leaves some left.
    An answer to a request started then tells whether the headers were right (a 429) or not.
    """

    def __init__(self, earlier: Allowance | None = None) -> None:
        """`earlier`: an allowance whose rule is dropped, but whose record of starts is kept."""
        self._since = -math.inf  # the start of the request whose answer set the rule
        self._left = 0
        self._until = -math.inf
        self._starts: collections.deque[float] = (
            earlier._starts if earlier is not None else collections.deque(maxlen=MAX_STARTS)
        )
        self._closed_at: float | None = None  # when the rule began holding starts back
        self.overridden_at: float | None = None  # when it was held to longer than allowed

    def learn(self, started: float, remaining: int, reset: float, now: float) -> None:
        """An answer to a request that started at `started` says `remaining` until `reset`."""
        if started >= self._since or now >= self._until:
            self._since, self._left, self._until = started, remaining, now + reset

    def start(self, now: float) -> None:
        self._starts.append(now)

    def used(self) -> int:
        """Starts since the request the rule came from."""
        count = 0
        for at in reversed(self._starts):
            if at <= self._since:
                break
            count += 1
        return count

    def sent_rate(self, at: float) -> float | None:
        """Requests started in the second up to `at`, as a rate (over less than a second when
        the first start is more recent); None before any start. The rate a 429 came at."""
        starts = self._starts
        if not starts or starts[0] > at:
            return None
        count = sum(1 for t in reversed(starts) if at - 1.0 < t <= at)
        return count / max(min(1.0, at - starts[0]), 0.1)

    def closed_until(self, now: float, most: float = math.inf) -> float | None:
        """When the rule lets the next request start, if not now: its reset, or `most` seconds
        after it began holding starts back, whichever comes first."""
        if now >= self._until or self.used() < self._left:
            self._closed_at = self.overridden_at = None
            return None
        if self.overridden_at is not None:
            return None
        if self._closed_at is None:
            self._closed_at = now
        end = self._closed_at + most
        if now >= end:
            self.overridden_at = end
            return None
        return min(self._until, end)

    def contradicted(self, started: float, remaining: int | None) -> bool:
        """Whether the API took a request started past an overridden rule, and its answer says
        nothing is left all the same: a `Remaining` that the answers contradict."""
        overridden = self.overridden_at
        return overridden is not None and started >= overridden and remaining == 0


#: Starts remembered for `Allowance.used()`: far more than can be in flight.
MAX_STARTS: Final = 4096

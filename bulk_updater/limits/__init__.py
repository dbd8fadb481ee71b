"""Rate limiters: what every request passes through before it starts, and what it learns after.

The workers see only the `Pacing` protocol: wait for a start slot (`acquire`), report each
answer (`observe`), pause every caller after a 429 (`pause`), sleep a backoff (`sleep`). The
engine drives the `Lifecycle`: `open()` and `close()` around the jobs, `begin()` and `stop()`
around each, `describe()` the rate. A `Limiter` is both (`protocols.py`). The implementations:

| module | owns |
| --- | --- |
| `protocols.py` | `Pacing`, `Lifecycle` and `Limiter`, what the engine asks of a limiter |
| `pacer.py` | `Pacer`: the fixed-rate slot schedule, the shared 429 pause (`--rate 0`) |
| `guard.py` | `StartGuard`: at most R actual starts in any sliding second, whatever the schedule |
| `limiter.py` | `AdaptiveLimiter`, the default: a schedule steered by what the answers say |
| `adaptive.py` | `RateController`: the rate learned from 429s (CUBIC), pure, time passed in |
| `hints.py` | the summary's hint after repeated cuts (`--rate auto`, `--redis`) |
| `headers.py` | `X-RateLimit-*` and IETF `RateLimit` headers read, the `Remaining`/`Reset` budget |
| `flight.py` | requests in flight that follow latency (Little's law) |
| `holds.py` | `Holds`: every wait of the whole job, capped at `--max-pause`, counted |
| `shared.py` | `RedisLimiter`: the schedule of `pacer.py` in Redis, shared by an account's jobs |
| `redis_budget.py` | the Redis side of `shared.py`: connection, script, errors in words |
| `schedule_calls.py` | `shared.py`'s script calls: answers kept, messages sent, Redis lost |
| `account_state.py` | what the script's answers say of the account, and what holds a job for it |
| `status.py` | `RateStatus`, what `describe()` says |

A new limiter is a new class here; nothing else changes.
"""

from __future__ import annotations

from ..settings import Settings
from .adaptive import RateController
from .holds import Holds
from .limiter import AdaptiveLimiter
from .pacer import GivenUp, LimiterDown, Pacer, PausePolicy, Stopped
from .protocols import Departures, Lifecycle, Limiter, Pacing, departure_hook
from .status import RateStatus

__all__ = [
    "AdaptiveLimiter",
    "Departures",
    "GivenUp",
    "Holds",
    "Lifecycle",
    "Limiter",
    "LimiterDown",
    "Pacer",
    "Pacing",
    "PausePolicy",
    "RateController",
    "RateStatus",
    "Stopped",
    "departure_hook",
    "limiter_for",
]


def limiter_for(settings: Settings) -> Limiter:
    """The limiter a job's settings call for (the one place that chooses).

    `--rate 0` asks for no limit: the bare pacer, the fast path, nothing to learn. Any other
    rate (a ceiling, or `auto`) adapts to what the API says; with `redis_url` on a schedule
    shared through Redis (its module, and redis-py, imported only then).
    """
    if settings.rate == 0:
        return Pacer.of(settings)
    if settings.redis_url:
        from .shared import RedisLimiter

        return AdaptiveLimiter.of(settings, schedule=RedisLimiter.of(settings))
    return AdaptiveLimiter.of(settings)

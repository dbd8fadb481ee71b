"""`AccountState`: what the shared schedule's latest answer said of the account.

Every run of the script (`schedule.lua`) answers with the account's state as well: the run of
429s counted in Redis, the rate last shared, the rate in force (the lowest of the jobs running
lately) and how many starts the account has recorded so far. `RedisLimiter` keeps it here; the
count of starts, sampled over the last second, is the rate every job of the account starts at
(`starts_rate`), which the adaptive controller measures the account's limit by. What holds
this job because of the account (another job's pause, a start listed ahead, another job's
lower rate) is named here too, for the progress line.
"""

from __future__ import annotations

import collections
from typing import Any, Final

from .pacer import TOO_MANY
from .status import per_second

#: The span over which the account's start rate is measured.
SPAN: Final = 1.0
#: What a pause another job of the account set is, on the progress line.
SHARED_PAUSE: Final = "a 429 of another job"
#: How much later than this process's own pause the account's may end and still be its own
#: (Redis set it a round trip later), not another job's.
OWN: Final = 0.1
#: What a wait for a start another host recorded ahead of this one's clock is, on the
#: progress line.
STARTS_AHEAD: Final = "a start recorded ahead in Redis"
#: What a wait for a slot at another job's lower rate is, on the progress line.
RATE_IN_FORCE: Final = "the account's rate in force,"
#: A wait for a slot longer than this, at a rate in force below the job's own, is a hold.
SLOW_SLOT: Final = 1.0


def pause_why(ends: float, own_end: float) -> str:
    """Whose the account's pause, ending at `ends`, is: this job's own when it ends within
    `OWN` of the one this job set (ending at `own_end`), else another job's."""
    return SHARED_PAUSE if ends > own_end + OWN else TOO_MANY


class AccountState:
    """The account as Redis last described it; `rate` is this job's own, until Redis speaks."""

    def __init__(self, rate: float) -> None:
        self.streak = 0  # 429 pauses in a row
        self.shared_rate: float | None = None  # the rate last shared by any job
        self.rate_in_force = rate
        # (loop time, starts the account has recorded): their rate is the account's
        self._granted: collections.deque[tuple[float, int]] = collections.deque()

    def heard(self, reply: list[Any], now: float) -> None:
        """An answer of the script, at loop time `now`."""
        granted = self._granted
        granted.append((now, int(reply[7])))
        while len(granted) > 2 and granted[1][0] <= granted[-1][0] - SPAN:
            granted.popleft()
        self.streak = int(reply[3])
        self.shared_rate = float(reply[4]) if reply[4] else None
        self.rate_in_force = float(reply[5])

    def starts_rate(self, now: float) -> float | None:
        """Requests every job of the account started in the last second, as Redis counted
        them (None until answers span most of a second)."""
        granted = self._granted
        if len(granted) < 2 or granted[-1][0] - granted[0][0] < SPAN / 2:
            return None
        then = granted[0]
        for sample in granted:  # the latest sample at least a second old, else the oldest
            if sample[0] > now - SPAN:
                break
            then = sample
        latest = granted[-1]
        return (latest[1] - then[1]) / max(latest[0] - then[0], SPAN / 2)

    def slot_hold(self, seconds: float, rate: float, ahead: bool) -> str | None:
        """What holds this job, at its own `rate`, while it waits `seconds` for a slot (None:
        its pace, nothing else): a start another host listed `ahead` of this one's clock, or
        another job's lower rate in force."""
        if ahead:
            return STARTS_AHEAD
        if seconds > SLOW_SLOT and self.rate_in_force < rate:
            return f"{RATE_IN_FORCE} {per_second(self.rate_in_force)}"
        return None

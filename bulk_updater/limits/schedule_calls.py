"""A `RedisLimiter`'s calls to the account's schedule: what each answer says, and Redis lost.

Each call runs the script (`redis_budget.py`) at the limiter's rate of the moment, and what its
answer says of the account is kept (`account_state.py`). Redis failing on any call is lost for
the rest of the job: `lose()` says why once and wakes every waiter, and the limiter's next
`acquire()` stops the job as an outage (`LimiterDown`).

What the caller need not wait for goes as a message in a task of its own: a 429's pause, the
end of a run of 429s, a rate shared with the other jobs, the records of starts that left late
(`departures.py`). The tasks are kept until they end, so that `close()` lets them reach Redis
before it disconnects.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from .account_state import AccountState
from .pacer import LimiterDown
from .redis_budget import BudgetStore

#: What a message's answer is given to, with the loop time at which it was sent.
Answered = Callable[[list[Any], float], None]


class ScheduleCalls:
    """Runs of `store`'s script at `rate()`, their answers heard by `account`; `halt` is set
    once Redis is lost."""

    def __init__(
        self,
        store: BudgetStore,
        account: AccountState,
        rate: Callable[[], float],
        halt: asyncio.Event,
    ) -> None:
        self.store = store
        self.account = account
        self._rate = rate
        self._halt = halt
        self.lost: str | None = None  # why Redis can no longer be used
        self.tasks: set[asyncio.Task[Any]] = set()  # the messages on their way

    async def call(self, op: str, arg: str = "") -> list[Any]:
        """One run of the script, awaited; raises one of `store.errors` when Redis fails."""
        reply = await self.store.call(op, self._rate(), arg)
        self.account.heard(reply, asyncio.get_running_loop().time())
        return reply

    def lose(self, exc: Exception) -> LimiterDown:
        """Redis failed mid-run: from now on every caller stops the job."""
        if self.lost is None:
            self.lost = self.store.lost(exc)
            self._halt.set()
        return LimiterDown(self.lost)

    @property
    def usable(self) -> bool:
        return self.store.is_open and self.lost is None

    def publish(self, op: str, arg: str = "", answered: Answered | None = None) -> None:
        """Send a message without holding up the caller; its answer, if any, to `answered`."""
        if self.usable:
            self.keep(asyncio.get_running_loop().create_task(self.send(op, arg, answered)))

    def keep(self, task: asyncio.Task[Any]) -> None:
        """A message on its way, in a task of its own: `close()` lets it arrive."""
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def send(self, op: str, arg: str, answered: Answered | None = None) -> bool:
        """One message, awaited; False when Redis cannot be used (lost now or before)."""
        if not self.usable:
            return False
        sent = asyncio.get_running_loop().time()
        try:
            reply = await self.call(op, arg)
        except self.store.errors as exc:
            self.lose(exc)
            return False
        if answered is not None:
            answered(reply, sent)
        return True

    async def arrived(self) -> None:
        """Wait for every message on its way to reach Redis, or fail to."""
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)

    async def close(self) -> None:
        """Let the messages on their way arrive, then disconnect."""
        await self.arrived()
        await self.store.close()

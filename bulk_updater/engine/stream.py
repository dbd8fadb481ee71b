"""`OutcomeStream`: what `BulkUpdater.stream()` returns, and the streams an updater still runs.

A stream is an async iterator of outcomes and an async context manager (as httpx's
`client.stream`): leaving `async with updater.stream(rows) as outcomes:` ends its job, however
the block is left. A plain `async for` left early drops the stream instead: `Streams` notices
when it is garbage-collected (at once in CPython, whose reference counting frees it as the loop
ends) and closes its job then, so the next job on the updater does not find it running. The
updater's block ends every stream's job, held or dropped.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncGenerator
from types import AsyncGeneratorType, TracebackType

from ..models import Outcome


class OutcomeStream:
    """Each row's `Outcome` as it finishes: `async for` over it, or `async with` around it.

    `aclose()` ends the job: rows not yet yielded get no outcome, requests in flight are
    cancelled, and the input is closed.
    """

    def __init__(self, outcomes: AsyncGenerator[Outcome, None]) -> None:
        self._outcomes = outcomes

    def __aiter__(self) -> OutcomeStream:
        return self

    async def __anext__(self) -> Outcome:
        return await anext(self._outcomes)

    async def aclose(self) -> None:
        """End the job (nothing happens if it is over)."""
        await self._outcomes.aclose()

    async def __aenter__(self) -> OutcomeStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class Streams:
    """The streams of one updater: each stream's job is closed once the caller drops the stream.

    The updater holds each stream's generator, so it is closed here, as a task the next job
    waits for (`ended()`), not whenever asyncio's own finalizer gets to it.
    """

    def __init__(self) -> None:
        self._open: dict[weakref.ref[OutcomeStream], AsyncGenerator[Outcome, None]] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def new(self, outcomes: AsyncGenerator[Outcome, None]) -> OutcomeStream:
        stream = OutcomeStream(outcomes)
        self._open[weakref.ref(stream, self._dropped)] = outcomes
        return stream

    def _dropped(self, ref: weakref.ref[OutcomeStream]) -> None:
        outcomes = self._open.pop(ref, None)
        if outcomes is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # dropped outside the loop: asyncio's finalizer closes it
            return
        task = loop.create_task(outcomes.aclose())  # a no-op for a stream read to its end
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        """End the job of every stream, held or dropped: after the updater's block a stream the
        caller still holds yields nothing more, and its state file and input are let go of."""
        held, self._open = list(self._open.values()), {}
        try:
            for outcomes in held:
                running = isinstance(outcomes, AsyncGeneratorType) and outcomes.ag_running
                if not running:  # else read in another task: the updater ends its job
                    await outcomes.aclose()
        finally:
            await self.ended()

    async def ended(self) -> None:
        """Wait until the jobs of dropped streams are closed."""
        while self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

"""The setup of a job (the updater opening, the state file waited for): a stop during it ends the
job before it reads a row, and a setup cut short (a cancel, the loop's end) lets go of all it
opened."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bulk_updater import BulkUpdater, StateLockedError, Status, StopReason
from bulk_updater.limits import Pacer
from bulk_updater.state import StateFile
from bulk_updater.state.lock import in_use
from tests.conftest import FakeSender

ROWS = [{"id": f"lead{i}", "jobTitle": "CRO"} for i in range(20)]


class Held:
    """`path`'s SQLite write lock held by another connection (another process, as SQLite sees
    it); `waiting` is set once a run says it waits for it."""

    def __init__(self, path: Path) -> None:
        StateFile(path).close()
        self._other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._other.execute("BEGIN EXCLUSIVE")
        self.waiting = threading.Event()

    def holding(self) -> bool:
        return self._other.in_transaction

    def release(self) -> None:
        if self._other.in_transaction:
            self._other.execute("ROLLBACK")


def openers() -> list[threading.Thread]:
    """The threads opening a state file for a job."""
    return [t for t in threading.enumerate() if t.name == "bulk-updater-state-open"]


@contextmanager
def locked_by_another(path: Path) -> Iterator[Held]:
    """The lock held for the block; the thread that opens the state file is joined after it."""
    held = Held(path)
    handler = logging.Handler()
    handler.emit = lambda record: held.waiting.set()  # type: ignore[method-assign]
    logging.getLogger("bulk_updater").addHandler(handler)
    try:
        yield held
    finally:
        logging.getLogger("bulk_updater").removeHandler(handler)
        held.release()
        held._other.close()
        for thread in openers():
            thread.join(30)


async def test_a_stop_while_the_state_file_is_waited_for_ends_the_job_sending_nothing(
    tmp_path: Path,
) -> None:
    """The stop ends the opening thread's wait too (SQLite's own would go on for seconds): by the
    job's end the thread has let go of the file, while the other process still holds it."""
    state = tmp_path / "s.sqlite3"
    sender = FakeSender()
    with locked_by_another(state) as held:
        async with BulkUpdater(sender=sender, rate=0, skip_unchanged=True, state=state) as updater:
            job = asyncio.create_task(updater.run(ROWS))
            assert await asyncio.to_thread(held.waiting.wait, 30)
            updater.stop("interrupted by SIGTERM")
            summary = await asyncio.wait_for(job, 30)  # a guard against a hang
            assert not in_use(state)  # the thread let go: a next job in this process may have it
            assert held.holding()
    assert (summary.stopped, summary.stop_message) == (
        StopReason.INTERRUPTED,
        "interrupted by SIGTERM",
    )
    assert summary.rows == 0
    assert sender.calls == []
    with contextlib.closing(StateFile(state, readonly=True)) as store:
        assert store.info().last_run is None  # the stopped opening noted no run


class SlowToOpen(Pacer):
    """A pacer whose `open()` waits for `release` (a shared budget on a slow Redis)."""

    def __init__(self) -> None:
        super().__init__(0)
        self.opening = asyncio.Event()
        self.release = asyncio.Event()
        self.calls: list[str] = []

    async def open(self) -> None:
        self.calls.append("open")
        self.opening.set()
        await self.release.wait()

    async def close(self) -> None:
        self.calls.append("close")


async def test_a_stop_while_the_limiter_opens_ends_the_job_sending_nothing() -> None:
    sender = FakeSender()
    limiter = SlowToOpen()
    updater = BulkUpdater(sender=sender, limiter=limiter)

    async def job() -> tuple[int, StopReason | None]:
        async with updater:
            summary = await updater.run(ROWS)
        return summary.rows, summary.stopped

    running = asyncio.create_task(job())
    await limiter.opening.wait()
    updater.stop("interrupted by SIGINT")
    limiter.release.set()
    assert await running == (0, StopReason.INTERRUPTED)
    assert sender.calls == []
    async with updater:  # the stop was for that job alone
        assert (await updater.run(ROWS[:1])).counts[Status.UPDATED] == 1


async def test_a_stop_while_a_stream_sets_up_ends_it_with_no_outcome() -> None:
    sender = FakeSender()
    async with BulkUpdater(sender=sender, rate=0) as updater:
        updater.stop()
        assert [outcome async for outcome in updater.stream(ROWS)] == []
    assert sender.calls == []


async def test_a_limiter_whose_open_is_cancelled_is_closed() -> None:
    limiter = SlowToOpen()

    async def enter() -> None:
        async with BulkUpdater(sender=FakeSender(), limiter=limiter):
            pass

    entering = asyncio.create_task(enter())
    await limiter.opening.wait()
    entering.cancel()
    with pytest.raises(asyncio.CancelledError):
        await entering
    assert limiter.calls == ["open", "close"]


def test_a_loop_ended_while_the_state_file_opens_lets_go_of_it(tmp_path: Path) -> None:
    """Ctrl+C in `asyncio.run` while the state file waits for another process's lock, which is
    let go of as the loop cancels the job: the thread then has the file, and closes it, so a new
    loop in the same process can run a job."""
    state = tmp_path / "s.sqlite3"
    with locked_by_another(state) as held:

        async def interrupted() -> None:
            async with BulkUpdater(sender=FakeSender(), skip_unchanged=True, state=state) as u:
                job = asyncio.create_task(u.run(ROWS))
                job.add_done_callback(lambda _: held.release())  # as the loop cancels it
                assert await asyncio.to_thread(held.waiting.wait, 30)
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            asyncio.run(interrupted())
    assert not in_use(state)

    async def again() -> dict[Status, int]:
        async with BulkUpdater(sender=FakeSender(), rate=0, skip_unchanged=True, state=state) as u:
            return (await u.run(ROWS)).counts

    try:
        counts = asyncio.run(again())
    except StateLockedError as exc:
        pytest.fail(f"the file is still held: {exc}")
    assert counts[Status.UPDATED] == 20

"""The state file of a `skip_unchanged` job, opened in a thread of its own: opening may wait for
another process's lock, and the job's stop (or its cancel) ends that wait.

`open_unchanged()` gives the job's `Unchanged` rule; `input_name()` is what the file says the run
read.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from typing import Any

from ..inputs import Rows, Source
from ..settings import Settings
from ..state import Account, StateFile, state_path
from .unchanged import Unchanged


async def open_unchanged(
    settings: Settings, rows: Rows, stopping: asyncio.Event | None = None
) -> Unchanged | None:
    """The rule of a job, its state file opened in a thread: it may wait for another process.

    The file is held for this job until it ends; one of another account is refused. None when
    `stopping` is set first: the thread's wait ends too, and it has let go of the file on return.
    """
    path = state_path(settings)
    opening = _Opening(asyncio.get_running_loop())

    def open_store() -> StateFile:
        store = StateFile(path, account=Account.of(settings), stop=opening.stop)
        try:
            store.begin(input_name(rows))
        except BaseException:
            store.close()
            raise
        return store

    # A thread of its own, not the loop's executor: a loop closing while the thread waits for
    # another process's lock neither waits for it nor leaves the file held.
    threading.Thread(
        target=opening.run, args=(open_store,), name="bulk-updater-state-open", daemon=True
    ).start()
    stopped = asyncio.ensure_future(stopping.wait()) if stopping is not None else None
    try:
        waits: list[asyncio.Future[Any]] = (
            [opening.done] if stopped is None else [opening.done, stopped]
        )
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        opening.abandon()
        raise
    finally:
        if stopped is not None:
            stopped.cancel()
    if not opening.done.done():
        opening.abandon()
        # Soon: the stop ended its wait. Then the next job finds the file free. Shielded, so that
        # a cancel here leaves `ended` for the thread to set.
        await asyncio.shield(opening.ended)
        return None
    return Unchanged(opening.done.result())


class _Opening:
    """A state file opened in a thread, for a loop that may give up on it (a cancel, a stop, or
    the loop's end): then the thread's wait for another process's lock ends (`stop`), and the
    thread closes the file itself if it has it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.done: asyncio.Future[StateFile] = loop.create_future()
        self.ended: asyncio.Future[None] = loop.create_future()  # the thread holds nothing now
        self.stop = threading.Event()
        self._loop = loop
        self._lock = threading.Lock()
        self._abandoned = False
        self._store: StateFile | None = None  # opened, not yet handed to the loop

    def run(self, open_store: Callable[[], StateFile]) -> None:
        try:
            self._open(open_store)
        finally:
            self._hand(self._end, None)

    def _open(self, open_store: Callable[[], StateFile]) -> None:
        try:
            store = open_store()
        except BaseException as exc:  # the loop's to raise, if it still waits
            self._hand(self._fail, exc)
            return
        with self._lock:
            if not self._abandoned:
                self._store = store
                if self._hand(self._give, store):
                    return
            self._store = None
        store.close()

    def _hand(self, deliver: Callable[[Any], None], value: object) -> bool:
        try:
            self._loop.call_soon_threadsafe(deliver, value)
        except RuntimeError:  # the loop is closed: no one waits
            return False
        return True

    def _give(self, store: StateFile) -> None:
        with self._lock:  # abandoned: `abandon()` took the store and closed it
            if not self._abandoned:
                self._store = None
                self.done.set_result(store)

    def _fail(self, exc: BaseException) -> None:
        if not self._abandoned:
            self.done.set_exception(exc)

    def _end(self, _: None) -> None:
        self.ended.set_result(None)

    def abandon(self) -> None:
        """No job wants the file any more: closed now if it is open, else by the thread."""
        self.stop.set()
        with self._lock:
            self._abandoned = True
            store, self._store = self._store, None
        if self.done.done() and not self.done.cancelled() and self.done.exception() is None:
            store = self.done.result()
        if store is not None:
            store.close()


def input_name(rows: Rows) -> str:
    """What the state file says a run read: an absolute path, traceable from anywhere."""
    if not isinstance(rows, Source):
        return "(rows from the library)"
    return rows.name if rows.is_stdin else os.path.abspath(rows.path)

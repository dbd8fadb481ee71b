"""The job on its event loop: uvloop when installed, signals, the progress ticker.

The first SIGINT/SIGTERM stops the job gracefully, a second exits at once. A signal before the
job starts (while the input is opened, which may block on a pipe, or its rows are counted)
exits at once too: nothing is sent yet. A signal after the last outcome changes nothing.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, Final, TypeVar

from ..engine import BulkUpdater
from ..inputs import Source
from ..launch import SIGNAL_EXIT, exit_before_start
from ..models import Outcome, Summary
from ..printable import escape
from ..progress import Progress
from .summary import Problems

_T = TypeVar("_T")


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed, unless BULK_UPDATER_NO_UVLOOP is set."""
    if os.environ.get("BULK_UPDATER_NO_UVLOOP"):
        return None
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


#: The young generation's threshold while a command runs (Python's default: 700 allocations).
#: The requests in flight hold a few thousand live objects (aiohttp's state for each), which
#: every young collection walks again: at the default, that was 9-11 µs of a row's CPU.
YOUNG_COLLECTION: Final = 10_000


def run_async(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run `coro` on the command's loop. What the imports and the settings made lives as long as
    the process: `gc.freeze()` moves it out of the collector's sight, so that a full collection
    does not walk its objects again (about 2 µs of a row's CPU). The command owns its process, so
    it may tune the collector; the library leaves that to the program it runs in."""
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION, *gc.get_threshold()[1:])
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(coro)


class RedactKey(logging.Filter):
    """Belt and braces: no log record may carry the key, whatever a library logs."""

    def __init__(self) -> None:
        super().__init__()
        self.key = ""  # set once it is read

    def filter(self, record: logging.LogRecord) -> bool:
        if self.key and self.key in record.getMessage():
            record.msg = record.getMessage().replace(self.key, "[redacted]")
            record.args = None
        return True


class Printable(logging.Formatter):
    """A log line as it may reach a terminal: an email, an id or a header a line quotes cannot
    act there."""

    def format(self, record: logging.LogRecord) -> str:
        return escape(super().format(record), keep="\n")


def log_warnings() -> None:
    """What the library warns about while it runs (a state file another run is writing), on
    stderr as one plain line."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(Printable("bulk-updater: warning: %(message)s"))
    logging.getLogger("bulk_updater").addHandler(handler)


def log_requests() -> RedactKey:
    """`-v`: every request (and what the run waits for) on stderr, the key never shown."""
    handler = logging.StreamHandler(sys.stderr)
    redact = RedactKey()
    handler.addFilter(redact)
    handler.setFormatter(Printable("%(asctime)s %(levelname)s %(message)s"))
    logging.getLogger("bulk_updater").addHandler(handler)
    logging.getLogger("bulk_updater").setLevel(logging.DEBUG)
    return redact


async def job(
    updater: BulkUpdater,
    source: Source,
    progress: Progress | None,
    problems: Problems,
    **run: Any,
) -> tuple[Summary, int | None]:
    """Run the job with signal handling: the first signal stops it, a second exits at once."""
    loop = asyncio.get_running_loop()
    received: list[int] = []

    def on_signal(signum: int) -> None:
        if received:
            os._exit(SIGNAL_EXIT.get(signal.Signals(signum), 128 + signum))
        received.append(signum)
        hint = "; rerun with --resume" if source.rereadable else ""
        updater.stop(f"interrupted by {signal.Signals(signum).name}{hint}")

    for signum in SIGNAL_EXIT:
        loop.add_signal_handler(signum, on_signal, signum)
    ticker = asyncio.create_task(progress.run()) if progress is not None else None
    try:
        async with updater:

            def on_outcome(outcome: Outcome) -> None:
                problems.take(outcome)
                if progress is not None:
                    progress.update(outcome)

            summary = await updater.run(source, on_outcome=on_outcome, **run)
    finally:
        if ticker is not None:
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)
        with signals_held():  # removing the loop's handler restores the default action
            for signum in SIGNAL_EXIT:
                loop.remove_signal_handler(signum)
                signal.signal(signum, _note_late if not received else _exit_now)
    return summary, received[0] if received else None


def counted_rows(source: Source, interrupted: Callable[[int, str], None]) -> int | None:
    """The input's rows, for the progress line (None for a pipe: it counts without a total).

    Counting a big input takes seconds, while the job's loop waits: a signal then ends the run
    at once (`interrupted` told), as before the job started; the job's handlers are back after.
    """
    handlers = {signum: signal.getsignal(signum) for signum in SIGNAL_EXIT}
    exit_before_start("before any row was sent", interrupted)
    try:
        return source.count()
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


@contextmanager
def signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM wait until the block ends, then reach the handlers installed by then."""
    signal.pthread_sigmask(signal.SIG_BLOCK, SIGNAL_EXIT)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNAL_EXIT)


def _note_late(signum: int, frame: FrameType | None) -> None:
    """After the last outcome a first signal changes nothing: the result is already known."""
    signal.signal(signum, _exit_now)


def _exit_now(signum: int, frame: FrameType | None) -> None:
    os._exit(SIGNAL_EXIT.get(signal.Signals(signum), 128 + signum))


__all__ = [
    "RedactKey",
    "counted_rows",
    "exit_before_start",
    "job",
    "log_requests",
    "run_async",
    "signals_held",
]

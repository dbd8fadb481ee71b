"""The command's entry point, light on purpose: it answers SIGINT and SIGTERM before it imports
the rest.

The default action of SIGTERM ends a process without a word (exit -15, no summary). The command's
imports take a second or more on a busy machine, so the handler goes in first. This module
imports nothing but the standard library, and the package imports its names lazily.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from types import FrameType
from typing import Final

#: The exit code of a run a signal ended, as a shell reports it (128 + the signal's number).
SIGNAL_EXIT: Final = {signal.SIGINT: 130, signal.SIGTERM: 143}


def exit_before_start(
    when: str = "before any row was read", note: Callable[[int, str], None] | None = None
) -> None:
    """From now until `job` installs its own handlers, a signal ends the run at once (after
    `note` is told the exit code and why): nothing is sent yet. Nothing is restored in between,
    so no signal meets the default action, which ends the run without a word.

    Exiting from the handler, not raising: an exception could land anywhere (a log write
    swallows it, and the blocking read it interrupted would then go on waiting).
    """

    def handler(signum: int, frame: FrameType | None) -> None:
        message = f"interrupted by {signal.Signals(signum).name} {when}"
        code = SIGNAL_EXIT.get(signal.Signals(signum), 128 + signum)
        if note is not None:
            note(code, message)
        os.write(2, f"bulk-updater: {message}\n".encode())
        os._exit(code)

    for signum in SIGNAL_EXIT:
        signal.signal(signum, handler)


def main() -> None:
    """`bulk-updater`: the handlers first, then the command and everything it imports."""
    exit_before_start("while starting")
    from .cli import main as command

    command()

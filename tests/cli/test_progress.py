"""Progress on a terminal: the live bar redraws itself (off a terminal, output is plain text:
every run through `tests.cli.conftest.cli` checks that)."""

from __future__ import annotations

import asyncio
import io
import os
import pty
import select
import subprocess
import time
from pathlib import Path

from bulk_updater.progress import Progress
from bulk_updater.sandbox import SandboxThread
from tests.cli.conftest import KEY, clean_env, command, job_input, running
from tests.conftest import VirtualTimeLoop, advance, make_leads


def test_live_progress_only_on_a_terminal(tmp_path: Path) -> None:
    """The counterpart of the plain-output checks: on a terminal the bar redraws itself."""
    leads = make_leads(40)
    source, _ = job_input(tmp_path, leads)
    master, slave = pty.openpty()
    with SandboxThread(leads, api_key=KEY) as sb:
        proc = subprocess.Popen(
            command(source, "--base-url", sb.url, "--rate", "40"),
            env=clean_env(SENDKIT_API_KEY=KEY),
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=slave,
            text=True,
        )
        os.close(slave)
        with running(proc):
            chunks = []
            deadline = time.monotonic() + 20
            while (left := deadline - time.monotonic()) > 0:
                if not select.select([master], [], [], left)[0]:
                    break
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            assert proc.wait(timeout=15) == 0
    os.close(master)
    assert b"\r" in b"".join(chunks)


async def test_off_a_terminal_a_line_a_minute_after_the_first_minute(
    virtual_time: VirtualTimeLoop,
) -> None:
    """A cron job of five minutes mails 16 progress lines, not 60."""
    shown: list[float] = []

    class Clocked(io.StringIO):
        def write(self, text: str) -> int:
            shown.append(virtual_time.time())
            return super().write(text)

    progress = Progress(Clocked(), total=10, live=False, interval=5.0, later=60.0)
    ticker = asyncio.create_task(progress.run())
    await advance(300.5)
    ticker.cancel()
    await asyncio.gather(ticker, return_exceptions=True)
    assert shown == [5.0 * n for n in range(1, 13)] + [120.0, 180.0, 240.0, 300.0]

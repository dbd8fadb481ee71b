"""`bulk-updater ui` taking a 1 GB file: how long the upload takes, and the server's memory.

The issue asks for files up to at least 1 GB, streamed to the server's private folder and never
held whole. The command runs as a child (`--no-browser`); this process is the browser: it goes
through the token for the cookie, then sends the file from disk in 1 MB chunks, as the page's
`XMLHttpRequest` does. The header has a column no rule knows (`Notes`), so nothing starts the
check by itself: the answer comes once the file is on disk and read through for its encoding
(what the page shows before its columns). The server's peak resident set (`VmHWM`, `HighWater`)
is compared with its resident set before the upload; the file in the private folder must have
every byte sent.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

import aiohttp

from harness import HighWater, progress, stop, track
from results import Context, Result, Section, Table, Target, verdict

SIZE: Final = 10**9
QUICK_SIZE: Final = 10**8
#: How much more than at rest the server may hold while a file streams through it.
GROWTH_MB: Final = 64.0
_CHUNK: Final = 1 << 20
_TITLE: Final = "The page's upload (`bulk-updater ui`), a 1 GB CSV"
_TARGETS: Final = (f"page upload: server memory grows < {GROWTH_MB:.0f} MB over its rest",)


def measure(ctx: Context) -> Result:
    size = QUICK_SIZE if ctx.quick else SIZE
    source = _big_csv(ctx.tmp / f"upload-{size}.csv", size)
    proc, address = _start(ctx.tmp)
    try:
        rest_mb = _rss_mb(proc.pid)
        high = HighWater(proc.pid)
        progress(f"page upload: sending {size / 1e9:.1f} GB")
        try:
            figures = asyncio.run(_upload(address, source, size))
        finally:
            peak_mb = high.stop()
        stored = sum(p.stat().st_size for p in ctx.tmp.glob("bulk-updater-ui-*/upload-*.csv"))
    finally:
        stop(proc)
    source.unlink()
    if stored != size:
        raise RuntimeError(f"the private folder holds {stored} bytes of the {size} sent")
    return _result(figures, size, rest_mb, peak_mb or 0.0)


def _big_csv(path: Path, size: int) -> Path:
    """A CSV of exactly `size` bytes: a header, then rows of the same length."""
    header = b"id,jobTitle,Notes\n"
    row = b"066091adcd648f9dab09032e,Head of Sales,call back in the spring\n"
    block = row * (_CHUNK // len(row))
    with open(path, "wb") as file:
        file.write(header)
        left = size - len(header)
        while left >= len(block):
            file.write(block)
            left -= len(block)
        rows, rest = divmod(left, len(row))
        file.write(row * rows + b"x" * max(rest - 1, 0) + (b"\n" if rest else b""))
    return path


def _start(tmp: Path) -> tuple[subprocess.Popen[str], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SENDKIT_", "BULK_UPDATER_"))}
    env.update(XDG_STATE_HOME=str(tmp / "upload-state"), TMPDIR=str(tmp), NO_PROXY="127.0.0.1")
    command = [sys.executable, "-m", "bulk_updater", "ui", "--no-browser"]
    proc = track(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True))
    assert proc.stdout is not None
    line = proc.stdout.readline()
    found = re.search(r"http://\S+", line)
    if found is None:
        stop(proc)
        raise RuntimeError(f"bulk-updater ui did not start: {line!r}")
    return proc, found.group(0)


async def _upload(address: str, source: Path, size: int) -> dict[str, float]:
    """Send `source` as the page does; seconds to its last byte and to the page's answer."""
    sent: list[float] = []

    async def chunks() -> AsyncIterator[bytes]:
        file = await asyncio.to_thread(open, source, "rb")
        try:
            while chunk := await asyncio.to_thread(file.read, _CHUNK):
                yield chunk
        finally:
            file.close()
        sent.append(time.perf_counter())

    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(address) as opened:
            opened.raise_for_status()
        origin = str(opened.url.origin())
        started = time.perf_counter()
        headers = {"Sec-Fetch-Site": "same-origin", "Content-Length": str(size)}
        url = f"{origin}/api/upload?name=big.csv"
        timeout = aiohttp.ClientTimeout(total=None)
        async with http.post(url, data=chunks(), headers=headers, timeout=timeout) as answer:
            state = await answer.json()
            answered = time.perf_counter()
    if answer.status != 200 or state.get("file") is None:
        raise RuntimeError(f"the upload was refused: {state}")
    return {"upload_s": sent[0] - started, "answer_s": answered - started}


def _rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"VmRSS:\s+(\d+)", status)
    return int(found.group(1)) / 1024 if found else 0.0


def _result(figures: dict[str, float], size: int, rest_mb: float, peak_mb: float) -> Result:
    growth = peak_mb - rest_mb
    ok = growth < GROWTH_MB
    rate = size / 1e6 / figures["upload_s"]
    table = Table.of(
        "file MB|upload s|MB/s|answered s (read through)|server RSS at rest MB|server peak MB",
        [(f"{size / 1e6:,.0f}", f"{figures['upload_s']:.1f}", f"{rate:.0f}",
          f"{figures['answer_s']:.1f}", f"{rest_mb:.0f}", f"{peak_mb:.0f}")],
    )  # fmt: skip
    measured = f"+{growth:.0f} MB (peak {peak_mb:.0f} MB)"
    return Result(
        sections=[Section(_TITLE, [table])],
        targets=[Target(_TARGETS[0], measured, ok)],
        readme=[
            (
                f"the page's upload of a {size / 1e9:g} GB CSV",
                f"{figures['upload_s']:.1f} s ({rate:.0f} MB/s), answered in "
                f"{figures['answer_s']:.1f} s; server {measured}",
                f"memory + < {GROWTH_MB:.0f} MB",
                verdict(ok),
            )
        ],
        data={**figures, "rest_mb": rest_mb, "peak_mb": peak_mb},
    )

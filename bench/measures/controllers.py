"""Which controller: CUBIC (as chosen), as it was before issue 25, botocore's plain CUBIC, and
AIMD, each steering the real engine against the sandbox's own sliding window (`RateLimit`: 40/s
+ 5 burst, `Retry-After` when the oldest request leaves it, 40 ms answers), in virtual time.

Virtual time (the test suite's `VirtualTimeLoop` and `SimulatedApi`, from `tests/conftest.py`)
makes the comparison exact and cheap: the same job, the same answers, only the controller
differs, and an 8,000-row job takes a second. `hidden_limit` measures the chosen one against
the sandbox over real sockets.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any, Final

from harness import ROOT, progress
from results import Context, Result, Section, Table

CASES: Final = (("400", 400.0), ("auto", "auto"))


def _job(growth: Any, rate: float | str, rows: int) -> tuple[float, int]:
    from bulk_updater import BulkUpdater
    from bulk_updater.limits import AdaptiveLimiter
    from tests.conftest import SimulatedApi, VirtualTimeLoop

    async def job() -> tuple[float, int]:
        api = SimulatedApi(40, 5, latency=0.04)
        ceiling = None if rate == "auto" else float(rate)
        limiter = AdaptiveLimiter(ceiling, concurrency=32, growth=growth)
        async with BulkUpdater(sender=api, limiter=limiter, concurrency=32) as updater:
            summary = await updater.run([{"id": f"lead{n}", "city": "Oslo"} for n in range(rows)])
        return asyncio.get_running_loop().time(), summary.rate_limited

    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(job())
    finally:
        loop.close()


def measure(ctx: Context) -> Result:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # for tests.conftest
    from bulk_updater.limits.adaptive import Aimd, Cubic

    growths = {
        "CUBIC, beta 0.9, patience 4 (chosen)": Cubic(),
        "CUBIC, beta 0.7, patience 8 (before issue 25)": Cubic(beta=0.7, patience=8),
        "CUBIC as botocore (beta 0.7, patience 1)": Cubic(beta=0.7, patience=1),
        "AIMD +1/s per s": Aimd(step=1),
        "AIMD +4/s per s": Aimd(step=4),
    }
    sizes = (500, 2_000) if ctx.quick else (2_000, 8_000)
    rows_out, data = [], {}
    for name, growth in growths.items():
        progress(f"controllers: {name}")
        cells: list[str] = [name]
        for label, rate in CASES:
            for rows in sizes:
                seconds, limited = _job(growth, rate, rows)
                cells.append(f"{seconds / (rows / 40):.2f}x, {limited}")
                data[f"{name}, --rate {label}, {rows}"] = {"ratio": seconds / (rows / 40)}
                data[f"{name}, --rate {label}, {rows}"] |= {"rate_limited": limited}
        rows_out.append(tuple(cells))
    header = "controller|" + "|".join(
        f"--rate {label}, {rows:,} rows" for label, _ in CASES for rows in sizes
    )
    table = Table.of(header, rows_out)
    note = "each cell: duration / ideal (rows / 40), 429s; virtual time, one run each"
    title = "Controllers against the sandbox's window (40/s + 5, 40 ms), --concurrency 32"
    return Result([Section(title, [table, note])], data=data)

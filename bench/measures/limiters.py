"""The pacing alternatives, in process and without HTTP: aiolimiter's `AsyncLimiter` two ways and
our `Pacer`, each under 64 tasks acquiring in a loop. The aiolimiter rows need the dev extra.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from harness import CONCURRENCY, loop_factory, progress
from measures.pacing import PACE_RATE
from results import Context, Result, Section, Table

Acquire = Callable[[], Awaitable[Any]]


def measure(ctx: Context) -> Result:
    progress("pacing alternatives, in process")
    limiters = _limiters(PACE_RATE)
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        rows = [runner.run(_one(name, make, ctx.limiter_s)) for name, make in limiters.items()]
    loop_name = "uvloop" if ctx.host["versions"]["uvloop"] else "asyncio"
    table = Table.of(
        "limiter|acquired|first 100 ms|max in any 1 s|achieved /s|after 1 s /s",
        [
            (
                r["limiter"],
                r["acquired"],
                r["first_100ms"],
                r["max_per_1s"],
                f"{r['achieved_rate']:.2f}",
                f"{r['steady_rate']:.2f}",
            )
            for r in rows
        ],
    )
    title = (
        f"Pacing alternatives in process ({loop_name} loop, {CONCURRENCY} tasks acquiring in a "
        f"loop for {ctx.limiter_s:.1f} s, rate {PACE_RATE}; no HTTP)"
    )
    return Result(sections=[Section(title, [table])], data={"limiters": rows})


def _limiters(rate: int) -> dict[str, Callable[[], Acquire]]:
    from bulk_updater.limits import Pacer

    limiters: dict[str, Callable[[], Acquire]] = {}
    try:
        from aiolimiter import AsyncLimiter
    except ImportError:
        progress("aiolimiter is not installed (pip install -e '.[dev]'): its rows are skipped")
    else:
        limiters[f"aiolimiter AsyncLimiter({rate}, 1)"] = lambda: AsyncLimiter(rate, 1).acquire
        limiters[f"aiolimiter AsyncLimiter(1, 1/{rate})"] = lambda: (
            AsyncLimiter(1, 1 / rate).acquire
        )
    limiters[f"bulk_updater Pacer({rate})"] = lambda: Pacer(rate).acquire
    return limiters


async def _one(name: str, make: Callable[[], Acquire], seconds: float) -> dict[str, Any]:
    stamps = await _acquisitions(make(), CONCURRENCY, seconds)  # made on the loop it runs on
    steady = [t for t in stamps if t >= 1.0]
    return {
        "limiter": name,
        "seconds": seconds,
        "acquired": len(stamps),
        "first_100ms": sum(1 for t in stamps if t < 0.1),
        "max_per_1s": max_in_window(stamps),
        "achieved_rate": len(stamps) / seconds,
        "steady_rate": len(steady) / (seconds - 1.0),
    }


async def _acquisitions(acquire: Acquire, tasks: int, seconds: float) -> list[float]:
    """Times (from the start) at which `tasks` tasks, each acquiring in a loop, got through."""
    loop = asyncio.get_running_loop()
    stamps: list[float] = []
    start = loop.time()

    async def one() -> None:
        while True:
            await acquire()
            stamps.append(loop.time() - start)

    workers = [asyncio.create_task(one()) for _ in range(tasks)]
    await asyncio.sleep(seconds)
    for task in workers:
        task.cancel()
    await asyncio.gather(*workers, return_exceptions=True)
    return sorted(t for t in stamps if t < seconds)


def max_in_window(stamps: list[float], width: float = 1.0) -> int:
    """Most events in any half-open window [t, t + width) of the sorted `stamps`."""
    best = j = 0
    for i, t in enumerate(stamps):
        while j < len(stamps) and stamps[j] < t + width:
            j += 1
        best = max(best, j - i)
    return best

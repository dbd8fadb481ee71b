"""The jobs before the current one: their report and rejects stay downloadable.

A new job (a new `Start`, `Send fixed rows`) takes the kept folder (`kept.py`), so the job before
it is set aside first: its report and rejects move to a folder of their own in the private folder
(`workspace.py`). They are served from there, by the job's number, until the server stops; the
browser never names a path.
"""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .running import Job


@dataclass(frozen=True)
class Earlier:
    """A job set aside: what the page shows of it, and its files (None: it wrote none)."""

    number: int  # from 1, in the order the jobs ran
    name: str
    state: str
    counts: dict[str, int]
    report: Path | None
    rejects: Path | None

    def file(self, what: str) -> Path | None:
        """The job's `report` or `rejects`, when it has one."""
        return {"report": self.report, "rejects": self.rejects}.get(what)

    def describe(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "name": self.name,
            "state": self.state,
            "counts": self.counts,
            "has_report": self.report is not None,
            "has_rejects": self.rejects is not None,
        }


async def set_aside(job: Job, number: int, folder: Path) -> Earlier:
    """Move `job`'s report and rejects to `folder` (a file can be big: in a thread)."""
    described = job.describe()
    moved: dict[str, Path | None] = {}
    for what, path, shown in (
        ("report", job.report, described["has_report"]),
        ("rejects", job.rejects, described["has_rejects"]),
    ):
        moved[what] = None
        # Moved whenever it is there: the new job writes its own in the kept folder, and a
        # file left there would be lost, shown or not.
        if path.exists():
            target = folder / path.name
            await asyncio.to_thread(shutil.move, path, target)
            moved[what] = target if shown else None
    return Earlier(
        number=number,
        name=job.record.name,
        state=job.state,
        counts=dict(job.counts),
        report=moved["report"],
        rejects=moved["rejects"],
    )

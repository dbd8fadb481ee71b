"""What the library's types accept and refuse, as a user's project sees them under `mypy
--strict`: rows are a `Source` or an iterable of records, never a path.

What the same calls do at run time is in `tests/engine/test_updater.py`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Each line marked `# type: ignore[...]` must be an error: `--strict` warns of an unused one.
USES = """
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from bulk_updater import BulkUpdater, LeadUpdate, Outcome, Source


async def records() -> AsyncIterator[dict[str, Any]]:
    yield {"id": "a", "city": "Oslo", "ref": 1}


async def main(updater: BulkUpdater) -> None:
    rows: list[dict[str, str] | LeadUpdate] = [{"id": "a"}, LeadUpdate(id="b", city="Oslo")]
    await updater.run(rows)
    await updater.run(Source("file.csv"))
    await updater.run(records())
    await updater.run((LeadUpdate(id=str(n), city="Oslo", ref=n) for n in range(3)))
    async with updater.stream(rows) as outcomes:
        async for outcome in outcomes:
            print(outcome.ref)
    first: Outcome = await anext(updater.stream(rows))
    print(first)
    await updater.run("file.csv")  # type: ignore[arg-type]
    await updater.run(Path("file.csv"))  # type: ignore[arg-type]
    row: dict[str, Any] = {"id": "a", "city": "Oslo"}
    await updater.run(row)  # type: ignore[arg-type]
    updater.stream("file.csv")  # type: ignore[arg-type]
"""


def test_a_path_as_rows_is_a_type_error_and_rows_are_not(tmp_path: Path) -> None:
    (tmp_path / "uses.py").write_text(USES, encoding="utf-8")
    (tmp_path / "mypy.ini").write_text("[mypy]\nstrict = True\n")
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "mypy.ini", "--no-incremental", "uses.py"],
        cwd=tmp_path, env={"MYPYPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert USES.count("# type: ignore[arg-type]") == 4

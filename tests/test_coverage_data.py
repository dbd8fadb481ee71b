"""`make test` combines only whole coverage data files: a child killed as it saved cannot break it.

Under `make test` every Python child writes a data file as it exits (an SQLite file written with
its journal off). One killed in the middle of that write left a file cut short, and `make test`
printed "database disk image is malformed ... Combined 0 files, 1 file errored" (issue 23).
"""

from __future__ import annotations

import select
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from coverage import CoverageData

from tests.conftest import unmeasured

ROOT = Path(__file__).resolve().parent.parent

#: A child that measures some of the package, then blocks in the middle of saving its data once
#: the file, as it is on disk, is damaged: there the test kills it. The one-page cache puts pages
#: in the file before the commit, as a kill during the commit's own writes does.
_KILLED_AS_IT_SAVES = """
import shutil, sqlite3, sys, tempfile
import bulk_updater.cli, bulk_updater.sandbox
from coverage.sqlitedb import SqliteDb

connect, executemany = SqliteDb._connect, SqliteDb.executemany_void

def small_cache(self):
    connect(self)
    self.con.execute("pragma cache_size=1")

def damaged(path):
    with tempfile.NamedTemporaryFile() as copy:
        shutil.copyfile(path, copy.name)
        try:
            found = sqlite3.connect(copy.name).execute("pragma integrity_check").fetchone()
        except sqlite3.DatabaseError:
            return True
    return found != ("ok",)

def held_mid_write(self, sql, data):
    executemany(self, sql, data)
    if damaged(self.filename):
        print("writing", flush=True)
        sys.stdin.read()

SqliteDb._connect, SqliteDb.executemany_void = small_cache, held_mid_write
"""


def _measured(tmp_path: Path) -> dict[str, str]:
    """The environment of a child measured as under `make test`, its data file in `tmp_path`."""
    return {
        **unmeasured(),
        "COVERAGE_PROCESS_START": str(ROOT / "pyproject.toml"),
        "COVERAGE_FILE": str(tmp_path / ".coverage"),
    }


def _kill_as_it_saves(tmp_path: Path) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", _KILLED_AS_IT_SAVES],
        env=_measured(tmp_path),
        cwd=tmp_path,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdout is not None
        assert select.select([child.stdout], [], [], 60)[0], "the child never began to save"
        assert child.stdout.readline() == "writing\n"
        child.send_signal(signal.SIGKILL)
    assert child.returncode == -signal.SIGKILL


def _integrity(path: Path) -> str:
    try:
        with sqlite3.connect(path) as db:
            return str(db.execute("PRAGMA integrity_check").fetchone()[0])
    except sqlite3.DatabaseError as exc:
        return str(exc)


def test_a_child_killed_as_it_saves_its_data_leaves_no_error_in_the_combined_data(
    tmp_path: Path,
) -> None:
    code = "import bulk_updater.cli"
    subprocess.run([sys.executable, "-c", code], env=_measured(tmp_path), cwd=tmp_path, check=True)
    [whole] = tmp_path.glob(".coverage.*")
    _kill_as_it_saves(tmp_path)
    [cut] = set(tmp_path.glob(".coverage.*")) - {whole}
    assert _integrity(cut) != "ok"  # the damage `make test` once met

    combined = subprocess.run(
        ["make", "--no-print-directory", "-f", ROOT / "Makefile", "coverage-combine",
         f"BIN={Path(sys.executable).parent}"],
        env={**unmeasured(), "COVERAGE_RCFILE": str(ROOT / "pyproject.toml")},
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip

    assert combined.returncode == 0, combined.stderr
    assert combined.stderr == ""
    assert combined.stdout == (
        "coverage: left out 1 unfinished data file(s), of children killed as they saved\n"
    )
    assert sorted(p.name for p in tmp_path.glob(".coverage*")) == [".coverage"]
    data = CoverageData(str(tmp_path / ".coverage"))
    data.read()
    assert str(ROOT / "bulk_updater" / "cli" / "__init__.py") in data.measured_files()

"""The one job that outlives the server: a job that did not finish, kept so it can be resumed.

Its folder (`$XDG_STATE_HOME/bulk-updater/ui-job/`, 0700) holds the job's own copy of its input,
its report and rejects, and `job.json`: the file's name, how it is read, what its columns mean and
where its rows were going (never the key). A finished job's folder is removed when the server
stops, as uploads are; an unfinished one is kept, so that restarting `bulk-updater ui` offers to
resume it (the report on disk says which rows are done). A new job replaces it.
"""

from __future__ import annotations

import csv
import fcntl
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

from ..errors import StateLockedError

RECORD: Final = "job.json"


@dataclass(frozen=True)
class JobRecord:
    """What a kept job needs to be resumed, as `job.json` holds it."""

    name: str
    input: str  # the input's file name inside the folder
    encoding: str | None
    sheet: str | None
    columns: dict[str, str]
    base_url: str
    workspace_id: str | None
    sandbox: bool
    header_row: int | None = None  # below title rows; a record from before it has none
    tags_separator: str = ";"  # a record from before it: the default


class KeptJob:
    """The folder of the current job, under the user's state folder; one server at a time holds
    it (`lock()`), so that a second one never replaces a job the first is running."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock: int | None = None

    def lock(self) -> None:
        """Hold the folder until `unlock()`; `StateLockedError` when another server has it."""
        self.root.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor = os.open(
            self.root.parent / f"{self.root.name}.lock", os.O_RDWR | os.O_CREAT, 0o600
        )
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            raise StateLockedError(
                f"another bulk-updater ui is running (its job is in {self.root}); use its page, "
                "or stop it first"
            ) from None
        self._lock = descriptor

    def unlock(self) -> None:
        if self._lock is not None:
            os.close(self._lock)  # closing the descriptor releases the lock
            self._lock = None

    def replace(self) -> Path:
        """An empty folder for a new job, in place of the one before."""
        self.discard()
        self.root.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.root.mkdir(mode=0o700)
        return self.root

    def save(self, record: JobRecord) -> None:
        """Write `job.json` whole or not at all."""
        fd, temporary = tempfile.mkstemp(dir=self.root, prefix=".job.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                json.dump(asdict(record), file, ensure_ascii=False)
            os.replace(temporary, self.root / RECORD)
        except BaseException:
            os.unlink(temporary)
            raise

    def load(self) -> JobRecord | None:
        """The kept job, or None when there is none (or its record cannot be read)."""
        try:
            data = json.loads((self.root / RECORD).read_text(encoding="utf-8"))
            record = JobRecord(**data)
        except (OSError, ValueError, TypeError):
            return None
        if Path(record.input).name != record.input or not (self.root / record.input).is_file():
            return None  # the record must name a file of the folder's own
        return record

    def discard(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def report_counts(report: Path) -> dict[str, int]:
    """Rows per status in a report file (CSV), for a kept job's progress; empty without one."""
    counts: dict[str, int] = {}
    try:
        with open(report, encoding="utf-8-sig", newline="") as file:
            for line in csv.DictReader(file):
                status = line.get("status") or "?"
                counts[status] = counts.get(status, 0) + 1
    except OSError:
        return {}
    return counts

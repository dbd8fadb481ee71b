"""What an earlier report says, for `--resume`: each row's last status, read back in flat memory."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from ..models import Status

_STATUSES: Final = tuple(Status)


class FinishedRows:
    """What an earlier run reported per row: one byte each (0: nothing, else the status)."""

    def __init__(self) -> None:
        self._status = bytearray()

    def mark(self, row: int, status: Status) -> None:
        if row >= len(self._status):
            self._status.extend(bytes(row + 1 - len(self._status)))
        self._status[row] = _STATUSES.index(status) + 1

    def status_of(self, row: int) -> Status | None:
        """The row's last status in the earlier run, if it reported one."""
        code = self._status[row] if 0 <= row < len(self._status) else 0
        return _STATUSES[code - 1] if code else None

    def __contains__(self, row: object) -> bool:
        """Whether the row was finished for good (so `--resume` does not send it again)."""
        status = self.status_of(row) if isinstance(row, int) else None
        return status is not None and status.is_final

    def __len__(self) -> int:
        return sum(1 for row in range(len(self._status)) if row in self)

    @property
    def horizon(self) -> int:
        """The highest row the earlier run reported on."""
        return len(self._status) - 1


def is_jsonl(path: Path) -> bool:
    return path.suffix.lower() in (".jsonl", ".ndjson")


def drop_partial_line(path: Path, block: int = 1 << 16) -> int:
    """Cut a last line left unfinished (power loss, full disk) and return the size left.

    Half a line could read as a finished row, or open a quote that swallows the lines after it;
    dropped, its row is simply sent again.
    """
    with open(path, "rb+") as file:
        end = file.seek(0, os.SEEK_END)
        position = end
        while position > 0:
            start = max(0, position - block)
            file.seek(start)
            newline = file.read(position - start).rfind(b"\n")
            if newline >= 0:
                keep = start + newline + 1
                break
            position = start
        else:
            keep = 0
        if keep < end:
            file.truncate(keep)
        return keep


def read_statuses(path: Path) -> Iterator[tuple[int, Status]]:
    """(row, status) for every line of a report, in file order (later lines win on --resume)."""
    with open(path, encoding="utf-8-sig", newline="", errors="replace") as file:
        if is_jsonl(path):
            for line in file:
                record = _json_record(line)
                if record is not None:
                    yield record
            return
        at = 2  # where the status is: found from the header (reports before `line` had it 3rd)
        for cells in csv.reader(file):
            if cells and cells[0] == "row" and "status" in cells:
                at = cells.index("status")
            elif len(cells) > at and cells[0].isdigit():
                try:
                    yield int(cells[0]), Status(cells[at])
                except ValueError:
                    continue


def _json_record(line: str) -> tuple[int, Status] | None:
    try:
        data: Any = json.loads(line)
        return int(data["row"]), Status(data["status"])
    except (ValueError, TypeError, KeyError):
        return None

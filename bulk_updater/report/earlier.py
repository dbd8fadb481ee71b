"""What an earlier report says, for `--resume`: each row's last status, read back in flat memory,
and, for an input with no fingerprint, which lead (id or email) each row was (`RowKeys`)."""

from __future__ import annotations

import csv
import hashlib
import json
import os
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from ..models import Status
from ..printable import escape

_STATUSES: Final = tuple(Status)
#: The final answers a row gets from the API (or its search): they pin a report to the account
#: that gave them. An aborted, invalid or skipped row was answered by none.
ANSWERED: Final = frozenset({Status.UPDATED, Status.NOT_FOUND, Status.REJECTED, Status.UNCHANGED})


class FinishedRows:
    """What an earlier run reported per row: one byte each (0: nothing, else the status)."""

    def __init__(self, keys: RowKeys | None = None) -> None:
        """`keys`: which lead each row was, to check the rows read again against (else trusted:
        the input's fingerprint says it is the same)."""
        self._status = bytearray()
        self.keys = keys
        self.answered = False  # a row got a final answer from the API (`ANSWERED`)

    def mark(self, row: int, status: Status, id: str = "", email: str = "") -> None:
        if row >= len(self._status):
            self._status.extend(bytes(row + 1 - len(self._status)))
        self._status[row] = _STATUSES.index(status) + 1
        self.answered = self.answered or status in ANSWERED
        if self.keys is not None:
            self.keys.mark(row, id, email)

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


class RowKeys:
    """The id and the email of each row of an earlier report, as 64-bit hashes in flat memory
    (16 bytes a row): enough to tell that a row read again is of another lead."""

    def __init__(self) -> None:
        self._ids = array("Q")
        self._emails = array("Q")

    def mark(self, row: int, id: str, email: str) -> None:
        if row >= len(self._ids):
            grow = [0] * (row + 1 - len(self._ids))
            self._ids.extend(grow)
            self._emails.extend(grow)
        self._ids[row], self._emails[row] = _hash(_plain(id)), _hash(_plain(email).lower())

    def differs(self, row: int, id: str | None, email: str | None) -> bool:
        """Whether the report holds another id (or email) for `row`; None: not compared."""
        if not 0 <= row < len(self._ids):
            return False
        other_id = id is not None and self._ids[row] != _hash(_plain(id))
        return other_id or (email is not None and self._emails[row] != _hash(_plain(email).lower()))


def _plain(text: str) -> str:
    """A cell's text as the report holds it, in either format: escaped, with no formula guard
    (`'`), trimmed."""
    return escape(text).removeprefix("'").strip()


def _hash(text: str) -> int:
    return int.from_bytes(
        hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    )


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


def answered(path: Path) -> bool:
    """Whether a report holds a row the API gave a final answer (`ANSWERED`); False: none, or
    no report."""
    try:
        return any(status in ANSWERED for _, status in read_statuses(path))
    except FileNotFoundError:
        return False


def read_statuses(path: Path) -> Iterator[tuple[int, Status]]:
    """(row, status) for every line of a report, in file order (later lines win on --resume)."""
    for row, status, _, _ in read_lines(path):
        yield row, status


def read_lines(path: Path) -> Iterator[tuple[int, Status, str, str]]:
    """(row, status, id, email) for every line of a report, in file order."""
    with open(path, encoding="utf-8-sig", newline="", errors="replace") as file:
        if is_jsonl(path):
            for line in file:
                record = _json_record(line)
                if record is not None:
                    yield record
            return
        # Where the status is: found from the header (reports before `line` had it 3rd).
        at, id_at, email_at = 2, 1, -1
        for cells in csv.reader(file):
            if cells and cells[0] == "row" and "status" in cells:
                at, id_at = cells.index("status"), cells.index("id") if "id" in cells else -1
                email_at = cells.index("email") if "email" in cells else -1
            elif len(cells) > at and cells[0].isdigit():
                try:
                    status = Status(cells[at])
                except ValueError:
                    continue
                yield int(cells[0]), status, _cell(cells, id_at), _cell(cells, email_at)


def _cell(cells: list[str], at: int) -> str:
    return cells[at] if 0 <= at < len(cells) else ""


def _json_record(line: str) -> tuple[int, Status, str, str] | None:
    try:
        data: Any = json.loads(line)
        row, status = int(data["row"]), Status(data["status"])
    except (ValueError, TypeError, KeyError):
        return None
    id, email = data.get("id"), data.get("email")
    return row, status, id if isinstance(id, str) else "", email if isinstance(email, str) else ""

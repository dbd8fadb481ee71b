"""Whether an input file changed while it was read: an exporter still writing it, or rewriting it
in place, while the job reads it.

Such a file is read up to wherever it happened to end, or half from one export and half from the
next. A stat of the file as it was opened, compared with one now and then (every 1000 records, at
its end, before its last line is sent if that has no line break, at the end of the job) tells:
its size, its modification time, and which file its name points to. A changed modification time
alone (`touch`, a copy keeping times) is confirmed by the content, hashed again, when its hash as
opened is known. A last line with no line break (`Engin` for `Engineer`) is sent only once every
other row is done and the file is still as it was opened.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from typing import Final, TypeVar

from ..errors import InputModifiedError
from .tables import TableRecord, Unreadable

T = TypeVar("T")
_LINE_BREAKS: Final = ("\n", "\r")
#: How many records are read between two looks at the file: a stat each, cheap.
EVERY: Final = 1000


class FileWatch:
    """The stat of an input file as it was opened, to compare with the file later."""

    def __init__(self, fd: int, path: str, name: str) -> None:
        self._path = path
        self._name = name
        self._opened = _stamp(os.fstat(fd))
        self.size = self._opened[2]  # what the file held as it was opened
        self._content: str | None = None  # its sha256 as opened, once the run hashed it
        self.open_end: int | None = None  # the line of a last record with no line break

    def vouch(self, digest: str) -> None:
        """`digest`, the sha256 of the file hashed since it was opened, is what it held then;
        `InputModifiedError` if it changed meanwhile."""
        self.check()
        self._content = digest

    def changed(self) -> bool:
        """Whether the file grew, shrank or was written since it was opened, or its name now
        points to another file (a new export moved in its place)."""
        try:
            now = _stamp(os.stat(self._path))
        except OSError:
            return True  # removed: what was read may be cut off, and nothing tells
        if now == self._opened:
            return False
        if now[:3] != self._opened[:3] or self._content is None:
            return True
        hashed = _sha256(self._path)
        if hashed is None or hashed[0] != self._content:
            return True
        self._opened = now  # touched only: the same bytes, not hashed again for this stamp
        return False

    def check(self, *, read: bool = False) -> None:
        """`InputModifiedError` if the file changed since it was opened; `read`: once every
        row was read (the rest of an export still written was never read)."""
        if self.changed():
            raise InputModifiedError(self._message(read))

    def _message(self, read: bool) -> str:
        when = "after it was read" if read else "while it was read"
        grown = self._grown()
        if grown == "whole":  # `--resume` takes the complete file
            rest = ": the rest of the export was never read" if read else ""
            return (
                f"{self._name} changed {when} (an exporter still writing it?){rest}; rerun once "
                "it is complete"
            )
        if grown == "cut":
            return (
                f"{self._name} changed {when} (an exporter still writing it?): its last line was "
                "cut off; once it is complete, run it again with a new --report (--resume "
                "refuses a file that ended mid-line)"
            )
        return (
            f"{self._name} changed {when} (rewritten in place, or another export moved there?); "
            "run the complete file again with a new --report (--resume refuses a report of "
            "another input)"
        )

    def _grown(self) -> str | None:
        """How the file grew since it was opened: `whole` rows only added after a line break
        (what `--resume` takes), `cut` added to a last line with none; None: not only added to."""
        try:
            now = os.stat(self._path)
        except OSError:
            return None
        hashed = _sha256(self._path, self.size) if now.st_size > self.size else None
        if hashed is None:
            return None
        digest, last = hashed
        if self._content is None:  # not hashed when opened: the same file, longer
            same = (now.st_dev, now.st_ino) == self._opened[:2]
        else:
            same = digest == self._content
        if not same:
            return None
        return "whole" if last in (b"\n", b"\r") else "cut"

    def watched(self, rows: Iterator[T]) -> Iterator[T]:
        """`rows`, with a look at the file every `EVERY` of them (a rewrite in place is seen
        within a batch) and at their end (the end of the file as it was opened?)."""
        for number, row in enumerate(rows, 1):
            if number % EVERY == 0:
                self.check()
            yield row
        self.check()

    def whole_records(self, records: Iterator[TableRecord]) -> Iterator[TableRecord]:
        """`records`, but `InputModifiedError` instead of a last one cut off in a file that
        changed; a last one with no line break in a file that did not (yet) is `open_end`."""
        for record in records:
            cells = record[1]
            text = cells.raw if isinstance(cells, Unreadable) else getattr(cells, "text", None)
            if isinstance(text, str) and self.unterminated(text, record[0]):
                self.check()
            yield record

    def unterminated(self, text: str, line: int) -> bool:
        """Whether `text`, a record as read from `line`, lacks its line break: the file's last,
        held back (`open_end`) until it is known whole."""
        if text.endswith(_LINE_BREAKS):
            return False
        self.open_end = line
        return True


def prefix_sha256(path: str, size: int) -> str | None:
    """sha256 of the first `size` bytes of the file at `path`, when they end at a line break
    (rows only added after them); None when they do not, or the file is shorter."""
    hashed = _sha256(path, size)
    return hashed[0] if hashed is not None and hashed[1] in (b"\n", b"\r") else None


def _sha256(path: str, size: int | None = None) -> tuple[str, bytes] | None:
    """sha256 of the file at `path` (its first `size` bytes) and its last byte (`\n` if none);
    None when it cannot be read, or is shorter."""
    digest, left, last = hashlib.sha256(), size, b"\n"
    try:
        with open(path, "rb") as file:
            while (left is None or left > 0) and (chunk := file.read(_chunk(left))):
                digest.update(chunk)
                last = chunk[-1:]
                left = None if left is None else left - len(chunk)
    except OSError:
        return None
    return (digest.hexdigest(), last) if not left else None


def _chunk(left: int | None) -> int:
    return 1 << 20 if left is None else min(left, 1 << 20)


def _stamp(found: os.stat_result) -> tuple[int, int, int, int]:
    return found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns

"""Whether an input file changed while it was read: an exporter still writing it, or rewriting it
in place, while the job reads it.

Such a file is read up to wherever it happened to end, or half from one export and half from the
next. A stat as the file is opened and another at its end tell (its size, its modification time,
and which file its name points to); that is all it costs. A last line with no line break in a file
that changed is certainly cut off (`Engin` for `Engineer`): it is never sent.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from typing import Final

from ..errors import InputModifiedError
from .tables import TableRecord, Unreadable

_LINE_BREAKS: Final = ("\n", "\r")


class FileWatch:
    """The stat of an input file as it was opened, to compare with the file at its end."""

    def __init__(self, fd: int, path: str, name: str) -> None:
        self._fd = fd
        self._path = path
        self._name = name
        self._opened = _stamp(os.fstat(fd))
        self.size = self._opened[2]  # what the file held as it was opened

    def changed(self) -> bool:
        """Whether the file grew, shrank or was written since it was opened, or its name now
        points to another file (a new export moved in its place)."""
        try:
            now = _stamp(os.fstat(self._fd))
            named = os.stat(self._path)
        except OSError:
            return True  # removed, or the descriptor closed: what was read is all there is
        return now != self._opened or (named.st_dev, named.st_ino) != self._opened[:2]

    def check(self) -> None:
        """`InputModifiedError` if the file changed since it was opened."""
        if self.changed():
            raise InputModifiedError(self.message)

    @property
    def message(self) -> str:
        return (
            f"{self._name} changed while it was read (an exporter still writing it?); rerun once "
            "it is complete"
        )

    def cut_off(self, text: str | None) -> bool:
        """Whether `text`, a record as read, lacks its line break in a file that changed (so it
        is the last one, cut off where the writer was)."""
        return text is not None and not text.endswith(_LINE_BREAKS) and self.changed()

    def whole_records(self, records: Iterator[TableRecord]) -> Iterator[TableRecord]:
        """`records`, but `InputModifiedError` instead of a cut-off last one."""
        for record in records:
            cells = record[1]
            text = cells.raw if isinstance(cells, Unreadable) else getattr(cells, "text", None)
            if isinstance(text, str) and self.cut_off(text):
                raise InputModifiedError(self.message)
            yield record


def prefix_sha256(path: str, size: int) -> str | None:
    """sha256 of the first `size` bytes of the file at `path`, when they end at a line break
    (rows only added after them); None when they do not, or the file is shorter."""
    digest, left, last = hashlib.sha256(), size, b"\n"
    try:
        with open(path, "rb") as file:
            while left > 0 and (chunk := file.read(min(left, 1 << 20))):
                digest.update(chunk)
                left, last = left - len(chunk), chunk[-1:]
    except OSError:
        return None
    return digest.hexdigest() if not left and last in (b"\n", b"\r") else None


def _stamp(found: os.stat_result) -> tuple[int, int, int, int]:
    return found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns

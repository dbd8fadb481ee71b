"""Files put in input order at the end of a run, one line per row, in flat memory.

`LineIndex` remembers where each row's last line is (16 bytes per row); `rewrite` copies those
lines in row order into a new file and puts it in the old one's place in one step.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
from array import array
from pathlib import Path


class LineIndex:
    """Row number -> (offset, length) of its latest line in a file."""

    def __init__(self) -> None:
        self.offsets = array("q")
        self.lengths = array("q")
        self.ordered = True  # every row came after the ones before it
        self._last = -1

    def add(self, row: int, offset: int, length: int) -> None:
        if row >= len(self.offsets):
            grow = row + 1 - len(self.offsets)
            self.offsets.extend(array("q", [-1]) * grow)
            self.lengths.extend(array("q", [0]) * grow)
        if row <= self._last:
            self.ordered = False
        self._last = max(self._last, row)
        self.offsets[row] = offset
        self.lengths[row] = length


def rewrite(path: Path, header: bytes, index: LineIndex) -> None:
    """Replace `path` by `header` and each row's line, in row order."""
    # A name of its own: a leftover of an earlier failed rewrite is never in the way.
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".sorting")
    tmp = Path(name)
    try:
        os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))  # the file's own permissions
        with open(path, "rb") as src, open(handle, "wb", buffering=1 << 16) as dst:
            dst.write(header)
            for offset, length in zip(index.offsets, index.lengths, strict=True):
                if offset >= 0:
                    src.seek(offset)
                    dst.write(src.read(length))
            dst.flush()
            os.fsync(dst.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _row_of(line: bytes, jsonl: bool) -> int | None:
    if jsonl:
        match = re.match(rb'\{"row": ?(\d+)', line)
        return int(match.group(1)) if match else None
    head = line.split(b",", 1)[0]
    return int(head) if head.isdigit() else None


def sort_report(path: Path, *, jsonl: bool) -> None:
    """Rewrite a report in row order keeping each row's last line."""
    index = LineIndex()
    header = b""
    with open(path, "rb") as src:
        position = 0
        for line in src:
            row = _row_of(line, jsonl)
            if row is None:
                if position == 0 and not jsonl:
                    header = line
            else:
                index.add(row, position, len(line))
            position += len(line)
    rewrite(path, header, index)

"""The final sort: the report rewritten in input order, one line per row, in flat memory."""

from __future__ import annotations

import os
import re
import stat
import tempfile
from array import array
from pathlib import Path


def _row_of(line: bytes, jsonl: bool) -> int | None:
    if jsonl:
        match = re.match(rb'\{"row": ?(\d+)', line)
        return int(match.group(1)) if match else None
    head = line.split(b",", 1)[0]
    return int(head) if head.isdigit() else None


def sort_report(path: Path, *, jsonl: bool) -> None:
    """Rewrite a report in row order keeping each row's last line; memory is 16 bytes per row."""
    offsets = array("q")
    lengths = array("q")
    header = b""
    with open(path, "rb") as src:
        position = 0
        for line in src:
            row = _row_of(line, jsonl)
            if row is None:
                if position == 0 and not jsonl:
                    header = line
            else:
                if row >= len(offsets):
                    grow = row + 1 - len(offsets)
                    offsets.extend(array("q", [-1]) * grow)
                    lengths.extend(array("q", [0]) * grow)
                offsets[row] = position
                lengths[row] = len(line)
            position += len(line)
        # A name of its own: a leftover of an earlier failed sort is never in the way.
        handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".sorting")
        tmp = Path(name)
        try:
            os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))  # the report's own permissions
            with open(handle, "wb", buffering=1 << 16) as dst:
                dst.write(header)
                for offset, length in zip(offsets, lengths, strict=True):
                    if offset >= 0:
                        src.seek(offset)
                        dst.write(src.read(length))
                dst.flush()
                os.fsync(dst.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

"""JSON lines as rows: each line parsed against the `KeyPlan`, numbered, blank lines skipped.

A line too large to read is one `invalid` row. A line read in a legacy encoding from a pipe is
checked for UTF-8 read wrongly (`mojibake.py`), as a file is checked ahead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Final

from .columns import Invalid, Item, Row
from .mojibake import unmangled
from .record_keys import KeyPlan
from .records import TOO_LARGE, TextRecord
from .watch import FileWatch

_ESCAPED: Final = re.compile("[\udc80-\udcff]")  # the bytes `surrogateescape` could not decode


def _surrogates(text: str) -> bool:
    return not text.isascii() and _ESCAPED.search(text) is not None


def parse_json_line(line: str, keys: KeyPlan) -> Item:
    if _surrogates(line):
        return Invalid("", "the line is not valid UTF-8 text")
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        return Invalid("", f"the line is not valid JSON ({exc.msg} at column {exc.colno})")
    except RecursionError:
        return Invalid("", "the line's JSON is nested too deeply")
    if not isinstance(record, dict):
        return Invalid("", 'the line must be a JSON object like {"id": "...", ...}')
    return keys.parse(record)


def jsonl_rows(
    records: Iterator[TextRecord], keys: KeyPlan, watch: FileWatch | None, legacy: str | None
) -> Iterator[Row]:
    """The rows of a file's JSON lines. `watch`: the file's, to refuse a last line cut off;
    `legacy`: the legacy encoding of a pipe's lines, to check each."""
    number = 0
    for line_number, line in records:
        if line is None:
            number += 1
            yield Row(number, Invalid("", TOO_LARGE), line_number)
            continue
        if not line.strip():
            continue
        if watch is not None and watch.unterminated(line, line_number):
            watch.check()  # cut off where the writer was, if the file changed
        number += 1
        item = parse_json_line(line, keys)
        if legacy is not None:
            item = unmangled(item, line, legacy)
        yield Row(number, item, line_number, line)

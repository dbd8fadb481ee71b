"""A tags cell as a list of tags: a JSON array, a quoted list, or tags split by a separator (and
by line breaks); and a cell that holds another likely separator refused, in plain words."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Final

from .values import label, shows_nothing

#: Characters people separate tags with; one of them in a cell split by another is a list.
LIKELY_SEPARATORS: Final = (",", ";", "|")
#: What to do about a tags cell that holds another separator, in the command line's words.
SEPARATOR_ADVICE: Final = "pass --tags-separator '{}'"
#: Tags quoted, separated by one of those or by spaces or line breaks: "Customer","VIP".
_QUOTED_LIST: Final = re.compile(r'\s*"[^"\r\n]*"(?:(?:\s*[,;|]\s*|\s+)"[^"\r\n]*")*\s*')
_QUOTED: Final = re.compile(r'"([^"]*)"')
#: A line break in a cell (Alt+Enter in Excel) always ends a tag: no tag holds one.
_LINE_BREAK: Final = re.compile(r"\r\n?|\n")


def other_separator(cell: str, separator: str) -> str | None:
    """The likely separator, other than `separator`, that a plain tags cell holds; or None."""
    for other in LIKELY_SEPARATORS:
        if other != separator and other in cell:
            if cell.lstrip().startswith("[") or _QUOTED_LIST.fullmatch(cell):
                return None  # a JSON array or a quoted list says where each tag ends
            return other
    return None


def separator_problem(cell: str, other: str, separator: str) -> str:
    shown = "TAB" if separator == "\t" else separator
    return (
        f"column tags: {label(cell)!r} holds `{other}` but tags are separated by `{shown}`: "
        f"if it is a list, {SEPARATOR_ADVICE.format(other)}; to keep `{other}` in a tag, write "
        'the list as JSON (["a, b", "c"])'
    )


def parse_tags(cell: str, separator: str = ";") -> list[str] | str:
    """The tag list of a cell (a JSON array, a quoted list, or tags split by `separator` and by
    line breaks), or a problem message."""
    if '"' in cell and _QUOTED_LIST.fullmatch(cell):
        tags = _shown(_QUOTED.findall(cell))
        return tags if tags else f"column tags: no tag in {cell!r}"
    if "[" in cell and cell.lstrip().startswith("["):
        try:
            tags = json.loads(cell)
        except json.JSONDecodeError as exc:
            return f"column tags: not a valid JSON array ({exc.msg})"
        except RecursionError:
            return "column tags: the JSON array is nested too deeply"
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            return "column tags: the JSON array must hold only strings"
        shown = [t for t in tags if t and not shows_nothing(t)]  # as a list split by `;` drops
        return shown if shown or not tags else f"column tags: no tag in {cell!r}"
    other = other_separator(cell, separator)
    if other is not None:
        return separator_problem(cell, other, separator)
    if "\n" in cell or "\r" in cell:
        parts = [t for line in _LINE_BREAK.split(cell) for t in line.split(separator)]
    else:  # one line, as most are: no search for line breaks
        parts = cell.split(separator)
    tags = _shown(parts)
    return tags if tags else f"column tags: no tag in {cell!r}"


def _shown(parts: Iterable[str]) -> list[str]:
    """The tags among `parts`, trimmed: an empty one, or one that shows nothing, is none."""
    return [tag for part in parts if (tag := part.strip()) and not shows_nothing(tag)]

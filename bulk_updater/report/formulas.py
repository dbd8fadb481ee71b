"""The cells of a CSV report: text a spreadsheet shows as text, never runs as a formula."""

from __future__ import annotations

import re
from typing import Final

from ..printable import escape

_FORMULA_START: Final = ("=", "+", "-", "@")  # tab and CR are escaped before this check
_PLAIN_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,128}")
#: RFC 5322's `atext` (no parentheses, `"`, spaces, `:` or `@`), less `=`, `|` and `'`: a
#: formula's, a DDE link's and a quoted name's marks, which only matter in an email that
#: starts like a formula.
_ATEXT: Final = r"[A-Za-z0-9!#$%&*+/?^_`{}~-]"
_DOT_ATOM: Final = rf"{_ATEXT}+(?:\.{_ATEXT}+)*"
_PLAIN_EMAIL: Final = re.compile(rf"{_DOT_ATOM}@{_DOT_ATOM}")


def cell(text: str | None) -> str:
    """A text cell that a spreadsheet will show as text, never run as a formula."""
    if not text:
        return ""
    text = escape(text)  # characters that act shown as escapes: one physical line per record
    return "'" + text if text.startswith(_FORMULA_START) else text


def id_cell(text: str) -> str:
    """An id as read when it is a plain token (`-abc123` stays), else neutralised as text."""
    return text if _PLAIN_ID.fullmatch(text) else cell(text)


def email_cell(text: str | None) -> str:
    """An email as read when it is a plain address, both its parts RFC 5322 dot-atoms
    (`+tag@ex.com` stays), else neutralised as text (`+SUM(A1:A9)&@A1` cannot run).

    Which emails are valid input is not decided here: `straße@x.com` is written as any text is.
    """
    if text and _PLAIN_EMAIL.fullmatch(text):
        return text
    return cell(text)

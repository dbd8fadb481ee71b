"""The cells of a CSV report: text a spreadsheet shows as text, never runs as a formula."""

from __future__ import annotations

import re
from typing import Final

_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
_FORMULA_START: Final = ("=", "+", "-", "@")  # tab and CR are escaped before this check
_PLAIN_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,128}")
_PLAIN_EMAIL: Final = re.compile(r"[^\s@=\x00-\x1f\x7f\"',;]+@[^\s@\x00-\x1f\x7f\"',;]+")


def one_line(text: str) -> str:
    """Control characters shown as escapes, so every report record is one physical line."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def cell(text: str | None) -> str:
    """A text cell that a spreadsheet will show as text, never run as a formula."""
    if not text:
        return ""
    text = one_line(text)
    return "'" + text if text.startswith(_FORMULA_START) else text


def id_cell(text: str) -> str:
    """An id as read when it is a plain token (`-abc123` stays), else neutralised as text."""
    return text if _PLAIN_ID.fullmatch(text) else cell(text)


def email_cell(text: str | None) -> str:
    """An email as read when it is a plain address (`+tag@ex.com` stays), else as text."""
    if text and _PLAIN_EMAIL.fullmatch(text):
        return text
    return cell(text)

"""Text as it may reach a terminal, a log or a report: no character in it acts instead of showing.

Those that act: the C0 and C1 controls and DEL (ESC, and U+009B, which many terminals read as
ESC `[`, start escape sequences), the line and paragraph separators (Python's `splitlines`
breaks a line there), and the bidirectional marks, overrides and isolates, which show what
follows them reordered (U+202E shows `ann@x.com` as `moc.x@nna`). Server text and input text
pass through here before they are shown.
"""

from __future__ import annotations

import re
from typing import Final

UNPRINTABLE: Final = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def escape(text: str, keep: str = "") -> str:
    """`text` with each character that acts shown as its escape (`\\x9b`, `\\u202e`), but those
    in `keep` (a terminal's `\\n` between lines)."""
    return UNPRINTABLE.sub(lambda m: m.group() if m.group() in keep else _escaped(m.group()), text)


def escape_json(line: str) -> str:
    """A JSON text with each character that acts as its JSON escape (`\\u009b`): a parser reads
    the same values, a terminal showing the file shows them all."""
    return UNPRINTABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", line)


def _escaped(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"

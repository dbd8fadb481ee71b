"""Text as it may reach a terminal, a log or a report: no character in it acts instead of showing.

Those that act: the C0 and C1 controls and DEL (ESC, and U+009B, which many terminals read as
ESC `[`, start escape sequences), the line and paragraph separators (Python's `splitlines`
breaks a line there), and every format character (Unicode category Cf). Among those are the
bidirectional marks, overrides and isolates, which show what follows them reordered (U+202E
shows `ann@x.com` as `moc.x@nna`), and the invisible ones: a zero-width space, joiner or
non-joiner, a soft hyphen, a word joiner, a byte order mark, and the tag characters (U+E0000 to
U+E007F), which make an address with one inside look like `ann@x.com`. Server text and input
text pass through here before they are shown.
"""

from __future__ import annotations

import re
from typing import Final

#: C0, DEL and C1; U+2028 and U+2029; category Cf as of Unicode 15 (with U+2065 and the tag
#: block's unassigned code points, invisible should they be assigned).
UNPRINTABLE: Final = re.compile(
    "[\x00-\x1f\x7f-\x9f\xad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e"
    "\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd"
    "\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e007f]"
)


def escape(text: str, keep: str = "") -> str:
    """`text` with each character that acts shown as its escape (`\\x9b`, `\\u202e`,
    `\\U000e0041`), but those in `keep` (a terminal's `\\n` between lines)."""
    return UNPRINTABLE.sub(lambda m: m.group() if m.group() in keep else _escaped(m.group()), text)


def escape_json(line: str) -> str:
    """A JSON text with each character that acts as its JSON escape (`\\u009b`, a surrogate pair
    past U+FFFF): a parser reads the same values, a terminal showing the file shows them all."""
    return UNPRINTABLE.sub(lambda m: _json_escaped(ord(m.group())), line)


def _escaped(char: str) -> str:
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _json_escaped(code: int) -> str:
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    high, low = divmod(code - 0x10000, 0x400)
    return f"\\u{0xD800 + high:04x}\\u{0xDC00 + low:04x}"

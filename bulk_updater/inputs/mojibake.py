"""Whether text read in a legacy encoding (`--encoding cp1252`) is UTF-8 read wrongly.

Each run of non-ASCII bytes votes for the reading that makes sense. UTF-8 text read as cp1252
turns each letter into two or three (`Müller` as `MÃ¼ller`): its UTF-8 reading is letters people
write. Legacy text is only by chance valid UTF-8, and then its UTF-8 reading is a rarity: cp1252
`Groß“` reads as NKo, EUC-KR `홍` as Latin `ȫ`. A multi-byte legacy reading of Hangul, kana or
Han standing apart from Latin letters (a Korean name in its own cell) wins over Latin letters
too: a UTF-8 `é` glued to no letter is the odd one. The file (or the row) is UTF-8 when more
runs vote for it than against it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Final

from .items import ByEmail, Invalid, Item

_RUN: Final = re.compile(rb"[\x80-\xff]+")
#: What ends a word around a run, for a message to show.
_BREAK: Final = frozenset(b' \t\r\n,;|"')
_WORD_SIDE: Final = 20
#: Code points that text is written with, below U+0800 (two UTF-8 bytes): Latin-1's letters and
#: signs and Latin Extended-A; of Latin Extended-B, `ƒ`, Vietnamese, pinyin and Romanian letters;
#: spacing accents (cp1252's circumflex and tilde); combining accents (macOS writes `ü` as `u`
#: and U+0308); Greek, Cyrillic, Armenian, Hebrew, Arabic. Not C1 controls, IPA, Syriac, Thaana
#: or NKo.
_WRITTEN: Final = (
    (0x00A0, 0x017F),
    (0x0192, 0x0192),
    (0x01A0, 0x01B0),
    (0x01CD, 0x01DC),
    (0x0218, 0x021B),
    (0x02C6, 0x02DD),
    (0x0300, 0x036F),
    (0x0370, 0x06FF),
)
#: Hangul, kana, Han and their punctuation: what a multi-byte legacy encoding's text holds.
_CJK: Final = ((0x1100, 0x11FF), (0x3000, 0x9FFF), (0xAC00, 0xD7A3), (0xF900, 0xFAFF),
               (0xFF00, 0xFFEF))  # fmt: skip
#: Enough runs to tell: a file is not read twice over for its votes.
ENOUGH: Final = 1000


def _written(char: str) -> bool:
    point = ord(char)
    if point >= 0x800:  # three or four UTF-8 bytes: scripts, punctuation, symbols, emoji
        return not 0xE000 <= point <= 0xF8FF  # not a private-use one
    return any(low <= point <= high for low, high in _WRITTEN)


def _cjk(text: str) -> bool:
    return all(any(low <= ord(c) <= high for low, high in _CJK) for c in text)


def _letter_at(data: bytes, at: int) -> bool:
    return 0 <= at < len(data) and chr(data[at]).isascii() and chr(data[at]).isalpha()


def _vote(data: bytes, start: int, end: int, codec: str) -> bool | None:
    """How the run `data[start:end]` reads: True for UTF-8, False for `codec`, None when it is
    no UTF-8 alone (cut at a chunk's end)."""
    run = data[start:end]
    try:
        utf8 = run.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not all(_written(char) for char in utf8):
        return False
    legacy = run.decode(codec, "replace")
    if len(legacy) < len(run) and _cjk(legacy):  # a multi-byte encoding's Hangul, kana or Han
        return _letter_at(data, start - 1) or _letter_at(data, end)
    return True


def word(data: bytes, start: int, end: int) -> bytes:
    """The word around the run `data[start:end]`, up to `_WORD_SIDE` bytes each side."""
    left = start
    while left > max(0, start - _WORD_SIDE) and data[left - 1] not in _BREAK:
        left -= 1
    right = end
    while right < min(len(data), end + _WORD_SIDE) and data[right] not in _BREAK:
        right += 1
    return data[left:right]


class Votes:
    """The runs of non-ASCII bytes seen so far, each for UTF-8 or for the legacy `codec`."""

    def __init__(self, codec: str) -> None:
        self.codec = codec
        self.utf8 = 0
        self.legacy = 0

    @property
    def done(self) -> bool:
        return self.utf8 + self.legacy >= ENOUGH

    @property
    def utf8_wins(self) -> bool:
        return self.utf8 > self.legacy

    def feed(self, data: bytes) -> tuple[int, int] | None:
        """Count the runs of `data`; the first that voted UTF-8 (start, end), if one did."""
        first = None
        for found in _RUN.finditer(data):
            if self.done:
                break
            vote = _vote(data, found.start(), found.end(), self.codec)
            if vote is None:
                continue
            if vote:
                self.utf8 += 1
                first = first or found.span()
            else:
                self.legacy += 1
        return first


def garbled(text: str, codec: str) -> tuple[str, str] | None:
    """For text read as `codec` (a row of standard input): a word of it and that word's UTF-8
    reading, when the text is UTF-8 read wrongly; None when it reads right."""
    if text.isascii():
        return None
    data = text.encode(codec, "replace")
    votes = Votes(codec)
    first = votes.feed(data)
    if first is None or not votes.utf8_wins:
        return None
    shown = word(data, *first)
    return shown.decode(codec, "replace"), shown.decode("utf-8", "replace")


def unmangled(item: Item, text: str, encoding: str) -> Item:
    """`item`, or `Invalid` naming `encoding` when its record's `text`, read in that legacy
    encoding from a pipe (which cannot be checked ahead), is UTF-8 read wrongly: never sent so."""
    if isinstance(item, Invalid):
        return item
    found = garbled(text, encoding)
    if found is None:
        return item
    seen, meant = found
    rid = "" if isinstance(item, ByEmail) else item.id
    return Invalid(
        rid,
        f"the row is UTF-8 text, not {encoding} (it holds `{meant}`, which {encoding} reads as "
        f"`{seen}`); drop --encoding {encoding}",
        item.email,
    )


def checking(
    convert: Callable[[Sequence[str]], Item], encoding: str
) -> Callable[[Sequence[str]], Item]:
    """`convert` for a table's records read in `encoding` from a pipe, each `unmangled`."""

    def checked(cells: Sequence[str]) -> Item:
        return unmangled(convert(cells), getattr(cells, "text", None) or ",".join(cells), encoding)

    return checked

"""Which encoding a text file is in, and the one pass that checks it while fingerprinting it.

UTF-8 with or without a BOM, UTF-16 and UTF-32 by their BOM (Excel's "Unicode text"), anything
else by name (`--encoding cp1252`). A file that is not valid in its encoding is refused whole,
naming its first bad line: one wrong setting, not thousands of `invalid` rows. So is UTF-8
text read with a legacy `--encoding` (each letter would be sent garbled; `mojibake.py` tells).
The check rides on the pass that computes the file's sha256 for `--resume`, so it costs no extra
read.
"""

from __future__ import annotations

import codecs
import hashlib
import io
from dataclasses import dataclass
from typing import IO, Any, Final

from ..errors import ConfigError, InputError
from .mojibake import Votes, word

# UTF-32 LE's BOM begins with UTF-16 LE's: look for the longer ones first.
_BOMS: Final = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_CHUNK: Final = 1 << 20
#: `--encoding utf-16` (or utf-32) on a file without a BOM: little-endian, as Windows writes it.
_NO_BOM: Final = {"utf-16": "utf-16-le", "utf-32": "utf-32-le"}


@dataclass(frozen=True, slots=True)
class Encoding:
    """How to decode a file: the codec's name, and whether a BOM or the user chose it."""

    codec: str
    how: str  # "default", "BOM" or "--encoding"

    @property
    def is_utf8(self) -> bool:
        return codecs.lookup(self.codec).name in ("utf-8", "utf-8-sig")

    @property
    def legacy(self) -> bool:
        """A legacy encoding the user named (`--encoding cp1252`): not one of Unicode's."""
        return self.how == "--encoding" and not (self.is_utf8 or self.wide)

    @property
    def wide(self) -> bool:
        """UTF-16 or UTF-32: NUL bytes are part of the text there, not a sign of binary data."""
        return codecs.lookup(self.codec).name.startswith(("utf-16", "utf-32"))

    def __str__(self) -> str:
        return self.codec.removesuffix("-sig")


def detect_encoding(head: bytes, named: str | None) -> Encoding:
    """The encoding of a file starting with `head`: its BOM, else `named`, else UTF-8."""
    for bom, codec in _BOMS:
        if head.startswith(bom):
            return Encoding(codec, "BOM")
    if named:
        try:
            info = codecs.lookup(named)
        except LookupError:
            raise ConfigError(
                f"--encoding {named}: not an encoding Python knows (try cp1252, latin-1, utf-16)"
            ) from None
        if info.name in _NO_BOM:  # Python reads these only after a BOM; Windows writes LE
            return Encoding(_NO_BOM[info.name], "--encoding")
        if not _reads_text(info):
            raise ConfigError(
                f"--encoding {named}: not an encoding text files are written in "
                "(try cp1252, latin-1, utf-16)"
            )
        return Encoding("utf-8-sig" if info.name == "utf-8" else named, "--encoding")
    return Encoding("utf-8-sig", "default")


def _reads_text(info: codecs.CodecInfo) -> bool:
    """Whether a codec turns bytes into text, bad bytes replaced (not rot13, base64, idna)."""
    if not getattr(info, "_is_text_encoding", True):
        return False
    try:
        info.incrementaldecoder("replace").decode(b"id,city\n\xff", True)
    except Exception:  # a codec may raise anything on bytes it was not made for
        return False
    return True


def text(raw: IO[bytes], encoding: Encoding, *, any_line_end: bool = False) -> io.TextIOWrapper:
    """The bytes as text, split at LF only (or, `any_line_end`, at LF, CRLF or a bare CR: CSV) and
    kept as they are (CRLF stays whole).

    Bad bytes survive as lone surrogates in UTF-8 (for input that could not be checked ahead:
    standard input), so one row can be blamed for them.
    """
    errors = "surrogateescape" if encoding.is_utf8 else "replace"
    newline = "" if any_line_end else "\n"
    return io.TextIOWrapper(raw, encoding=encoding.codec, errors=errors, newline=newline)


def scan(path: str, encoding: Encoding, name: str, *, any_line_end: bool = False) -> str:
    """sha256 of the file, raising `InputError` at the first line not valid in `encoding`
    (lines end in LF, or with `any_line_end` in LF, CRLF or CR, as `text()` splits them)."""
    digest = hashlib.sha256()
    problem = _first_problem(path, encoding, any_line_end, digest)
    if problem is not None:
        raise InputError(f"{name}: {problem}")
    return digest.hexdigest()


def text_problem(path: str, encoding: Encoding, *, any_line_end: bool = False) -> str | None:
    """What `scan()` would refuse the file for (its first bad line, and what to do), or None."""
    return _first_problem(path, encoding, any_line_end, None)


def _first_problem(
    path: str, encoding: Encoding, any_line_end: bool, digest: Any | None
) -> str | None:
    decoder = codecs.getincrementaldecoder(encoding.codec)("strict")
    utf8 = _Utf8Sign(encoding) if encoding.legacy else None
    lines, after_cr = 1, False
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK):
            if digest is not None:
                digest.update(chunk)
            try:
                decoded = decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                return _bad_text(encoding, lines, exc, any_line_end)
            if utf8 is not None and not chunk.isascii():
                utf8.feed(chunk, lines, any_line_end)
            lines += decoded.count("\n")
            if any_line_end and "\r" in decoded:  # a CR not followed by LF ends a line too
                lines += decoded.count("\r") - decoded.count("\r\n")
                lines -= after_cr and decoded.startswith("\n")
            after_cr = decoded.endswith("\r")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            return _bad_text(encoding, lines, exc, any_line_end)
    return utf8.problem() if utf8 is not None else None


#: What a message says to do about a UTF-8 file read with `--encoding` (a job file says it its way).
DROP_ENCODING: Final = "drop --encoding {}"


class _Utf8Sign:
    """Whether a file read in a legacy encoding (`--encoding cp1252`) is UTF-8 text: valid UTF-8
    whose non-ASCII runs read better as UTF-8 (`mojibake.py`), each letter of which would arrive
    as two or three wrong ones (`MÃ¼ller`). Fed only the chunks that are not ASCII."""

    def __init__(self, encoding: Encoding) -> None:
        self.encoding = encoding
        self._decoder: Any = codecs.getincrementaldecoder("utf-8")("strict")
        self._votes = Votes(encoding.codec)
        self._example: tuple[int, bytes] | None = None  # the line and word of the first one

    def feed(self, chunk: bytes, lines: int, any_line_end: bool) -> None:
        if self._decoder is None:
            return
        try:
            self._decoder.decode(chunk)
        except UnicodeDecodeError:
            self._decoder = None  # not UTF-8: the encoding given is right
            return
        if self._votes.done:
            return
        first = self._votes.feed(chunk)
        if self._example is None and first is not None:
            before = chunk[: first[0]]
            line = lines + before.count(b"\n")
            if any_line_end:
                line += before.count(b"\r") - before.count(b"\r\n")
            self._example = line, word(chunk, *first)

    def problem(self) -> str | None:
        if self._decoder is None or self._example is None or not self._votes.utf8_wins:
            return None
        try:
            self._decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return None
        line, shown = self._example
        return (
            f"the file is UTF-8 text, not {self.encoding} (line {line} holds "
            f"`{shown.decode('utf-8', 'replace')}`, which {self.encoding} reads as "
            f"`{shown.decode(self.encoding.codec, 'replace')}`); "
            f"{DROP_ENCODING.format(self.encoding)}"
        )


def _bad_text(encoding: Encoding, lines: int, exc: UnicodeDecodeError, any_line_end: bool) -> str:
    before = exc.object[: exc.start]
    line = lines + before.count(b"\n")
    if any_line_end:
        line += before.count(b"\r") - before.count(b"\r\n")
    byte = exc.object[exc.start : exc.start + 1].hex().upper()
    if encoding.is_utf8 and encoding.how == "default":
        return (
            f"line {line} is not UTF-8 text (byte 0x{byte}); the file was saved in "
            "another encoding: if it comes from Excel on Windows, pass --encoding cp1252 "
            "(or the encoding it was saved in)"
        )
    return f"line {line} is not valid {encoding} text (byte 0x{byte}); check --encoding"

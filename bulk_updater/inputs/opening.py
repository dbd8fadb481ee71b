"""Which input a path names: the file (or standard input) opened for bytes, and its format.

The format comes from `--format`, else from the bytes (a ZIP is a workbook, whatever its name
says), else from the name's suffix. Standard input has no name to go by: it needs `--format`.
Every way a path can fail to open is one `InputError` line that says what to do.
"""

from __future__ import annotations

import io
import os
import sys
from typing import IO, Final, Literal

from ..errors import ConfigError, InputError
from .xlsx import is_zip

Format = Literal["csv", "jsonl", "xlsx"]
_EXTENSIONS: Final[dict[str, Format]] = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
}


def open_input(path: str) -> IO[bytes]:
    """The file at `path` (`-`: standard input) opened for reading bytes."""
    if path == "-":
        # Our own reader of file descriptor 0, not `sys.stdin`: a thread blocked in it must
        # not hold a lock that the interpreter needs when it exits.
        try:
            return open(os.dup(sys.stdin.fileno()), "rb")
        except io.UnsupportedOperation:  # no file descriptor: an in-process stand-in
            buffer: IO[bytes] = sys.stdin.buffer
            return buffer
        except (OSError, ValueError, AttributeError):
            raise InputError("standard input cannot be read (is it closed?)") from None
    try:
        if os.path.isdir(path):
            raise InputError(f"{path}: is a folder; give the path of a CSV, JSONL or .xlsx")
        return open(path, "rb")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file; check the path") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied; make the file readable") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror})") from None


def format_of(path: str, head: bytes) -> Format:
    """The format of the file at `path`, whose first bytes are `head`."""
    if path == "-":
        raise ConfigError("reading standard input needs --format csv or --format jsonl")
    suffix = os.path.splitext(path)[1].lower()
    if is_zip(head):  # a workbook, whatever its name says
        return "xlsx"
    if suffix in _EXTENSIONS:
        return _EXTENSIONS[suffix]
    raise ConfigError(
        f"{path}: cannot tell the format; name it .csv, .jsonl or .xlsx, or pass --format"
    )


def delimiter_of(given: str | None) -> str | None:
    """The CSV delimiter `--delimiter` names (`;`, `tab`, `pipe`), None when not given."""
    if given is None:
        return None
    named = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
    value = named.get(given.lower(), given)
    if len(value) != 1 or value in '"\r\n':
        raise ConfigError(f"--delimiter {given!r}: give one character, such as ';' or tab")
    return value

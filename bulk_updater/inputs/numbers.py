"""A number as Excel shows it under its number format.

`General`: whole numbers without `.0` (`4155550100`), others with up to 15 significant digits. A
zero-padding format such as `00000` keeps its zeros (`02134`): that text is no longer a number.
"""

from __future__ import annotations

from typing import Final

from .values import Typed

_MAX_EXACT: Final = 2**53


def general(value: float) -> str:
    """The number as Excel's `General` format shows it."""
    if type(value) is int:
        return str(value)
    if value == 0:
        return "0"
    if value.is_integer() and -_MAX_EXACT < value < _MAX_EXACT:
        return str(int(value))
    return format(value, ".15g").upper()  # Excel shows at most 15 significant digits


def shown(value: float, pattern: str) -> str:
    """What a cell holding `value` shows under `pattern`: a `Typed` while it is a number."""
    text = general(value)
    pattern = pattern.strip()
    if text.isdigit() and len(pattern) > 1 and set(pattern) == {"0"}:  # 00000: a ZIP code
        return text.zfill(len(pattern))
    if type(value) is float and value.is_integer() and -_MAX_EXACT < value < _MAX_EXACT:
        value = int(value)  # 250.0 is the number 250 as a person reads it
    return Typed(text, value)

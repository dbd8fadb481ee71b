"""A number as Excel shows it under its number format.

`General`: whole numbers without `.0` (`4155550100`), others with up to 15 significant digits.
Other formats are rendered the way Excel does for what exports hold: digit placeholders (`0` `#`
`?`), decimals, thousands separators, percent, currency, literal text, sections (`pos;neg;zero`)
and conditions (`[<=9999999]###-####;(###) ###-####`, Excel's phone format). What is left (dates
come as dates, scientific, fractions) falls back to `General`.

A number whose format makes it a shape rather than a quantity (a phone, a ZIP code `02134`, a
social security number: literals between its digits, or zero padding) is that text; any other is
a `Typed`, its text as shown carrying the number, so a custom field can keep it a number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Final

from .values import Typed

_MAX_EXACT: Final = 2**53
_TOKEN: Final = re.compile(r'"[^"]*"|\\.|_.|\*.|\[[^\]]*\]|.', re.DOTALL)
_CONDITION: Final = re.compile(r"\[(<=|>=|<>|<|>|=)(-?\d+(?:\.\d+)?)\]")
_UNSUPPORTED: Final = frozenset("yYmMdDhHsSeE/@")
_PLACEHOLDERS: Final = frozenset("0#?")


def general(value: float) -> str:
    """The number as Excel's `General` format shows it."""
    if type(value) is int:
        return str(value)
    if value == 0:
        return "0"
    if value.is_integer() and -_MAX_EXACT < value < _MAX_EXACT:
        return str(int(value))
    return format(value, ".15g").upper()  # Excel shows at most 15 significant digits


class Number(Typed):
    """A number cell's `Typed` text, with the format that shows it: `--rejects` writes both back,
    so the cell reads back the same."""

    pattern: str

    @classmethod
    def of(cls, text: str, value: float, pattern: str) -> Number:
        number = cls(text, value)
        number.pattern = pattern
        return number


def shown(value: float, pattern: str) -> str:
    """What a cell holding `value` shows under `pattern`: a `Number` while it is a number."""
    if type(value) is float and value.is_integer() and -_MAX_EXACT < value < _MAX_EXACT:
        value = int(value)  # 250.0 is the number 250 as a person reads it
    section = _section(pattern.strip(), value)
    if section is None:
        return Number.of(general(value), value, pattern)
    text, negated = section
    parsed = _parse(text)
    if parsed is None:
        return Number.of(general(value), value, pattern)
    number = abs(value) if negated else value
    rendered = parsed.render(number)
    return rendered if parsed.shape else Number.of(rendered, value, pattern)


def _split(pattern: str) -> list[str]:
    """The `;`-separated sections of a format, quotes and brackets respected."""
    sections, current = [], ""
    for token in _TOKEN.findall(pattern):
        if token == ";":
            sections.append(current)
            current = ""
        else:
            current += token
    return [*sections, current]


def _section(pattern: str, value: float) -> tuple[str, bool] | None:
    """The section that applies to `value`, and whether it shows a negative number without its
    sign (a negative section does); None for `General` or an empty section."""
    if not pattern or pattern.lower() == "general":
        return None
    sections = _split(pattern)
    conditions = [_CONDITION.search(section) for section in sections]
    if any(conditions):
        for section, condition in zip(sections, conditions, strict=True):
            if condition is None or _holds(value, condition.group(1), float(condition.group(2))):
                return (section, False) if section else None
        return None
    if value < 0 and len(sections) > 1:
        return (sections[1], True) if sections[1] else None
    if value == 0 and len(sections) > 2:
        return (sections[2], False) if sections[2] else None
    return (sections[0], False) if sections[0] else None


def _holds(value: float, operator: str, bound: float) -> bool:
    return {
        "<=": value <= bound, ">=": value >= bound, "<>": value != bound,
        "<": value < bound, ">": value > bound, "=": value == bound,
    }[operator]  # fmt: skip


@dataclass(slots=True)
class _Format:
    """One section: literal text before, among and after the digit placeholders."""

    integer: list[str] = field(default_factory=list)  # placeholders and literals among them
    fraction: list[str] = field(default_factory=list)
    prefix: str = ""
    suffix: str = ""
    grouping: bool = False
    scale: int = 0  # commas after the last placeholder: thousands
    percent: bool = False

    @property
    def shape(self) -> bool:
        """Whether the format makes the number a shape (phone, ZIP code), not a quantity."""
        slots = [n for n, token in enumerate(self.integer) if token in _PLACEHOLDERS]
        inside = self.integer[slots[0] : slots[-1]] if slots else []
        literal = any(token not in _PLACEHOLDERS for token in inside)
        return literal or (not self.grouping and self.integer.count("0") > 1)

    def render(self, value: float) -> str:
        scaled = Decimal(repr(value)) * (100 if self.percent else 1) / (1000**self.scale)
        places = sum(token in _PLACEHOLDERS for token in self.fraction)
        try:
            rounded = scaled.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
        except InvalidOperation:
            return general(value)
        whole, _, decimals = f"{abs(rounded):f}".partition(".")
        sign = "-" if rounded < 0 else ""
        return (
            sign
            + self.prefix
            + self._whole(whole.lstrip("0"))
            + self._decimals(decimals)
            + (self.suffix)
        )

    def _whole(self, digits: str) -> str:
        slots = [token for token in self.integer if token in _PLACEHOLDERS]
        if self.grouping:
            first_zero = next((n for n, t in enumerate(slots) if t == "0"), len(slots))
            padded, groups = digits.zfill(len(slots) - first_zero), list[str]()
            while padded:
                groups.insert(0, padded[-3:])
                padded = padded[:-3]
            return ",".join(groups)
        spare = len(slots) - len(digits)  # placeholders with no digit (overflow when < 0)
        out: list[str] = []
        position = 0
        for token in self.integer:
            if token not in _PLACEHOLDERS:
                out.append(token)
            elif spare < 0 and position == 0:
                out.append(digits[: 1 - spare])  # what does not fit goes in the first
            elif position >= spare:
                out.append(digits[position - spare])
            else:
                out.append(_PADDING.get(token, ""))
            position += token in _PLACEHOLDERS
        return "".join(out)

    def _decimals(self, digits: str) -> str:
        slots = [token for token in self.fraction if token in _PLACEHOLDERS]
        if not slots:
            return ""
        shown = list(digits)
        for n in range(len(slots) - 1, -1, -1):  # optional places drop their trailing zeros
            if slots[n] == "0" or shown[n] != "0":
                break
            shown[n] = _PADDING.get(slots[n], "")
        return "." + "".join(shown)


_PADDING: Final = {"0": "0", "?": " "}  # what a placeholder with no digit shows ('#': nothing)


def _literal(token: str) -> str:
    if token.startswith('"'):
        return token[1:-1]
    if token.startswith("\\"):
        return token[1:]
    return {"_": " ", "*": ""}.get(token[0], token)


def _parse(section: str) -> _Format | None:
    """A section's placeholders and literals; None for what `General` must show instead."""
    parsed = _Format()
    where = "prefix"  # then "integer", "fraction", "suffix"
    tokens = _TOKEN.findall(section)
    for n, token in enumerate(tokens):
        if token in _PLACEHOLDERS:
            if where == "suffix":
                return None  # placeholders on both sides of literal text: not a number format
            where = "fraction" if where == "fraction" else "integer"
            (parsed.fraction if where == "fraction" else parsed.integer).append(token)
            if not any(t in _PLACEHOLDERS for t in tokens[n + 1 :]):
                where = "suffix"
            continue
        if token == "." and where in ("prefix", "integer"):
            where = "fraction"
            continue
        if token == ",":
            if where == "integer":
                parsed.grouping = True
            elif where == "suffix":
                parsed.scale += 1
            continue
        if token.startswith("["):
            if not token.startswith("[$"):
                continue  # a colour or a condition shows nothing
            literal = token[2:-1].split("-", 1)[0]  # a currency: [$€-407]
        elif token[0] in _UNSUPPORTED:
            return None
        else:
            parsed.percent = parsed.percent or token == "%"
            literal = _literal(token)
        if where == "prefix":
            parsed.prefix += literal
        elif where == "suffix":
            parsed.suffix += literal
        elif where == "integer":
            parsed.integer.append(literal)
    return parsed if parsed.integer or parsed.fraction else None

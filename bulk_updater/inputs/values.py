"""How a cell or JSON value becomes a field's value, and how a problem with one is worded."""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
import unicodedata
from collections.abc import Callable
from typing import Any, Final

from pydantic import ValidationError

from ..models import JsonScalar, LeadUpdate, ValueType
from .items import EMAIL_PATTERN, STAND_IN_ID, ByEmail, Invalid, Item
from .separators import GROUPED, separators
from .suggest import hint


def problem_of(exc: ValidationError) -> str:
    """One line naming each column with a problem and what it must be, in plain words."""
    parts: list[str] = []
    for error in exc.errors(include_url=False, include_input=False):
        part = _plain(tuple(str(p) for p in error["loc"]), error["type"], str(error["msg"]))
        if part not in parts:  # a union type reports one problem once per member
            parts.append(part)
    return "; ".join(parts)


def _plain(loc: tuple[str, ...], kind: str, message: str) -> str:
    if kind == "value_error" or not loc:  # our own validators' words
        message = message.removeprefix("Value error, ")
        return f"column {'.'.join(loc)}: {message}" if loc else message
    field = loc[0]
    if field == "tags":
        return "column tags: must be a list of strings"
    if field == "customFields" and len(loc) > 1:
        return f"column customFields.{loc[1]}: must be text, a number, true/false or null"
    if field == "customFields":
        return "column customFields: must be an object (name: value)"
    if kind == "extra_forbidden":
        return f"unknown column `{field}`{hint(field)}"
    return f"column {field}: must be text"


_LABEL_LIMIT: Final = 200


def label(value: object) -> str:
    """An id or email as the report shows it, whatever type a JSON record gave it (bounded)."""
    if not isinstance(value, str):
        try:
            value = json.dumps(value, default=str)
        except (ValueError, RecursionError):
            return f"<{type(value).__name__} nested too deeply>"
    return value if len(value) <= _LABEL_LIMIT else value[:_LABEL_LIMIT] + "…"


#: What is trimmed around an email: ASCII spaces only (the API keeps a non-breaking one).
ASCII_SPACE: Final = " \t\n\r\f\v"


def trim_email(email: str) -> str:
    """An email as it is searched and shown: ASCII spaces around it trimmed, nothing else.

    A Unicode trim would also drop a non-breaking space, or `\x1f` (which `str.isspace` counts
    as a space); the API keeps those, so `email_problem` names them instead.
    """
    return email.strip(ASCII_SPACE)


def validate(data: dict[str, Any], rid: str, email: str | None) -> LeadUpdate | Invalid:
    """`data` (the caller's own dict, given its trimmed `email`) as a `LeadUpdate`, or what is
    wrong with it."""
    if isinstance(email, str):
        email = trim_email(email)
        problem = email_problem(email, address=False)
        if problem is not None:
            return Invalid(rid, problem, email)
        data["email"] = email  # every caller's own dict: no copy
    try:
        return _validate_update(data)
    except ValidationError as exc:
        return Invalid(rid, problem_of(exc), email)
    except RecursionError:
        return Invalid(rid, "a value is nested too deeply", email)


#: `LeadUpdate.model_validate` without the wrapper around it, which costs a row about 0.5 us.
_validate_update: Final[Callable[[dict[str, Any]], LeadUpdate]] = (
    LeadUpdate.__pydantic_validator__.validate_python
)
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # in an email: none, tab and line breaks too


def email_problem(email: str, *, address: bool = True) -> str | None:
    """What makes `email` (trimmed) no email to search for (`address`), or no label; None if
    nothing does."""
    if not address and email.isprintable():
        return None  # a label: no control character nor surrogate (Unicode's "Other") in it
    if _surrogates(email):
        return "column email: not valid UTF-8 text"
    if address and not email:
        return "column email: is empty (the row is matched by its email); fill it in"
    control = _CONTROL.search(email) if address else _LABEL_CONTROL.search(email)
    if control is not None:
        return f"column email: holds the control character \\x{ord(control.group()):02x}; remove it"
    if address and not email.isascii() and (unseen := _invisible(email)):
        name = unicodedata.name(unseen, "").lower()
        return (
            f"column email: holds the invisible character U+{ord(unseen):04X}"
            f"{f' ({name})' if name else ''}, which is not trimmed; remove it"
        )
    if address and EMAIL_PATTERN.fullmatch(email) is None:
        return f"column email: {label(email)!r} is not an email address"
    return None


_LABEL_CONTROL: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # as in any value


#: What shows as nothing or as a plain space: format characters (zero-width space, direction
#: marks, BOM, soft hyphen) and spaces (a non-breaking one, line and paragraph separators).
_UNSEEN: Final = frozenset({"Cf", "Zs", "Zl", "Zp"})


def _invisible(email: str) -> str:
    """The first character of `email` that shows as nothing or as a plain space (`_UNSEEN`), but
    " "; "" when none. Two emails that differ by one are two leads to the API."""
    for char in email:
        if char != " " and unicodedata.category(char) in _UNSEEN:
            return char
    return ""


def shows_nothing(cell: str) -> bool:
    """Whether a cell shows nothing, so is empty: spaces, and characters that show as nothing
    (`_UNSEEN`: what copying from Excel or a CRM leaves behind). Not a control character that
    Python counts as a space (`\x1f`), which makes its row invalid."""
    if cell.isascii():  # the usual cell: a flag, no character looked up
        return cell.isspace() and _LABEL_CONTROL.search(cell) is None
    if cell.isprintable():  # nothing in it hides (`_UNSEEN`, controls): only " " is blank
        return cell.isspace()
    if not _unseen(cell[0]):  # `Jean\u00a0Dupont`: text that shows, from its first character
        return False
    return all(_unseen(char) for char in cell) and _LABEL_CONTROL.search(cell) is None


def leaves_alone(value: object) -> bool:
    """Whether a JSON value means "leave this field alone", as an empty cell does: `""`, or text
    that `shows_nothing` (what exporters write for a missing value; no one means to set it)."""
    return isinstance(value, str) and (not value or shows_nothing(value))


def set_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """The custom fields of a JSON object that set something: one that `leaves_alone` is not
    sent, as an empty `customFields.<name>` cell is not."""
    if not any(leaves_alone(value) for value in fields.values()):
        return fields
    return {name: value for name, value in fields.items() if not leaves_alone(value)}


def _unseen(char: str) -> bool:
    return char.isspace() or unicodedata.category(char) in _UNSEEN


def _surrogates(text: str) -> bool:
    """Whether bad UTF-8 survived decoding (as lone surrogates) in `text`."""
    return not text.isascii() and _SURROGATE.search(text) is not None


_SURROGATE: Final = re.compile("[\ud800-\udfff]")


def by_email(data: dict[str, Any], email: str) -> Item:
    """A row to match by `email`, its fields checked now (with a stand-in id)."""
    email = trim_email(email)
    problem = email_problem(email)
    if problem is not None:
        return Invalid("", problem, email or None)
    checked = validate({**data, "id": STAND_IN_ID, "email": email}, "", email)
    return ByEmail(email, checked) if isinstance(checked, LeadUpdate) else checked


def parse_custom_json(cell: str) -> dict[str, Any] | str:
    try:
        value = json.loads(cell)
    except json.JSONDecodeError as exc:
        return f"column customFields: not a valid JSON object ({exc.msg})"
    except RecursionError:
        return "column customFields: the JSON is nested too deeply"
    if not isinstance(value, dict):
        return 'column customFields: must be a JSON object like {"industry": "SaaS"}'
    return set_fields(value)


class Typed(str):
    """A cell's text as shown, and the number or boolean it holds (a workbook's cell), so that
    a custom field can keep its type while text fields get the text."""

    value: int | float | bool

    def __new__(cls, text: str, value: int | float | bool) -> Typed:
        typed = super().__new__(cls, text)
        typed.value = value
        return typed


_NUMBER: Final = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_TRUE: Final = frozenset({"true", "yes", "y", "1"})
_FALSE: Final = frozenset({"false", "no", "n", "0"})

#: A custom field's value, or the problem with it (in words that follow `column NAME: `).
Converted = tuple[JsonScalar, str | None]


def custom_value(cell: str, kind: ValueType | None, comma_decimals: bool = False) -> Converted:
    """A custom field's value from a cell: the number or boolean a workbook's cell holds, else
    its text; with a type from the map, the cell read as that type. `comma_decimals`: the cell's
    column may well write `2.500` for 2500 (`separators.DecimalMarks`), so such a cell is
    refused as ambiguous."""
    if kind is None:
        return (cell.value, None) if isinstance(cell, Typed) else (cell, None)
    if kind == "text":
        return str(cell), None
    held = cell.value if isinstance(cell, Typed) else None
    text = cell.strip()
    if kind == "boolean":
        if isinstance(held, bool):
            return held, None
        if text.lower() in _TRUE or text.lower() in _FALSE:
            return text.lower() in _TRUE, None
        return None, f"{label(text)!r} is not true or false (true/false, yes/no or 1/0)"
    if kind == "date":
        return _date(text)
    number = held if isinstance(held, int | float) and not isinstance(held, bool) else None
    if number is None and _NUMBER.fullmatch(text):
        if comma_decimals and GROUPED.fullmatch(text):  # `2.500`, `2.000` (even `:integer`)
            return None, separators(text, comma_decimals, label(text))
        number = float(text) if any(c in text for c in ".eE") else int(text)
    if number is None or not math.isfinite(number):
        return None, separators(text, comma_decimals, label(text))
    if kind == "integer":
        if isinstance(number, float) and not number.is_integer():
            if held is None and GROUPED.fullmatch(text):  # `3.400`: 3400 in German
                return None, separators(text, comma_decimals, label(text))
            return None, f"{label(text)!r} is not a whole number"
        return int(number), None
    return number, None


_NAMED: Final = {"number": "a number", "integer": "a whole number", "boolean": "true or false",
                 "date": "a date", "text": "text"}  # fmt: skip


def typed_value(value: object, kind: ValueType) -> Converted:
    """A JSON or Python value as the type the map gives it: text read as a cell's, a number or
    boolean (or a date, from Python) checked against the type."""
    if isinstance(value, str):
        return custom_value(value, kind)
    if isinstance(value, bool | int | float):
        return custom_value(Typed(json.dumps(value), value), kind)
    if kind == "date" and isinstance(value, _dt.date):
        return value.isoformat(), None
    return None, f"{label(value)} is not {_NAMED[kind]}"


def _date(text: str) -> Converted:
    try:
        if "T" in text or " " in text:
            return _dt.datetime.fromisoformat(text).isoformat(), None
        return _dt.date.fromisoformat(text).isoformat(), None
    except ValueError:
        return None, f"{label(text)!r} is not a date written as YYYY-MM-DD"

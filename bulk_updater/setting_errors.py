"""A setting that cannot be had, told in one line: `--rate: must be 0 or more`.

pydantic's own wording (`Input should be greater than or equal to 0`) names types and a user
never wrote a type. Each error is said in plain words instead, under the setting's name as the
caller spells it (its flag on the command line, its keyword in Python).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from pydantic_core import ErrorDetails

_WORDING: Final = {
    "greater_than_equal": "must be {ge} or more",
    "greater_than": "must be more than {gt}",
    "less_than_equal": "must be {le} or less",
    "less_than": "must be less than {lt}",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "int_type": "must be a whole number",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "string_type": "must be text",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "extra_forbidden": "is not a setting",
    "literal_error": "must be {expected}",
}


def explain(error: ErrorDetails, names: Mapping[str, str]) -> str:
    """`--rate: must be 0 or more`: the setting as the caller spells it, in plain words."""
    name = ".".join(str(p) for p in error["loc"]) or "settings"
    wording = _WORDING.get(error["type"])
    if wording is not None:
        message = wording.format(**{k: _number(v) for k, v in error.get("ctx", {}).items()})
    else:
        message = str(error["msg"]).removeprefix("Value error, ")
    return f"{names.get(name, name)}: {message}"


def _number(value: object) -> object:
    return int(value) if isinstance(value, float) and value.is_integer() else value

"""The values that flow through a job: `LeadUpdate` in, `Outcome` per row out, `Summary` at the end.

All are immutable. `LeadUpdate` is the only place that decides what may be sent: a plain-token id
and the documented lead fields, nothing else.
"""

from __future__ import annotations

import math
import operator
import re
from enum import StrEnum
from typing import Any, Final, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

#: Lead fields that an update replaces (the API's create fields, minus email).
TEXT_FIELDS: Final = (
    "firstName",
    "lastName",
    "companyName",
    "jobTitle",
    "phone",
    "linkedinUrl",
    "city",
    "state",
    "country",
)
#: The types a custom field's column can be given (`--map "Employees=customFields.n:number"`).
ValueType = Literal["number", "integer", "boolean", "date", "text"]
VALUE_TYPES: Final[tuple[ValueType, ...]] = ("number", "integer", "boolean", "date", "text")
_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9_-]{1,128}")
#: A number in E-notation, as Excel shows one of 12 digits or more (`4.15556E+11`, German
#: `4,15556E+11`): the digits past the first few are lost.
_SCIENTIFIC: Final = re.compile(r"\s*[+-]?\d(?:[.,]\d+)?[eE]\+\d+\s*")
#: Control characters no lead field may hold (tab, line feed and carriage return may).
_CONTROL: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")

JsonScalar = str | int | float | bool | None


class Status(StrEnum):
    """The final outcome of one row."""

    UPDATED = "updated"
    NOT_FOUND = "not_found"
    INVALID = "invalid"
    REJECTED = "rejected"
    FAILED = "failed"
    ABORTED = "aborted"
    SKIPPED = "skipped"
    UNCHANGED = "unchanged"
    """Not sent (`skip_unchanged`): the lead already holds every value the row sets."""

    def __repr__(self) -> str:  # `print(summary.counts)` shows {'updated': 5000, ...}
        return repr(self.value)

    @property
    def is_final(self) -> bool:
        """True when `--resume` must not send the row again."""
        return self not in (Status.FAILED, Status.ABORTED)


class LeadUpdate(BaseModel):
    """One lead's update: the id and only the fields to change.

    `email` is a label for the report, never sent: the API does not allow changing it. `ref` is
    the caller's own, never sent either: its row's `Outcome` carries it back.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Read as `id` or `_id` (the API's name), but named `id`: `LeadUpdate(id=...)` type-checks.
    id: str = Field(validation_alias=AliasChoices("id", "_id"))
    email: str | None = None
    firstName: str | None = None
    lastName: str | None = None
    companyName: str | None = None
    jobTitle: str | None = None
    phone: str | None = None
    linkedinUrl: str | None = None
    city: str | None = None
    state: str | None = None
    country: str | None = None
    tags: tuple[str, ...] | None = None
    customFields: dict[str, JsonScalar] | None = None
    ref: Any = None

    @field_validator("id")
    @classmethod
    def _plain_token(cls, value: str) -> str:
        if not value:
            raise ValueError("is empty")
        if _ID_PATTERN.fullmatch(value) is None:
            if _SCIENTIFIC.fullmatch(value):
                raise ValueError(_excel_number("id", value))
            raise ValueError(
                f"{value!r} is not a plain id (only letters, digits, '_' and '-', at most 128)"
            )
        return value

    @field_validator("phone")
    @classmethod
    def _not_scientific(cls, value: str | None) -> str | None:
        if value is not None and "+" in value and _SCIENTIFIC.fullmatch(value):
            raise ValueError(_excel_number("phone number", value))
        return value

    @model_validator(mode="after")
    def _sets_something(self) -> LeadUpdate:
        fields = self.__dict__
        values = _text_values(fields)
        tags, custom = fields["tags"], fields["customFields"]
        if values == _NO_TEXT and tags is None and not custom:
            raise ValueError("the row sets no field to update")
        texts = [*filter(None, values)]  # an empty text holds nothing to find
        if _plain(texts, tags, custom):  # the usual row: nothing below can find a problem
            return self
        for name, value in self.body().items():
            problem = _unsendable(value)
            if problem:
                raise ValueError(f"column {name}: {problem}")
        return self

    def body(self) -> dict[str, Any]:
        """The JSON body of the PATCH: every field the row sets, nothing else."""
        fields = self.__dict__
        body = {name: value for name in TEXT_FIELDS if (value := fields[name]) is not None}
        if (tags := fields["tags"]) is not None:
            body["tags"] = list(tags)
        if custom := fields["customFields"]:
            body["customFields"] = custom
        return body


def _excel_number(what: str, value: str) -> str:
    return (
        f"Excel turned this {what} into {value.strip()} (its digits are lost); format the "
        "column as Text in Excel and export again"
    )


#: The text fields out of a `LeadUpdate`'s `__dict__` in one call, where a loop over their names
#: costs a row about 2,400 more instructions.
_text_values: Final = operator.itemgetter(*TEXT_FIELDS)
_NO_TEXT: Final = (None,) * len(TEXT_FIELDS)
#: Any character `_unsendable` may refuse in text: a control character or a surrogate.
_SUSPECT: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def _plain(texts: list[str], tags: tuple[str, ...] | None, custom: dict[str, Any] | None) -> bool:
    """Whether a row's values are all text free of `_SUSPECT` characters, booleans, nulls or
    small numbers, so that `_unsendable` finds nothing in them: one search over all the text,
    where a search per value costs a row about a microsecond more. False: look value by value."""
    if tags:
        texts += tags
    if custom:
        for key, value in custom.items():
            texts.append(key)
            kind = type(value)
            if kind is str:
                texts.append(value)
            elif kind is int:
                if not -(2**63) <= value < 2**64:
                    return False
            elif kind is float:
                if not math.isfinite(value):
                    return False
            elif value is not None and kind is not bool:
                return False
    text = "".join(texts)
    # Printable text holds no control character nor surrogate (both are Unicode's "Other"):
    # found in a tenth of the regex's time. Tabs, line breaks and other spaces are searched.
    return text.isprintable() or _SUSPECT.search(text) is None


def _unsendable(value: object) -> str | None:
    """Why a value cannot go out as strict JSON in UTF-8 unchanged, or None."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "holds a lone surrogate (such as \\ud800), which is not Unicode text"
        if (control := _CONTROL.search(value)) is not None:
            code = ord(control.group())
            if code >= 0x80:  # C1: what a Windows-1252 file read as Latin-1 is full of
                return (
                    f"holds the control character \\x{code:02x}, which is no text: was the "
                    "file read in the wrong encoding? (Excel's: --encoding cp1252)"
                )
            return f"holds the control character \\x{code:02x}; remove it"
    elif isinstance(value, bool):
        return None
    elif isinstance(value, int):
        if not -(2**63) <= value < 2**64:
            return f"the number {value} is too large to send"
    elif isinstance(value, float):
        if not math.isfinite(value):
            return f"{value} is not a JSON number"
    elif isinstance(value, dict):
        for key, item in value.items():
            problem = _unsendable(key) or _unsendable(item)
            if problem:
                return problem
    elif isinstance(value, list | tuple):
        for item in value:
            problem = _unsendable(item)
            if problem:
                return problem
    return None


class Outcome(BaseModel):
    """What happened to one input row."""

    model_config = ConfigDict(frozen=True)

    row: int
    id: str
    status: Status
    http_status: int | None = None
    error_code: str | None = None
    message: str = ""
    attempts: int = 0
    duration_ms: int | None = None
    email: str | None = None
    line: int | None = None
    """Where the record starts in the file: its first line, or the sheet's row number."""
    ref: Any = None
    """The row's `ref`, as given (a `LeadUpdate`'s, or a dict row's `ref` key); for a `Source`
    with `keep`, the kept cells by column name."""

    @classmethod
    def trusted(
        cls,
        *,
        row: int,
        line: int | None,
        id: str,
        status: Status,
        http_status: int | None,
        error_code: str | None,
        message: str,
        attempts: int,
        duration_ms: int | None,
        email: str | None,
        ref: Any,
    ) -> Outcome:
        """Build from values the engine already knows to be right, skipping validation.

        What `model_construct` does, at a third of its cost: it runs once per row on the hot path.
        """
        outcome = _new_object(cls)
        _set(outcome, "__dict__", {
            "row": row,
            "id": id,
            "status": status,
            "http_status": http_status,
            "error_code": error_code,
            "message": message,
            "attempts": attempts,
            "duration_ms": duration_ms,
            "email": email,
            "line": line,
            "ref": ref,
        })  # fmt: skip
        _set(outcome, "__pydantic_fields_set__", set(_OUTCOME_FIELDS))
        _set(outcome, "__pydantic_extra__", None)
        _set(outcome, "__pydantic_private__", None)
        return outcome


_OUTCOME_FIELDS: Final = frozenset(Outcome.model_fields)
_new_object = object.__new__
_set = object.__setattr__


class StopReason(StrEnum):
    """Why a job stopped before reading all its rows."""

    KEY_REFUSED = "key_refused"
    API_DOWN = "api_down"
    LIMITER_DOWN = "limiter_down"  # the shared rate budget (Redis) cannot be reached
    UNKNOWN_IDS = "unknown_ids"  # the first rows sent were all `not_found`
    INTERRUPTED = "interrupted"
    #: `skip_unchanged`'s file cannot be written: no row goes out that it could not mark first.
    STATE_UNWRITABLE = "state_unwritable"
    #: The input file changed while it was read: what is left may be cut off, or another export.
    INPUT_CHANGED = "input_changed"


#: What counts as done for the exit code: the lead holds what the row asked for.
_DONE: Final = frozenset({Status.UPDATED, Status.SKIPPED, Status.UNCHANGED})


class Summary(BaseModel):
    """The totals of one run."""

    model_config = ConfigDict(frozen=True)

    counts: dict[Status, int]
    rows: int
    requests: int
    retries: int
    searches: int = 0
    """Of the requests, the searches that resolved emails to lead ids (`match="email"`)."""
    rate_limited: int
    duration_s: float
    achieved_rate: float
    stopped: StopReason | None = None
    stop_message: str | None = None
    report: str | None = None
    earlier: dict[Status, int] = {}
    """On resume: the statuses an earlier run gave the rows this run counts as `skipped`."""
    warnings: list[str] = []
    """What went wrong beside the rows (the report could not be sorted, ...)."""
    dropped_columns: list[str] = []
    """Columns of the input that mean no field and were left out (`ignore_unknown_columns`)."""
    settled_rate: float | None = None
    """The rate (requests/s) the limiter settled at; None: no limit (`rate=0`)."""
    settled_why: str | None = None
    """Why it settled there: `429s above 45/s`, `from X-RateLimit-Limit: 40`, the ceiling ..."""
    rate_hint: str | None = None
    """A suggestion for the next run, after repeated 429s at a given rate (`--rate auto`)."""
    state_file: str | None = None
    """The state file of `skip_unchanged`, when it was used."""

    @property
    def all_updated(self) -> bool:
        """True when every row ended `updated` (or `unchanged`), now or in an earlier run (exit
        code 0)."""
        return all(
            count == 0
            for counts in (self.counts, self.earlier)
            for status, count in counts.items()
            if status not in _DONE
        )

    @property
    def exit_code(self) -> int:
        """The command line's exit code for this result: 0 every row updated, 1 some rows not,
        3 the job was stopped (key refused, API down), 130 interrupted (`stop()`)."""
        if self.stopped is StopReason.INTERRUPTED:
            return 130
        if self.stopped is not None:
            return 3
        return 0 if self.all_updated else 1

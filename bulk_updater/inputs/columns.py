"""How a table's record becomes a `LeadUpdate`: its header checked once (`TablePlan`), by
`schema.column_for()`; a JSON or dict record's keys are resolved one by one in `record_keys.py`.

Values are converted the same way for every input: a cell's text, or a JSON value. A record that
cannot be sent becomes `Invalid`, with a message naming the column and what it must be.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from typing import Any, Final, NoReturn

from ..errors import InputError
from ..words import counted
from .header_sample import Sample, title_message
from .items import ByEmail, Invalid, Item, Raw, Row
from .schema import DROP, REJECTS_COLUMNS, Column, ColumnMap, Kind, column_for
from .separators import DecimalMarks
from .suggest import LISTED, hints, unknown_message
from .tags import parse_tags
from .values import (
    Typed,
    by_email,
    custom_value,
    label,
    parse_custom_json,
    problem_of,
    shows_nothing,
    trim_email,
    validate,
)

__all__ = [
    "ByEmail",
    "Invalid",
    "Item",
    "Raw",
    "Row",
    "TablePlan",
    "by_email",
    "label",
    "parse_custom_json",
    "parse_tags",
    "problem_of",
    "validate",
]


#: The types whose cells may hold a decimal mark.
_NUMBERS: Final = frozenset({"number", "integer"})


def _surrogates(text: str) -> bool:
    """Whether bad UTF-8 survived decoding (as lone surrogates) in `text`."""
    return not text.isascii() and _ESCAPED.search(text) is not None


_ESCAPED: Final = re.compile("[\udc80-\udcff]")  # the bytes `surrogateescape` could not decode
#: The columns whose cells are no field of the update: `_labels` reads the id and email.
_NOT_SET: Final = (Kind.ID, Kind.EMAIL, Kind.DROP)
#: The kinds `_fields` tells apart, looked up once: `Kind.TEXT` costs a cell 60 ns more.
_TEXT, _CUSTOM, _TAGS = Kind.TEXT, Kind.CUSTOM, Kind.TAGS


class TablePlan:
    """A table's header (CSV, spreadsheet) checked once, and the conversion of its records.

    Trailing empty header cells are spreadsheet debris and ignored, and so are leading ones (a
    table that starts in column B: nothing may be written left of it); so are `_status` and
    `_message`, which a `--rejects` file adds, and the `kept` columns that mean no field (they go
    to the report only). Every unknown column is named in one error, unless
    `ignore_unknown` leaves them out (`dropped` lists them). Every problem with the header is in
    that one error: unknown columns, a column without a name, two columns for one field, no id
    column, and what `sample` (called only then) says of the rows below and of the file's text.

    `comma_decimals`: the table likely comes from a locale that writes decimals with a comma
    (as its export tells); each number column's cells then settle it (`DecimalMarks`).
    """

    def __init__(
        self,
        header: list[str],
        name: str,
        *,
        mapping: ColumnMap | None = None,
        ignore_unknown: bool = False,
        sample: Callable[[], Sample] | None = None,
        tags_separator: str = ";",
        kept: Collection[str] = (),
        line: int = 1,
        comma_decimals: bool = False,
    ) -> None:
        self.tags_separator = tags_separator
        self.decimals = DecimalMarks(comma_decimals)  # whether `2.500` may be 2500
        self.line = line  # the header's, as a message names it
        names = [h.strip() for h in header]
        while names and not names[-1]:
            names.pop()
        # A table that starts further right (a margin column): its empty columns are skipped,
        # and a row with anything in them is invalid (under no header, it means nothing known).
        self.skip = next((n for n, heading in enumerate(names) if heading), 0)
        names = names[self.skip :]
        self.names = names
        self.types = [mapping.type_of(h) if mapping is not None else None for h in names]
        self.columns: list[Column] = []
        problems: list[str] = []
        unknown: list[int] = []
        for position, heading in enumerate(names):
            column = DROP if heading in REJECTS_COLUMNS else column_for(heading, mapping)
            if column is None and heading in kept:
                column = DROP
            if not heading:
                problems.append(
                    f"column {position + 1} of the header has no name; name or remove it"
                )
            elif column is None:
                unknown.append(position)
            self.columns.append(column or DROP)
        self.dropped = [names[at] for at in unknown]
        ids = [i for i, c in enumerate(self.columns) if c.kind is Kind.ID]
        emails = [i for i, c in enumerate(self.columns) if c.kind is Kind.EMAIL]
        self.id_index = ids[0] if ids else None  # None: the rows are matched by email
        self.email_index = emails[0] if emails else None
        # The columns a row's fields come from (not its id or email, nor a column left out):
        # the only ones `_fields` looks at, with what it needs of each, found once.
        self._setters = [
            (at, heading, column.kind, column.field, value_type)
            for at, (heading, column, value_type) in enumerate(
                zip(names, self.columns, self.types, strict=True)
            )
            if column.kind not in _NOT_SET
        ]
        problems += self._twice()
        if (unknown and not ignore_unknown) or not (ids or emails):
            self._refuse(name, problems, unknown, mapping, sample, ignore_unknown)
        if problems:
            _refuse(name, problems, sample)

    def _refuse(
        self,
        name: str,
        problems: list[str],
        unknown: list[int],
        mapping: ColumnMap | None,
        sample: Callable[[], Sample] | None,
        ignore_unknown: bool,
    ) -> NoReturn:
        """Refuse the header, saying everything wrong with it at once."""
        seen = sample() if sample is not None else Sample()
        if len(unknown) == len(self.names):  # nothing known: a title above the header, likely
            title = title_message(self.names, seen, mapping, self.line)
            if title is not None:
                _refuse(name, [title], lambda: seen)
        if unknown and not ignore_unknown:
            listed = unknown[:LISTED]
            taken = {str(column) for column in self.columns if column.kind is not Kind.DROP}
            notes = hints([self.names[at] for at in listed],
                          [seen.column(self.skip + at) for at in listed], taken=taken,
                          has_id=self.id_index is not None,
                          has_email=self.email_index is not None)  # fmt: skip
            problems.insert(0, unknown_message((self.names[at] for at in unknown), notes))
        if self.id_index is None and self.email_index is None:
            header = "the first line" if self.line == 1 else f"the header, line {self.line},"
            problems.append(
                f"no `id` column (nor `email`, to match leads by email); {header} must name "
                'the columns (lead ids under another name: --map "HEADER=id")'
            )
        _refuse(name, problems, lambda: seen)

    def _twice(self) -> list[str]:
        """Two columns meaning one field would make one of them lose silently: refuse."""
        seen: dict[Column, str] = {}
        problems = []
        for heading, column in zip(self.names, self.columns, strict=True):
            if column.kind is Kind.DROP:
                continue
            if column in seen:
                other = seen[column]
                what = "appears twice" if other == heading else f"and `{other}` both mean {column}"
                problems.append(
                    f"column `{heading}` {what} in the header; keep one "
                    f'(or drop one with --map "{heading}=-")'
                )
            seen[column] = heading
        return problems

    def plan(self) -> list[str]:
        """`Job Title → jobTitle` per column, for `--dry-run`."""
        return [f"{h} → {c}" for h, c in zip(self.names, self.columns, strict=True)]

    def convert(self, cells: Sequence[str]) -> Item:
        if self.skip:  # a margin on the left: nothing may be in it
            margin, cells = cells[: self.skip], cells[self.skip :]
            filled = next((n for n, cell in enumerate(margin, start=1) if cell.strip()), 0)
            if filled:
                rid, email = self._labels(cells)
                return Invalid(rid, f"column {filled} holds a value but has no header", email)
        return self._fields(cells)

    def _labels(self, cells: Sequence[str]) -> tuple[str, str | None]:
        """The id and the email of a row, as the report names it."""
        at = self.id_index
        rid = cells[at].strip() if at is not None and at < len(cells) else ""
        email = None
        if self.email_index is not None and self.email_index < len(cells):
            email = trim_email(cells[self.email_index]) or None
        return rid, email

    def _fields(self, cells: Sequence[str]) -> Item:
        width = len(self.columns)
        rid, email = self._labels(cells)
        if len(cells) != width:
            extra = cells[width:]
            if len(cells) < width or any(cell.strip() for cell in extra):
                return Invalid(
                    rid, f"the row has {counted(len(cells), 'cell')} but the header {width}", email
                )
        data: dict[str, Any] = {"id": rid, "email": email}
        custom: dict[str, Any] = {}
        # Bad UTF-8 survives decoding as surrogates: looked for cell by cell only in a row that
        # holds some (the record's text as read holds every cell's).
        suspect = _surrogates(getattr(cells, "text", None) or "".join(cells))
        for at, heading, kind, field, value_type in self._setters:
            cell = cells[at]
            if not cell or shows_nothing(cell):
                continue  # a cell of spaces, or of what shows as nothing, is empty
            if suspect and _surrogates(cell):
                return Invalid(rid, f"column {heading}: not valid UTF-8 text", email)
            if kind is _TEXT:
                data[field] = cell
            elif kind is _CUSTOM:
                if value_type is None:  # the number or boolean a workbook's cell holds, or text
                    custom[field] = cell.value if isinstance(cell, Typed) else cell
                    continue
                comma = value_type in _NUMBERS and self.decimals.comma_likely(at)
                value, problem = custom_value(cell, value_type, comma)
                if value_type in _NUMBERS and not isinstance(cell, Typed):  # a sheet's: numbers
                    self.decimals.saw(at, cell)  # for the rows below
                if problem is not None:
                    return Invalid(rid, f"column {heading}: {problem}", email)
                custom[field] = value
            elif kind is _TAGS:
                tags = parse_tags(cell, self.tags_separator)
                if isinstance(tags, str):
                    return Invalid(rid, tags, email)
                data["tags"] = tags
            else:
                obj = parse_custom_json(cell)
                if isinstance(obj, str):
                    return Invalid(rid, obj, email)
                custom = {**obj, **custom}
        if custom:
            data["customFields"] = custom
        if self.id_index is None or (not rid and email):  # no id: the row is matched by email
            return by_email(data, email or "")
        return validate(data, rid, email)


def _refuse(name: str, problems: list[str], sample: Callable[[], Sample] | None) -> NoReturn:
    """One error for every problem found, with what is wrong with the file's text too."""
    seen = sample() if sample is not None else Sample()
    if seen.text_problem is not None:
        problems = [*problems, seen.text_problem]
    if seen.delimiter_problem is not None:  # the cause of the others: first
        problems = [seen.delimiter_problem, *problems]
    if len(problems) == 1:
        raise InputError(f"{name}: {problems[0]}")
    listed = "; ".join(f"{n}) {problem}" for n, problem in enumerate(problems, start=1))
    raise InputError(f"{name}: {len(problems)} problems, to fix before any row is sent: {listed}")

"""What to suggest for a column the tool does not know, such that following the suggestion can
never send a file's data to the wrong leads or fields.

- A lead field is suggested when the name is a typo of it, one slip away (a letter missing, extra
  or two swapped: `Job Titel`, `compnyName`, `tag`; never one letter changed, which makes
  another word: `Stage` is no `state`), or when the name is the field in words (`Title`,
  `First`, `LinkedIn`) with only words beside it that say nothing of whose it is or what part
  of it (`Phone Number`, `Country/Region`, `Mobile Phone`, `Lead Email`: `NEUTRAL`). Any other
  word rules it out: `Phone Extension`, `Assistant Phone`, `Phone Country Code`, `Company Size`,
  `Manager Email`, `Referrer Email` suggest nothing, and neither do a likeness of meaning or a
  few shared letters (`Full name`, `CONFIRM_TIME`, `Mobile`, `Statement`, `Ethnicity`).
- `email` only when, besides that, no other column is the email, and every value of the column
  seen so far is an email address.
- `id` only when, besides that, every value seen has the shape of a SendKit lead id: 24 hex
  characters, the only shape the API's docs show (`API_ID`). Another system's ids (Salesforce's
  `00Q…` of 15 or 18 characters, Mailchimp's numeric `LEID` or its `EUID`) disagree with that
  shape: the message says what their values look like instead, so that no one maps them. A
  column of ids of yet another shape is never suggested either; `--map` still says what it is,
  and the stop on a first run of `not_found` answers catches a wrong one. Nor is any column
  suggested as `id` beside a column that already is the id.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from .schema import FIELD_NAMES, ColumnMap, column_for, normal

#: The shape of the API's lead ids, as its docs show them (`665d4e5f6a7b8c9d0e1f2a3b`).
API_ID: Final = re.compile(r"[0-9a-fA-F]{24}")
API_ID_SHAPE: Final = "24 hex characters"
_EMAIL: Final = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
#: The words of a name: `LeadId` and `Lead ID` are both `lead`, `id`.
_WORDS: Final = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
#: Words that, beside a field's, say nothing of whose it is nor of what part of it.
NEUTRAL: Final = frozenset({
    "number", "no", "nr", "num", "address", "addr", "region", "province", "lead", "leads",
    "contact", "person", "primary", "main", "work", "business", "office", "direct", "mobile",
    "cell", "home", "personal", "current", "new", "sendkit", "api",
})  # fmt: skip
#: A field in words, as a name may write it: the words after the first are optional but for
#: `jobTitle` (`Title` is a job title; `Job` is not).
_SPELLINGS: Final = {
    "firstName": (("first", "name"), ("first",)),
    "lastName": (("last", "name"), ("last",)),
    "companyName": (("company", "name"), ("company",)),
    "jobTitle": (("job", "title"), ("title",)),
    "linkedinUrl": (("linkedin", "url"), ("linkedin",), ("linked", "in", "url"), ("linked", "in")),
    "email": (("email",), ("e", "mail")),
}


def _spellings() -> dict[tuple[str, ...], str]:
    spelled: dict[tuple[str, ...], str] = {(n,): written for n, written in FIELD_NAMES.items()}
    for written, ways in _SPELLINGS.items():
        spelled.update(dict.fromkeys(ways, written))
    return spelled


_SPELLED: Final = _spellings()
#: The keys a typo is measured against: each field's, and its words run together.
_TYPO_KEYS: Final = {
    "".join(way): written for way, written in _SPELLED.items() if len("".join(way)) >= 4
}


def nearest(name: str) -> str | None:
    """The field a name is a near miss of, by its spelling alone; None if none."""
    key = normal(name)
    if not key:
        return None
    words = [word.lower() for word in _WORDS.findall(name)]
    if _is_id(name, words):
        return "id"  # "Lead ID", "LeadId", "SendKit ID", Mailchimp's "LEID"
    for size in (3, 2, 1):  # the field's words, with nothing but neutral words beside them
        for at in range(len(words) - size + 1):
            written = _SPELLED.get(tuple(words[at : at + size]))
            if written is not None and _neutral(words[:at] + words[at + size :]):
                return written
    typos = {written for typo, written in _TYPO_KEYS.items() if _one_slip(key, typo)}
    return typos.pop() if len(typos) == 1 else None


def _is_id(name: str, words: list[str]) -> bool:
    """`id` among neutral words (or run together with them), or one word in capitals that ends
    in it after two letters (`LEID`, `EUID`: shown what their values look like, never
    suggested)."""
    if "id" in words:
        return _neutral([word for word in words if word != "id"])
    last = words[-1] if words else ""
    if len(last) > 2 and last.endswith("id") and _neutral([*words[:-1], last[:-2]]):
        return True  # `leadid`, `sendkitid`
    word = name.strip()
    return len(words) == 1 and len(word) == 4 and word.isupper() and word.endswith("ID")


def _neutral(words: list[str]) -> bool:
    """Whether `words` run together are neutral words only (`SendKit` is `send`, `kit`)."""
    text = "".join(words)
    ends = {0}  # where a run of neutral words from the start can end
    for end in range(1, len(text) + 1):
        if any(text[start:end] in NEUTRAL for start in ends if start < end):
            ends.add(end)
    return len(text) in ends


def _one_slip(typed: str, meant: str) -> bool:
    """Whether `typed` is `meant` with one letter missing, one extra, or two neighbours swapped
    (not one changed: that makes another word, `stage` for `state`)."""
    if typed == meant:
        return False
    if len(typed) == len(meant):
        diff = [n for n, (a, b) in enumerate(zip(typed, meant, strict=True)) if a != b]
        return (
            len(diff) == 2
            and diff[1] == diff[0] + 1
            and typed[diff[0]] == meant[diff[1]]
            and typed[diff[1]] == meant[diff[0]]
        )
    short, long = sorted((typed, meant), key=len)
    if len(long) - len(short) != 1:
        return False
    return any(long[:n] + long[n + 1 :] == short for n in range(len(long)))


def hint(
    name: str,
    values: Sequence[str] | None = None,
    *,
    has_id: bool = False,
    has_email: bool = False,
) -> str:
    """' (did you mean `jobTitle`?)' when there is a field to suggest, else a word on why the
    values rule one out, else ''. `values`: some of the column's values (None: none seen, so
    neither `id` nor `email` is suggested); `has_id`, `has_email`: another column is the id, or
    the email, already (a second would be someone else's)."""
    target = nearest(name)
    seen = [value.strip() for value in values or () if value.strip()]
    if target == "id":
        if has_id or not seen:
            return ""
        if all(API_ID.fullmatch(value) for value in seen):
            return " (did you mean `id`?)"
        return f" (not SendKit lead ids, which are {API_ID_SHAPE}: its values {shape(seen)})"
    if target == "email":
        if has_email or not seen or not all(map(_EMAIL.fullmatch, seen)):
            return ""
        return " (did you mean `email`?)"
    return f" (did you mean `{target}`?)" if target else ""


def shape(values: Sequence[str]) -> str:
    """What values look like, in words: `are 18 letters and digits, like `00Q5e000…``."""
    example = values[0] if len(values[0]) <= 24 else values[0][:21] + "…"
    lengths = sorted({len(value) for value in values})
    size = str(lengths[0]) if len(lengths) == 1 else f"{lengths[0]} to {lengths[-1]}"
    text = "".join(values)
    if text.isdigit():
        kind = "digits"
    elif re.fullmatch(r"[0-9a-fA-F]+", text):
        kind = "hex characters"
    elif text.isalnum() and text.isascii():
        kind = "letters and digits"
    else:
        kind = "characters"
    prefix = _common_start(values)
    start = f", all starting `{prefix}`" if len(values) > 1 and len(prefix) >= 3 else ""
    return f"are {size} {kind}{start}, like `{example}`"


def _common_start(values: Sequence[str]) -> str:
    start = values[0]
    for value in values[1:]:
        while not value.startswith(start):
            start = start[:-1]
    return start


UNKNOWN_HELP: Final = (
    'say what they are with --map "HEADER=FIELD" (FIELD: id, email, a lead field, '
    "customFields.NAME, or - to drop it), or leave them out with --ignore-unknown-columns"
)


def unknown_message(names: Iterable[str], hints: Sequence[str] | None = None) -> str:
    """Every unknown column named, each with its `hint` (computed from the name alone if
    `hints` is not given)."""
    names = list(names)
    hints = hints if hints is not None else [hint(name) for name in names[:LISTED]]
    shown = zip(names[:LISTED], hints[:LISTED], strict=True)
    listed = ", ".join(f"`{_cut(name)}`{note}" for name, note in shown)
    if len(names) > LISTED:  # a file of thousands of columns: a line, not a page
        listed += f" and {len(names) - LISTED} more"
    return f"unknown column{'s' if len(names) > 1 else ''} {listed}; {UNKNOWN_HELP}"


#: Unknown columns named in a message; the rest are counted.
LISTED: Final = 20


def _cut(name: str) -> str:
    """A column's name as a message shows it: at most 100 characters."""
    return name if len(name) <= 100 else name[:99] + "…"


#: Rows after a header read to word a problem with it: enough to see the shape ids share.
SAMPLE_ROWS: Final = 20


@dataclass(frozen=True, slots=True)
class Sample:
    """The first rows after a table's header, `(line, cells)`, and what is wrong with the file's
    text (its encoding), if anything: read only to word a problem with the header."""

    rows: list[tuple[int, list[str]]] = field(default_factory=list)
    text_problem: str | None = None

    def column(self, index: int) -> list[str]:
        """The values of the column at `index` (of the cells as read), empty ones left out, and
        rows of one value too: a report's footer or a note, not a record (`Copyright …`)."""
        return [cells[index] for _, cells in self.rows
                if index < len(cells) and cells[index].strip() and _filled(cells) > 1]  # fmt: skip


def _filled(cells: list[str]) -> int:
    return sum(1 for cell in cells if cell.strip())


def read_sample(records: Iterable[tuple[int, object]], text_problem: str | None = None) -> Sample:
    """A `Sample` of the first records (a record that is no list of cells is left out)."""
    rows = [(line, list(cells)) for line, cells in itertools.islice(records, SAMPLE_ROWS)
            if isinstance(cells, list | tuple)]  # fmt: skip
    return Sample(rows, text_problem)


def title_message(
    names: list[str], sample: Sample, mapping: ColumnMap | None, line: int = 1
) -> str | None:
    """The message for a header (on `line`) that names no column and is likely a title above
    the real header (the first row below with several cells, one a column the tool knows), or
    None.

    The delimiter was found from the title, which holds none: a row below read as one cell is
    split by each other delimiter too, so that a title above a `;` or TAB header is named.
    """
    first = ", ".join(f"`{n}`" for n in names if n)
    where = "the first line" if line == 1 else f"line {line}"
    for row_line, cells in sample.rows:
        filled = _header_cells(cells, mapping)
        if filled:
            shown = ", ".join(f"`{cell}`" for cell in filled[:3]) + (", …" if filled[3:] else "")
            return (
                f"{where}, {first}, is a title, not the header: the header looks to be line "
                f"{row_line} ({shown}); pass --header-row {row_line}, or remove the lines above it"
            )
    if len(names) != 1:
        return None
    return (
        f"{where}, {first}{hint(names[0])}, names no column the tool knows; the first "
        "line must be the header (id or email, and the fields): if titles are above it, pass "
        f"--header-row N (N: the header's line), or say what the column is with --map "
        f'"{names[0]}=FIELD"'
    )


def _header_cells(cells: list[str], mapping: ColumnMap | None) -> list[str]:
    """The filled cells of a row that looks like a header (several, one a known column), as
    read or split by another delimiter; [] if it does not look like one."""
    filled = [cell.strip() for cell in cells if cell.strip()]
    readings = [filled] + [[part.strip() for part in ",".join(filled).split(other) if part.strip()]
                           for other in _OTHER_DELIMITERS]  # fmt: skip
    for reading in readings:
        if len(reading) > 1 and any(column_for(cell, mapping) for cell in reading):
            return reading
    return []


_OTHER_DELIMITERS: Final = (";", "\t", "|")  # than `,`, which a file with no other defaults to

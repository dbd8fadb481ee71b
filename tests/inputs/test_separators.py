"""`2.500`: 2.5 in English, 2500 where decimals take a comma. What a file's export and its
column's cells tell, and what each cell becomes (`separators.py`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bulk_updater import Source
from bulk_updater.inputs import ColumnMap
from tests.inputs.conftest import only_update

LEAD = "665d4e5f6a7b8c9d0e1f2a3b"
AMBIGUOUS = (
    "a: '{}' is {} if `.` separates thousands (likely in this file), or {} if it is a decimal"
)


def numbers(path: Path, data: bytes, *types: str, encoding: str | None = None) -> list[Any]:
    """Each row's custom fields `a`, `b`... (the file's columns after `id`, typed `types`), or
    its problem (`a: ...`)."""
    path.write_bytes(data)
    named = zip("ab", types, strict=False)
    columns = ColumnMap({name: f"customFields.{name}:{kind}" for name, kind in named})
    got: list[Any] = []
    for row in Source(path, columns=columns, encoding=encoding):
        message = getattr(row.item, "message", None)
        got.append(
            message.removeprefix("column ") if message else only_update(row.item).customFields
        )
    return got


def semicolons(*rows: str) -> bytes:
    header = "id;" + ";".join("ab"[: rows[0].count(";") + 1])
    return "".join(f"{line}\n" for line in [header, *(f"{LEAD};{row}" for row in rows)]).encode()


@pytest.mark.parametrize(("cell", "value"), [("0.125", 0.125), ("-0.500", -0.5), ("0.250", 0.25)])
def test_a_leading_zero_never_groups_thousands(tmp_path: Path, cell: str, value: float) -> None:
    """Nobody writes `0.125` for 125: it is a decimal, even in a `;` file."""
    assert numbers(tmp_path / "z.csv", semicolons(cell), "number") == [{"a": value}]
    assert numbers(tmp_path / "i.csv", semicolons(cell), "integer") == [
        f"a: '{cell}' is not a whole number"
    ]


def test_a_decimal_point_in_a_column_settles_it_for_the_rows_below(tmp_path: Path) -> None:
    """A `;` file of English decimals (`;` to keep commas in notes): `2.250` above `1.5` is
    ambiguous yet, below it a decimal; another column is not settled by it."""
    got = numbers(tmp_path / "s.csv", semicolons("2.250;2.500", "1.5;1", "2.250;2.500"),
                  "number", "number")  # fmt: skip
    assert got[0].startswith(AMBIGUOUS.format("2.250", 2250, 2.25))
    assert got[1] == {"a": 1.5, "b": 1}
    assert got[2].startswith("b" + AMBIGUOUS[1:].format("2.500", 2500, 2.5))


def test_a_decimal_comma_keeps_its_column_suspect_after_a_decimal_point(tmp_path: Path) -> None:
    got = numbers(tmp_path / "c.csv", semicolons("1.234,56", "1.5", "2.250"), "number")
    assert got[1] == {"a": 1.5}
    assert got[2].startswith(AMBIGUOUS.format("2.250", 2250, 2.25))


def test_points_grouping_thousands_make_a_comma_file_suspect(tmp_path: Path) -> None:
    """`1.500.000` is no English number: the `2.500` below it may be 2500."""
    data = f"id,a\n{LEAD},2.500\n{LEAD},1.500.000\n{LEAD},2.500\n".encode()
    first, grouped, below = numbers(tmp_path / "g.csv", data, "number")
    assert (first, grouped) == ({"a": 2.5}, "a: '1.500.000' has `.` separating thousands; write it "
                                "as 1500000")  # fmt: skip
    assert below.startswith(AMBIGUOUS.format("2.500", 2500, 2.5))


def test_an_integer_column_refuses_2_000_where_decimals_likely_take_a_comma(
    tmp_path: Path,
) -> None:
    """German `2.000` is 2000, as ambiguous as `3.400`: never sent as 2."""
    got = numbers(tmp_path / "i.csv", semicolons("2.000", "3.400", "12"), "integer")
    assert got == [
        AMBIGUOUS.format("2.000", 2000, 2) + " point; write 2000 or 2, without separators",
        AMBIGUOUS.format("3.400", 3400, 3.4) + " point; write 3400 or 3.4, without separators",
        {"a": 12},
    ]


def test_excels_unicode_text_export_is_a_hint_too(tmp_path: Path) -> None:
    """A German Excel's "Unicode Text": UTF-16 LE with a BOM, TAB, CRLF."""
    text = f"id\ta\tb\r\n{LEAD}\t2.000\t2.500\r\n{LEAD}\t12\t1.5\r\n"
    got = numbers(tmp_path / "u.txt", text.encode("utf-16"), "integer", "number")
    assert got[0].startswith(AMBIGUOUS.format("2.000", 2000, 2))
    assert got[1] == {"a": 12, "b": 1.5}


@pytest.mark.parametrize("delimiter", ["\t", "|"])
def test_a_legacy_encodings_file_is_a_hint_too(tmp_path: Path, delimiter: str) -> None:
    """cp1252 files are Windows Excel's, whose numbers follow the locale."""
    text = f"id{delimiter}a\n{LEAD}{delimiter}2.500\n"
    got = numbers(tmp_path / "l.csv", text.encode("cp1252"), "number", encoding="cp1252")
    assert got[0].startswith(AMBIGUOUS.format("2.500", 2500, 2.5))


def test_a_legacy_encodings_file_split_by_commas_is_no_hint(tmp_path: Path) -> None:
    """Excel writes `,` between cells where decimals take a point (the US's, the UK's): its cp1252
    file says nothing of a decimal comma."""
    text = f"id,a\n{LEAD},2.500\n"
    got = numbers(tmp_path / "l.csv", text.encode("cp1252"), "number", encoding="cp1252")
    assert got == [{"a": 2.5}]


@pytest.mark.parametrize("delimiter", [",", "\t", "|"])
def test_english_numbers_in_a_utf8_file_are_never_refused(tmp_path: Path, delimiter: str) -> None:
    cells = ["2.500", "2.000", "0.125", "1.5", "12.3456", "1234.567", "3"]
    lines = [f"id{delimiter}a{delimiter}b", *(f"{LEAD}{delimiter}{c}{delimiter}{c}" for c in cells)]
    got = numbers(tmp_path / "e.csv", "\n".join(lines).encode(), "number", "number")
    assert got == [{"a": float(c), "b": float(c)} for c in cells]

"""Values as typed: a workbook's number and boolean cells and JSON numbers and booleans keep their
type in `customFields`; in CSV, `--map "HEADER=customFields.NAME:TYPE"` gives one."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from bulk_updater import ConfigError, Source
from bulk_updater.inputs import ColumnMap, KeyPlan
from tests.inputs.conftest import jsonl, only_invalid, only_update, write

LEAD = "665d4e5f6a7b8c9d0e1f2a3b"
PIPEDRIVE = (
    "Person - ID,Person - Name,Person - Employees,Person - Customer,Person - Renewal,Person - Zip\n"
)
TYPED = {
    "Person - ID": "id",
    "Person - Name": "firstName",
    "Person - Employees": "customFields.employees:integer",
    "Person - Customer": "customFields.customer:boolean",
    "Person - Renewal": "customFields.renewal:date",
    "Person - Zip": "customFields.zip:text",
}


def test_a_typed_map_reads_a_pipedrive_export(tmp_path: Path) -> None:
    path = write(tmp_path / "people.csv", PIPEDRIVE + f"{LEAD},Ann,250,yes,2026-01-31,02134\n")
    (row,) = list(Source(path, columns=ColumnMap(TYPED)))
    assert only_update(row.item).customFields == {
        "employees": 250, "customer": True, "renewal": "2026-01-31", "zip": "02134",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("cells", "message"),
    [
        ("12 people,yes,2026-01-31", "column Person - Employees: '12 people' is not a number"),
        ("12.5,yes,2026-01-31", "column Person - Employees: '12.5' is not a whole number"),
        ("12,maybe,2026-01-31", "column Person - Customer: 'maybe' is not true or false"),
        ("12,no,31/01/2026", "column Person - Renewal: '31/01/2026' is not a date written as"),
    ],
)
def test_a_value_that_does_not_fit_its_type_is_an_invalid_row(
    tmp_path: Path, cells: str, message: str
) -> None:
    path = write(tmp_path / "people.csv", PIPEDRIVE + f"{LEAD},Ann,{cells},1\n")
    (row,) = list(Source(path, columns=ColumnMap(TYPED)))
    assert only_invalid(row.item).message.startswith(message)


@pytest.mark.parametrize(("cell", "value"), [("1201", 1201), ("-12.5", -12.5), (" 3e2 ", 300.0)])
def test_numbers(tmp_path: Path, cell: str, value: Any) -> None:
    path = write(tmp_path / "n.csv", f"id,Score\n{LEAD},{cell}\n")
    (row,) = list(Source(path, columns=ColumnMap({"Score": "customFields.score:number"})))
    assert only_update(row.item).customFields == {"score": value}


def test_without_a_type_a_csv_cell_is_text(tmp_path: Path) -> None:
    path = write(tmp_path / "n.csv", f"id,customFields.score\n{LEAD},1201\n")
    (row,) = list(Source(path))
    assert only_update(row.item).customFields == {"score": "1201"}


def test_json_numbers_and_booleans_keep_their_type(tmp_path: Path) -> None:
    path = jsonl(tmp_path / "in.jsonl", {"id": LEAD, "customFields.employees": 250,
                 "customFields": {"active": True, "ratio": 0.5}})  # fmt: skip
    (row,) = list(Source(path))
    assert only_update(row.item).customFields == {"employees": 250, "active": True, "ratio": 0.5}


def test_a_type_is_for_custom_fields_only() -> None:
    with pytest.raises(ConfigError, match=r"a type \(:number\) is for customFields\.<name> only"):
        ColumnMap.parse(["Phone=phone:number"])


def test_a_type_changes_the_map_resume_compares() -> None:
    plain = ColumnMap.parse(["Employees=customFields.employees"]).describe()
    typed = ColumnMap.parse(["Employees=customFields.employees:number"]).describe()
    assert plain != typed
    assert typed.endswith(":number")


@pytest.mark.parametrize(
    ("target", "said"),
    [
        ("customFields.employees:int", "`:int` is not a type"),
        ("customFields.active:Boolean", "`:Boolean` is not a type (types are written in lower"),
        ("customFields.x:", "`:` is followed by no type"),
        ("customFields.x: ", "`:` is followed by no type"),
    ],
)
def test_a_misspelt_type_is_refused_never_part_of_the_name(target: str, said: str) -> None:
    with pytest.raises(ConfigError) as info:
        ColumnMap.parse([f"Employees={target}"])
    assert said in str(info.value)
    assert "use :number, :integer, :boolean, :date or :text" in str(info.value)


def test_a_misspelt_type_in_a_job_file_map_is_refused_too(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="`:int` is not a type"):
        ColumnMap({"Employees": "customFields.employees:int"})


def test_a_custom_field_named_with_a_colon_takes_its_type_after_it(tmp_path: Path) -> None:
    path = write(tmp_path / "n.csv", f"id,Source\n{LEAD},ads\n")
    (row,) = list(Source(path, columns=ColumnMap({"Source": "customFields.utm:source:text"})))
    assert only_update(row.item).customFields == {"utm:source": "ads"}


JSON_TYPED = {
    "Employees": "customFields.employees:number",
    "Active": "customFields.active:boolean",
    "Renewal": "customFields.renewal:date",
    "Zip": "customFields.zip:text",
}


def test_a_typed_map_reads_json_lines_as_it_reads_csv(tmp_path: Path) -> None:
    path = jsonl(tmp_path / "in.jsonl",
                 {"id": LEAD, "Employees": "1201", "Active": "yes", "Renewal": "2026-01-31",
                  "Zip": 2134},
                 {"id": LEAD, "Employees": 250, "Active": False, "Zip": "02134"},
                 {"id": LEAD, "Employees": "1,201"},
                 {"id": LEAD, "Active": 2},
                 {"id": LEAD, "Employees": [1]})  # fmt: skip
    rows = list(Source(path, columns=ColumnMap(JSON_TYPED)))
    assert only_update(rows[0].item).customFields == {
        "employees": 1201, "active": True, "renewal": "2026-01-31", "zip": "2134"}  # fmt: skip
    assert only_update(rows[1].item).customFields == {
        "employees": 250, "active": False, "zip": "02134"}  # fmt: skip
    assert only_invalid(rows[2].item).message.startswith(
        "column Employees: '1,201' is 1201 if `,` separates thousands, or 1.201 if"
    )
    assert only_invalid(rows[3].item).message.startswith("column Active: '2' is not true or")
    assert only_invalid(rows[4].item).message == "column Employees: [1] is not a number"


def test_a_typed_map_reads_library_dicts() -> None:
    plan = KeyPlan(ColumnMap(JSON_TYPED))
    update = plan.parse({"id": LEAD, "Employees": 12.0, "Renewal": dt.date(2026, 1, 31)})
    assert only_update(update).customFields == {"employees": 12.0, "renewal": "2026-01-31"}
    wrong = plan.parse({"id": LEAD, "Renewal": 31})
    assert only_invalid(wrong).message.startswith("column Renewal: '31' is not a date")


def _numbers(tmp_path: Path, text: str, kind: str = "number") -> list[Any]:
    """Each row's `Umsatz` as a `:number` (or `kind`) custom field, or its problem."""
    path = write(tmp_path / "n.csv", text)
    columns = ColumnMap({"Umsatz": f"customFields.revenue:{kind}"})
    items = [row.item for row in Source(path, columns=columns)]
    return [
        item.message.removeprefix("column Umsatz: ") if hasattr(item, "message")
        else only_update(item).customFields["revenue"]  # type: ignore[index]
        for item in items
    ]  # fmt: skip


def test_a_german_excel_csv_never_sends_a_thousands_point_as_a_decimal_point(
    tmp_path: Path,
) -> None:
    """Excel in Germany writes `;` between cells, `.` between thousands and `,` before decimals."""
    rows = ["1.234,56", "2.500", "1.500.000", "12"]
    text = "id;Umsatz\n" + "".join(f"{LEAD};{cell}\n" for cell in rows)
    assert _numbers(tmp_path, text) == [
        "'1.234,56' has `.` separating thousands and a decimal comma; write it as 1234.56",
        "'2.500' is 2500 if `.` separates thousands (likely in this file), or 2.5 if it is a "
        "decimal point; write 2500 or 2.5, without separators",
        "'1.500.000' has `.` separating thousands; write it as 1500000",
        12,
    ]


def test_a_decimal_comma_in_a_comma_separated_file_makes_a_later_thousands_point_ambiguous(
    tmp_path: Path,
) -> None:
    """English data writes `1.250` for one and a quarter: refused only once a cell shows the
    file's numbers take a decimal comma."""
    text = f'id,Umsatz\n{LEAD},1.250\n{LEAD},"1,234"\n{LEAD},"12,5"\n{LEAD},2.500\n{LEAD},2.5\n'
    first, thousands, comma, grouped, plain = _numbers(tmp_path, text)
    assert first == 1.25
    assert thousands == (
        "'1,234' is 1234 if `,` separates thousands, or 1.234 if it is a decimal comma; write "
        "1234 or 1.234, without separators"
    )
    assert comma == "'12,5' has a decimal comma; write it as 12.5"
    assert grouped.startswith("'2.500' is 2500 if `.` separates thousands (likely in this file)")
    assert plain == 2.5


def test_a_whole_number_with_a_thousands_point_says_both_readings(tmp_path: Path) -> None:
    assert _numbers(tmp_path, f"id,Umsatz\n{LEAD},3.400\n", "integer") == [
        "'3.400' is 3400 if `.` separates thousands, or 3.4 if it is a decimal point; write 3400 "
        "or 3.4, without separators"
    ]

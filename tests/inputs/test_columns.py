"""The row schema (`inputs/columns.py`): which column means which field, how a CSV cell or a JSON
value becomes that field's value, and the message an invalid row gets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bulk_updater import InputError, LeadUpdate, Source
from bulk_updater.client import dumps
from bulk_updater.inputs.columns import ByEmail, Invalid
from tests.conftest import write_csv
from tests.inputs.conftest import jsonl, only_invalid, only_update, read_all, write

#: Ids as a cell or a JSON value can hold them; none is a plain token.
HOSTILE_ID_CELLS = [
    "../account",
    "a/b",
    "x?y=1",
    "%2e%2e%2f",
    "a#b",
    "a b",
    "a\tb",
    "a\x01b",
    "a\x1bb",
    "a\x7fb",
    "a\nb",
    "a\r\nb",
    "..",
    ".",
    "a\\b",
    "a;b",
    "a,b",
    "caf\u00e9",
    "\uff49\uff44",  # fullwidth "id"
    "a" * 129,
]


# --- the header


def test_underscore_id_column(tmp_path: Path) -> None:
    rows = read_all(write(tmp_path / "in.csv", "_id,country\nlead1,FR\n"))
    update = only_update(rows[0][1])
    assert update.id == "lead1"
    assert update.body() == {"country": "FR"}


def test_no_id_column(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no `id` column"):
        Source(write(tmp_path / "in.csv", "firstName,city\nAnn,X\n"))


def test_an_email_column_without_an_id_column_matches_by_email(tmp_path: Path) -> None:
    ((_, item),) = read_all(write(tmp_path / "in.csv", "email,city\n Ann@X.com ,Oslo\n"))
    assert isinstance(item, ByEmail)
    assert item.email == "Ann@X.com"
    assert item.update.body() == {"city": "Oslo"}


@pytest.mark.parametrize(
    ("column", "suggestion"),
    [
        ("jobtitel", "jobTitle"),
        ("tag", "tags"),
        ("compnyName", "companyName"),
        ("Phone Number", "phone"),
        ("Country/Region", "country"),
        ("Job Titel", "jobTitle"),
        ("First", "firstName"),
    ],
)
def test_unknown_column_is_named_with_the_closest_known_one(
    tmp_path: Path, column: str, suggestion: str
) -> None:
    path = write(tmp_path / "in.csv", f"id,{column}\nlead1,x\n")
    with pytest.raises(InputError) as info:
        Source(path)
    message = str(info.value)
    assert f"`{column}`" in message
    assert f"did you mean `{suggestion}`" in message


def test_unknown_column_without_a_near_miss_is_still_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown column `zzzqqq`"):
        Source(write(tmp_path / "in.csv", "id,zzzqqq\nlead1,x\n"))


def test_duplicate_column_is_a_whole_file_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="twice"):
        Source(write(tmp_path / "in.csv", "id,city,city\nlead1,a,b\n"))


# --- CSV cells: text, tags, customFields, email


def test_all_text_columns_are_sent_as_given(tmp_path: Path) -> None:
    columns = [
        "firstName",
        "lastName",
        "companyName",
        "jobTitle",
        "phone",
        "linkedinUrl",
        "city",
        "state",
        "country",
    ]
    values = [f"v{i}" for i in range(len(columns))]
    text = "id," + ",".join(columns) + "\nlead1," + ",".join(values) + "\n"
    rows = read_all(write(tmp_path / "in.csv", text))
    assert only_update(rows[0][1]).body() == dict(zip(columns, values, strict=True))


def test_empty_cells_and_cells_of_spaces_are_not_sent(tmp_path: Path) -> None:
    text = "id,firstName,lastName,phone\nlead1,,Doe,\nlead2, ,Smith,\xa0\t\nlead3, ,,\n"
    rows = read_all(write(tmp_path / "in.csv", text))
    assert only_update(rows[0][1]).body() == {"lastName": "Doe"}
    assert only_update(rows[1][1]).body() == {"lastName": "Smith"}
    assert "no field" in only_invalid(rows[2][1]).message


@pytest.mark.parametrize(
    "cell",
    ["\u200b", "\ufeff", "\u2060", "\u00ad", "\u200e", "\u3000", "\u2028", " \u200b\u00a0\t"],
    ids=["zwsp", "bom", "joiner", "soft-hyphen", "lrm", "ideographic", "line-sep", "mixed"],
)
def test_a_cell_that_shows_nothing_is_empty_too(tmp_path: Path, cell: str) -> None:
    """What copying from Excel or a CRM leaves behind never replaces a field with nothing seen."""
    path = write_csv(tmp_path / "in.csv", ["id", "city", "tags", "jobTitle"], [
        ["lead1", cell, cell, "CEO"],
        ["lead2", cell, "", cell],
    ])  # fmt: skip
    rows = read_all(str(path))
    assert only_update(rows[0][1]).body() == {"jobTitle": "CEO"}
    assert "no field" in only_invalid(rows[1][1]).message


@pytest.mark.parametrize(
    "cell", ["\u200bParis", "Jean\u00a0Dupont", "\u00a0x", "Émile", "\u200b\x1f"]
)
def test_a_cell_with_something_seen_in_it_is_sent_whole(tmp_path: Path, cell: str) -> None:
    path = write_csv(tmp_path / "in.csv", ["id", "city"], [["lead1", cell]])
    item = read_all(str(path))[0][1]
    if "\x1f" in cell:  # a control character is never a space
        assert "control character" in only_invalid(item).message
    else:
        assert only_update(item).body() == {"city": cell}


@pytest.mark.parametrize(
    ("cell", "tags"),
    [
        ("vip", ["vip"]),
        ("vip;enterprise", ["vip", "enterprise"]),
        (" vip ; enterprise ;", ["vip", "enterprise"]),
        ('["vip","enterprise"]', ["vip", "enterprise"]),
        ('["a;b", "c, d"]', ["a;b", "c, d"]),
        ("[]", []),
    ],
)
def test_tags_as_list_or_json_array(tmp_path: Path, cell: str, tags: list[str]) -> None:
    path = write_csv(tmp_path / "in.csv", ["id", "tags"], [["lead1", cell]])
    rows = read_all(str(path))
    assert only_update(rows[0][1]).body() == {"tags": tags}


@pytest.mark.parametrize(
    "cell",
    ['"[""vip"""', '"[1, 2]"', '"[""a"", null]"', '"[""a"", [""b""]]"', ";", " ; ; "],
)
def test_malformed_tags_are_invalid_naming_the_column(tmp_path: Path, cell: str) -> None:
    rows = read_all(write(tmp_path / "in.csv", f"id,tags,city\nlead1,{cell},Paris\nlead2,,X\n"))
    assert len(rows) == 2
    bad = only_invalid(rows[0][1])
    assert bad.id == "lead1"
    assert "tags" in bad.message
    assert only_update(rows[1][1]).body() == {"city": "X"}


def test_custom_field_columns_are_sent_as_strings(tmp_path: Path) -> None:
    text = "id,customFields.industry,customFields.score,customFields.empty\nlead1,SaaS,42,\n"
    rows = read_all(write(tmp_path / "in.csv", text))
    assert only_update(rows[0][1]).body() == {"customFields": {"industry": "SaaS", "score": "42"}}


def test_custom_fields_json_column_keeps_json_types_and_merges_with_columns(
    tmp_path: Path,
) -> None:
    text = (
        "id,customFields,customFields.region\n"
        'lead1,"{""score"": 42, ""paid"": true, ""ratio"": 0.5, ""note"": null}",EU\n'
    )
    rows = read_all(write(tmp_path / "in.csv", text))
    body = only_update(rows[0][1]).body()
    assert json.dumps(body, sort_keys=True) == json.dumps(
        {"customFields": {"score": 42, "paid": True, "ratio": 0.5, "note": None, "region": "EU"}},
        sort_keys=True,
    )


@pytest.mark.parametrize(
    "cell",
    [
        '"{""a"": 1"',  # truncated
        '"[1, 2]"',  # not an object
        '"""text"""',  # a JSON string
        "42",
        '"{""a"": {""nested"": 1}}"',  # values must be scalars
        '"{""a"": [1]}"',
    ],
)
def test_malformed_custom_fields_json_is_invalid_naming_the_column(
    tmp_path: Path, cell: str
) -> None:
    rows = read_all(write(tmp_path / "in.csv", f"id,customFields,city\nlead1,{cell},X\n"))
    bad = only_invalid(rows[0][1])
    assert "customFields" in bad.message
    assert bad.id == "lead1"


@pytest.mark.parametrize(
    "cell",
    [
        pytest.param('"{""score"": NaN}"', id="nan"),
        pytest.param('"{""score"": Infinity}"', id="infinity"),
        pytest.param('"{""score"": -Infinity}"', id="-infinity"),
        pytest.param('"{""big"": 100000000000000000000000000000}"', id="100-bit-int"),
        pytest.param('"{""name"": ""\\ud800""}"', id="lone-surrogate-custom"),
        pytest.param('"[""\\udfff""]"', id="lone-surrogate-tag"),
    ],
)
def test_json_cells_that_cannot_be_sent_as_json_are_invalid(tmp_path: Path, cell: str) -> None:
    """NaN/Infinity are not JSON and a lone surrogate is not UTF-8: such a cell must make the row
    `invalid`, not an update that the client fails to encode (or silently sends as `null`).
    A 100-bit integer may be refused too, or sent exactly; never lost."""
    column = "tags" if cell.startswith('"[') else "customFields"
    rows = read_all(write(tmp_path / "in.csv", f"id,{column}\nlead1,{cell}\n"))
    assert len(rows) == 1
    item = rows[0][1]
    if "big" in cell and isinstance(item, LeadUpdate):
        assert json.loads(dumps(item.body())) == {"customFields": {"big": 10**29}}
    else:
        assert column in only_invalid(item).message


def test_email_is_a_label_and_never_sent(tmp_path: Path) -> None:
    rows = read_all(write(tmp_path / "in.csv", "id,email,city\nlead1,a@example.com,Oslo\n"))
    update = only_update(rows[0][1])
    assert update.email == "a@example.com"
    assert update.body() == {"city": "Oslo"}
    assert "email" not in update.body()


def test_email_label_is_kept_on_invalid_rows(tmp_path: Path) -> None:
    rows = read_all(write(tmp_path / "in.csv", "id,email,city\n../x,a@example.com,Oslo\n"))
    bad = only_invalid(rows[0][1])
    assert bad.email == "a@example.com"
    assert bad.id == "../x"


# --- CSV rows that cannot be sent


def test_row_with_nothing_to_update_is_invalid(tmp_path: Path) -> None:
    rows = read_all(write(tmp_path / "in.csv", "id,email,city\nlead1,a@example.com,\n"))
    bad = only_invalid(rows[0][1])
    assert "no field" in bad.message


def test_empty_id_is_invalid_naming_the_column(tmp_path: Path) -> None:
    rows = read_all(write(tmp_path / "in.csv", "id,city\n,Oslo\n"))
    bad = only_invalid(rows[0][1])
    assert "column id" in bad.message
    assert "empty" in bad.message


#: Spaces around an id: spreadsheet debris in a cell (trimmed), hostile in a JSON string.
PADDED_IDS = [" lead1", "lead1 ", "lead1\u2028", "\xa0lead1\t"]


@pytest.mark.parametrize("lead_id", PADDED_IDS)
def test_spaces_around_an_id_cell_are_trimmed(tmp_path: Path, lead_id: str) -> None:
    path = write_csv(tmp_path / "in.csv", ["id", "city"], [[lead_id, "Oslo"]])
    ((_, item),) = read_all(str(path))
    assert only_update(item).id == "lead1"


@pytest.mark.parametrize("lead_id", HOSTILE_ID_CELLS)
def test_hostile_ids_in_csv_are_invalid(tmp_path: Path, lead_id: str) -> None:
    path = write_csv(tmp_path / "in.csv", ["id", "city"], [[lead_id, "Oslo"], ["lead2", "Rome"]])
    rows = read_all(str(path))
    assert [row for row, _ in rows] == [1, 2]
    bad = only_invalid(rows[0][1])
    assert bad.id == lead_id
    assert "column id" in bad.message
    assert only_update(rows[1][1]).id == "lead2"


# --- JSON records


@pytest.mark.parametrize("bom", [False, True])
def test_jsonl_rows(tmp_path: Path, bom: bool) -> None:
    path = jsonl(
        tmp_path / "in.jsonl",
        {"id": "lead1", "firstName": "Zoë", "tags": ["vip", "x;y"]},
        "",
        {"_id": "lead2", "customFields": {"score": 7, "paid": False}, "customFields.r": "EU"},
        {"id": "lead3", "city": None, "country": "FR"},
        bom=bom,
    )
    rows = read_all(path)
    assert [row for row, _ in rows] == [1, 2, 3]
    assert only_update(rows[0][1]).body() == {"firstName": "Zoë", "tags": ["vip", "x;y"]}
    body = only_update(rows[1][1]).body()
    assert json.dumps(body, sort_keys=True) == json.dumps(
        {"customFields": {"score": 7, "paid": False, "r": "EU"}}, sort_keys=True
    )
    assert only_update(rows[2][1]).body() == {"country": "FR"}


@pytest.mark.parametrize(
    ("record", "word"),
    [
        pytest.param({"id": "lead1", "tags": "vip;x"}, "tags", id="tags-string"),
        pytest.param({"id": "lead1", "tags": [1, 2]}, "tags", id="tags-numbers"),
        pytest.param({"id": "lead1", "customFields": ["a"]}, "customFields", id="custom-list"),
        pytest.param(
            {"id": "lead1", "customFields": {"a": {"b": 1}}}, "customFields", id="custom-nested"
        ),
        pytest.param(
            {"id": "lead1", "customFields": {"a": float("nan")}}, "customFields", id="custom-nan"
        ),
        pytest.param({"id": "lead1", "firstName": "\ud800"}, "firstName", id="lone-surrogate"),
        pytest.param({"id": "lead1", "firstName": 5}, "firstName", id="text-number"),
        pytest.param({"id": "lead1"}, "no field", id="nothing"),
        pytest.param({"id": "lead1", "city": None}, "no field", id="only-null"),
        pytest.param({"id": "lead1", "jobtitel": "CTO"}, "jobTitle", id="unknown-key"),
        pytest.param({"id": 12345, "city": "X"}, "id", id="id-number"),
        pytest.param({"id": None, "city": "X"}, "id", id="id-null"),
        pytest.param({"id": ["a"], "city": "X"}, "id", id="id-list"),
        pytest.param({"city": "X"}, "id", id="no-id"),
        pytest.param({"id": "a", "_id": "a", "city": "X"}, "id", id="id-and-_id"),
    ],
)
def test_jsonl_row_problems_are_invalid_naming_the_key(
    tmp_path: Path, record: dict[str, Any], word: str
) -> None:
    path = tmp_path / "in.jsonl"
    # json.dumps writes NaN and lone surrogates as escapes, just as a careless exporter would
    path.write_text(
        json.dumps(record) + "\n" + json.dumps({"id": "ok", "city": "Y"}) + "\n", "utf-8"
    )
    rows = read_all(str(path))
    assert [row for row, _ in rows] == [1, 2]
    bad = only_invalid(rows[0][1])
    assert word in bad.message
    assert only_update(rows[1][1]).id == "ok"


def test_a_json_record_names_all_its_unknown_keys_and_both_ways_out(tmp_path: Path) -> None:
    record = {"id": "lead1", "createdAt": "2026-01-01", "phoneNumber": "+1 555", "owner": {}}
    (row,) = read_all(jsonl(tmp_path / "in.jsonl", record))
    assert only_invalid(row[1]).message == (
        "unknown columns `createdAt`, `phoneNumber` (did you mean `phone`?), `owner`; say what "
        'they are with --map "HEADER=FIELD" (FIELD: id, email, a lead field, customFields.NAME, '
        "or - to drop it), or leave them out with --ignore-unknown-columns"
    )
    first = {"id": "lead1", "city": "a", "City": "b", "owner": "x"}  # met first: the one said
    (row,) = read_all(jsonl(tmp_path / "first.jsonl", first))
    assert only_invalid(row[1]).message == "keys `city` and `City` both mean city; keep one"


def test_the_keys_of_json_lines_are_planned_as_met(tmp_path: Path) -> None:
    records = [{"_id": "lead1", "phoneNumber": "+1 555", "city": "Oslo"}, {"id": "lead2", "x": 1}]
    path = jsonl(tmp_path / "in.jsonl", *records)
    with Source(path, ignore_unknown_columns=True) as source:
        assert source.plan() == []  # nothing met yet
        list(source)
        assert source.plan() == [
            "_id → id",
            "phoneNumber → dropped (did you mean `phone`?)",
            "city → city",
            "id → id",
            "x → dropped",
        ]
    with Source(path) as refused:
        list(refused)
        assert "phoneNumber → unknown (did you mean `phone`?)" in refused.plan()


def test_an_email_beside_an_id_in_json_is_a_label_never_sent(tmp_path: Path) -> None:
    rows = read_all(jsonl(tmp_path / "in.jsonl", {"id": "lead1", "email": "a@b.c", "city": "X"}))
    update = only_update(rows[0][1])
    assert update.email == "a@b.c"
    assert update.body() == {"city": "X"}


@pytest.mark.parametrize("lead_id", HOSTILE_ID_CELLS + PADDED_IDS)
def test_hostile_ids_in_jsonl_are_invalid(tmp_path: Path, lead_id: str) -> None:
    rows = read_all(jsonl(tmp_path / "in.jsonl", {"id": lead_id, "city": "X"}))
    bad = only_invalid(rows[0][1])
    assert bad.id == lead_id
    assert "column id" in bad.message


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_a_title_line_above_the_header_is_named_as_such(tmp_path: Path, suffix: str) -> None:
    """A sheet made by hand often starts with a title: the error says the first line must be
    the header, rather than only that `Leads export` is an unknown column."""
    path = tmp_path / f"in{suffix}"
    lines = [["Leads export 2026-12-01"], [], ["id", "city"], ["lead1", "Oslo"]]
    if suffix == ".csv":
        path.write_text("\n".join(",".join(line) for line in lines) + "\n")
    else:
        import openpyxl

        book = openpyxl.Workbook()
        for line in lines:
            book.active.append(line)  # type: ignore[union-attr]
        book.save(path)
    with pytest.raises(InputError) as info:
        Source(path)
    message = str(info.value)
    assert "the first line, `Leads export 2026-12-01`, is a title, not the header" in message
    assert "the header looks to be line 3 (`id`, `city`); pass --header-row 3" in message
    assert "--map" not in message


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_a_table_that_starts_in_column_b_is_read(tmp_path: Path, suffix: str) -> None:
    """A margin column on the left is skipped; a value in it (under no header) makes its row
    invalid rather than being dropped unseen."""
    path = tmp_path / f"in{suffix}"
    lines = [["", "id", "city"], ["", "lead1", "Oslo"], ["note", "lead2", "Paris"]]
    if suffix == ".csv":
        path.write_text("\n".join(",".join(line) for line in lines) + "\n")
    else:
        import openpyxl

        book = openpyxl.Workbook()
        for line in lines:
            book.active.append([cell or None for cell in line])  # type: ignore[union-attr]
        book.save(path)
    first, second = (row.item for row in Source(path))
    assert isinstance(first, LeadUpdate)
    assert (first.id, first.city) == ("lead1", "Oslo")
    assert isinstance(second, Invalid)
    assert (second.id, second.message) == ("lead2", "column 1 holds a value but has no header")

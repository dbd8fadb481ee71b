"""Reading input: CSV in full, JSON lines, standard input, whole-file errors and row validation."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from bulk_updater import BulkUpdaterError, ConfigError, InputError, Invalid, LeadUpdate, Source
from bulk_updater.client import dumps
from bulk_updater.inputs import numbered

HOSTILE_IDS = [
    "../account",
    "a/b",
    "x?y=1",
    "%2e%2e%2f",
    "a#b",
    "a b",
    " lead1",
    "lead1 ",
    "a\tb",
    "a\x01b",
    "a\x1bb",
    "a\x7fb",
    "a\nb",
    "a\r\nb",
    "lead1\u2028",
    "..",
    ".",
    "a\\b",
    "a;b",
    "a,b",
    "caf\u00e9",
    "\uff49\uff44",  # fullwidth "id"
    "a" * 129,
]


def write(path: Path, text: str, *, bom: bool = False) -> str:
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return str(path)


def read_all(path: str, **kwargs: Any) -> list[tuple[int, LeadUpdate | Invalid]]:
    return list(Source(path, **kwargs))


def only_update(item: LeadUpdate | Invalid) -> LeadUpdate:
    assert isinstance(item, LeadUpdate), item
    return item


def only_invalid(item: LeadUpdate | Invalid) -> Invalid:
    assert isinstance(item, Invalid), item
    return item


# --- CSV: encoding, quoting, line endings


@pytest.mark.parametrize("bom", [False, True])
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_csv_with_or_without_bom_and_any_line_ending(
    tmp_path: Path, bom: bool, newline: str
) -> None:
    text = newline.join(["id,firstName,city", "lead1,Ann,Paris", "lead2,Bob,"]) + newline
    rows = read_all(write(tmp_path / "in.csv", text, bom=bom))
    assert [row for row, _ in rows] == [1, 2]
    assert only_update(rows[0][1]).body() == {"firstName": "Ann", "city": "Paris"}
    assert only_update(rows[1][1]).body() == {"firstName": "Bob"}


def test_bom_before_a_quoted_header(tmp_path: Path) -> None:
    rows = read_all(write(tmp_path / "in.csv", '"id","jobTitle"\nlead1,CTO\n', bom=True))
    assert only_update(rows[0][1]).body() == {"jobTitle": "CTO"}


def test_rfc4180_quoting_keeps_commas_quotes_and_newlines_inside_cells(tmp_path: Path) -> None:
    text = (
        "id,companyName,jobTitle,city\r\n"
        'lead1,"Acme, Inc.","Head of ""Growth""","line one\r\nline two"\r\n'
        'lead2,"multi\nline\nname","a\rb",""\r\n'
    )
    rows = read_all(write(tmp_path / "in.csv", text))
    assert len(rows) == 2
    assert only_update(rows[0][1]).body() == {
        "companyName": "Acme, Inc.",
        "jobTitle": 'Head of "Growth"',
        "city": "line one\r\nline two",
    }
    assert only_update(rows[1][1]).body() == {
        "companyName": "multi\nline\nname",
        "jobTitle": "a\rb",
    }


def test_non_ascii_text_is_kept(tmp_path: Path) -> None:
    text = "id,firstName,city\nlead1,Zoë,Zürich 🏔\n"
    rows = read_all(write(tmp_path / "in.csv", text))
    assert only_update(rows[0][1]).body() == {"firstName": "Zoë", "city": "Zürich 🏔"}


def test_empty_cell_is_not_sent_and_whitespace_cell_is(tmp_path: Path) -> None:
    text = "id,firstName,lastName,phone\nlead1,,Doe,\nlead2, ,,\n"
    rows = read_all(write(tmp_path / "in.csv", text))
    assert only_update(rows[0][1]).body() == {"lastName": "Doe"}
    assert only_update(rows[1][1]).body() == {"firstName": " "}


def test_blank_lines_are_not_records_and_rows_are_numbered_without_the_header(
    tmp_path: Path,
) -> None:
    text = "id,firstName\n\nlead1,A\n\r\n\nlead2,B\n\n"
    path = write(tmp_path / "in.csv", text)
    rows = read_all(path)
    assert [(row, item.id) for row, item in rows] == [(1, "lead1"), (2, "lead2")]
    source = Source(path)
    try:
        assert source.count() == 2
    finally:
        source.close()


def test_underscore_id_column(tmp_path: Path) -> None:
    rows = read_all(write(tmp_path / "in.csv", "_id,country\nlead1,FR\n"))
    update = only_update(rows[0][1])
    assert update.id == "lead1"
    assert update.body() == {"country": "FR"}


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


# --- CSV: tags, customFields, email


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
    path = tmp_path / "in.csv"
    with open(path, "w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([["id", "tags"], ["lead1", cell]])
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


# --- CSV: row-level problems


def test_row_with_nothing_to_update_is_invalid(tmp_path: Path) -> None:
    rows = read_all(write(tmp_path / "in.csv", "id,email,city\nlead1,a@example.com,\n"))
    bad = only_invalid(rows[0][1])
    assert "no field" in bad.message


def test_empty_id_is_invalid_naming_the_column(tmp_path: Path) -> None:
    rows = read_all(write(tmp_path / "in.csv", "id,city\n,Oslo\n"))
    bad = only_invalid(rows[0][1])
    assert "column id" in bad.message
    assert "empty" in bad.message


@pytest.mark.parametrize("lead_id", HOSTILE_IDS)
def test_hostile_ids_in_csv_are_invalid(tmp_path: Path, lead_id: str) -> None:
    path = tmp_path / "in.csv"
    with open(path, "w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([["id", "city"], [lead_id, "Oslo"], ["lead2", "Rome"]])
    rows = read_all(str(path))
    assert [row for row, _ in rows] == [1, 2]
    bad = only_invalid(rows[0][1])
    assert bad.id == lead_id
    assert "column id" in bad.message
    assert only_update(rows[1][1]).id == "lead2"


def test_row_with_wrong_number_of_cells_is_invalid_and_reading_goes_on(tmp_path: Path) -> None:
    text = "id,firstName,city\nlead1,A\nlead2,B,C,D\nlead3,C,X\n"
    rows = read_all(write(tmp_path / "in.csv", text))
    assert [row for row, _ in rows] == [1, 2, 3]
    assert "cells" in only_invalid(rows[0][1]).message
    assert "cells" in only_invalid(rows[1][1]).message
    assert only_update(rows[2][1]).body() == {"firstName": "C", "city": "X"}


def test_bad_utf8_in_one_row_blames_that_row_only(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(b"id,firstName\nlead1,Ann\nlead2,Ren\xe9e\nlead3,Bob\n")
    rows = read_all(str(path))
    assert [row for row, _ in rows] == [1, 2, 3]
    assert "UTF-8" in only_invalid(rows[1][1]).message
    assert only_update(rows[2][1]).body() == {"firstName": "Bob"}


def test_unterminated_quote_at_end_of_file_is_an_invalid_row(tmp_path: Path) -> None:
    """A quote opened and never closed swallows the rest of the file into one cell; the row must
    be reported `invalid` (check its quotes), not sent with the rest of the file as its value."""
    text = 'id,firstName\nlead1,Ann\nlead2,"Bob\nlead3,Carl\nlead4,Dan\n'
    rows = read_all(write(tmp_path / "in.csv", text))
    assert only_update(rows[0][1]).body() == {"firstName": "Ann"}
    assert all(isinstance(item, Invalid) for _, item in rows[1:])
    assert any("quote" in item.message for _, item in rows[1:] if isinstance(item, Invalid))


def test_stray_quote_after_a_quoted_cell_does_not_swallow_the_next_row(tmp_path: Path) -> None:
    text = 'id,firstName\nlead1,"Ann"x\nlead2,Bob\n'
    rows = read_all(write(tmp_path / "in.csv", text))
    assert len(rows) == 2
    assert only_update(rows[1][1]).body() == {"firstName": "Bob"}


# --- CSV: whole-file errors


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        Source(str(tmp_path / "missing.csv"))


def test_folder_instead_of_file(tmp_path: Path) -> None:
    folder = tmp_path / "dir.csv"
    folder.mkdir()
    with pytest.raises(InputError, match="folder"):
        Source(str(folder))


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path: Path) -> None:
    path = Path(write(tmp_path / "in.csv", "id,city\nlead1,X\n"))
    path.chmod(0)
    try:
        with pytest.raises(InputError, match="permission"):
            Source(str(path))
    finally:
        path.chmod(0o600)


def test_path_through_a_file_cannot_be_read(tmp_path: Path) -> None:
    parent = write(tmp_path / "file", "x")
    with pytest.raises(InputError, match="cannot be read"):
        Source(parent + "/in.csv")


def test_no_id_column(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no `id` column"):
        Source(write(tmp_path / "in.csv", "email,city\na@example.com,X\n"))


def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="empty"):
        Source(write(tmp_path / "in.csv", ""))


def test_header_only_file_has_no_rows(tmp_path: Path) -> None:
    assert read_all(write(tmp_path / "in.csv", "id,city\n")) == []


@pytest.mark.parametrize(
    ("column", "suggestion"),
    [
        ("jobtitle", "jobTitle"),
        ("firstname", "firstName"),
        ("Email", "email"),
        ("tag", "tags"),
        ("compnyName", "companyName"),
        ("customfields.industry", "customFields.industry"),
        ("CustomFields", "customFields"),
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


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10",
        b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00",  # an .xlsx is a zip
        "id,city\nlead1,Oslo\n".encode("utf-16"),
    ],
)
def test_file_that_is_not_text(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(data)
    with pytest.raises(InputError, match="not a text file"):
        Source(str(path))


def test_header_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes("id,pr\u00e9nom\nlead1,x\n".encode("latin-1"))
    with pytest.raises(InputError, match="UTF-8"):
        Source(str(path))


def test_input_error_is_a_bulk_updater_error() -> None:
    assert issubclass(InputError, BulkUpdaterError)


def test_unknown_extension_needs_a_format(tmp_path: Path) -> None:
    path = write(tmp_path / "in.txt", "id,city\nlead1,X\n")
    with pytest.raises(ConfigError, match="--format"):
        Source(path)
    rows = read_all(path, format="csv")
    assert only_update(rows[0][1]).body() == {"city": "X"}


# --- JSON lines


def jsonl(path: Path, *records: object, bom: bool = False) -> str:
    text = "".join(
        (r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in records
    )
    return write(path, text, bom=bom)


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
        pytest.param({"id": "lead1", "email": "a@b.c", "city": "X"}, "email", id="email"),
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
        pytest.param({"id": "lead1", "jobtitle": "CTO"}, "jobTitle", id="unknown-key"),
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


@pytest.mark.parametrize("lead_id", HOSTILE_IDS)
def test_hostile_ids_in_jsonl_are_invalid(tmp_path: Path, lead_id: str) -> None:
    rows = read_all(jsonl(tmp_path / "in.jsonl", {"id": lead_id, "city": "X"}))
    bad = only_invalid(rows[0][1])
    assert bad.id == lead_id
    assert "column id" in bad.message


@pytest.mark.parametrize(
    "line", ["not json", '{"id": "lead1", "city": ', "[1, 2]", '"a string"', "42", "null"]
)
def test_jsonl_line_that_is_not_an_object_is_invalid(tmp_path: Path, line: str) -> None:
    rows = read_all(jsonl(tmp_path / "in.jsonl", line, {"id": "lead2", "city": "X"}))
    assert [row for row, _ in rows] == [1, 2]
    assert "line" in only_invalid(rows[0][1]).message
    assert only_update(rows[1][1]).id == "lead2"


def test_jsonl_is_chosen_by_extension(tmp_path: Path) -> None:
    for name in ("in.jsonl", "in.NDJSON"):
        rows = read_all(jsonl(tmp_path / name, {"id": "lead1", "city": "X"}))
        assert only_update(rows[0][1]).body() == {"city": "X"}


def test_jsonl_that_is_not_text(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"id": "a"}\n\x00\x01\x02')
    with pytest.raises(InputError, match="not a text file"):
        Source(str(path))


# --- standard input


def fake_stdin(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    """What `sys.stdin` is: text over a buffered binary stream (`Source` reads `.buffer`)."""
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(data))))


def test_stdin_needs_a_format() -> None:
    with pytest.raises(ConfigError, match="--format"):
        Source("-")


def test_stdin_csv(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_stdin(monkeypatch, b'\xef\xbb\xbfid,city\nlead1,"Oslo, NO"\n../x,Rome\n')
    source = Source("-", format="csv")
    assert source.is_stdin
    assert source.count() is None
    rows = list(source)
    assert only_update(rows[0][1]).body() == {"city": "Oslo, NO"}
    assert "column id" in only_invalid(rows[1][1]).message


async def test_stdin_jsonl_read_in_a_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    records = [{"id": f"lead{i}", "city": str(i)} for i in range(600)]
    fake_stdin(monkeypatch, "".join(json.dumps(r) + "\n" for r in records).encode())
    source = Source("-", format="jsonl")
    rows = [pair async for pair in numbered(source)]
    assert [row for row, _ in rows] == list(range(1, 601))
    assert [only_update(item).body() for _, item in rows] == [{"city": str(i)} for i in range(600)]


def test_stdin_whole_file_error_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_stdin(monkeypatch, b"id,jobtitle\nlead1,CTO\n")
    with pytest.raises(InputError, match="did you mean `jobTitle`"):
        Source("-", format="csv")


def test_source_accepts_a_pathlib_path(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text("id,city\nabc,Oslo\n", encoding="utf-8")
    assert [row for row, _ in Source(path)] == [1]

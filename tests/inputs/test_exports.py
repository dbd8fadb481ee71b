"""Files as people export them: human headers, a column map, extra columns, Excel's encodings and
delimiters, spreadsheet debris. Every file here is written byte by byte."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bulk_updater import ConfigError, InputError, Invalid, LeadUpdate, Source
from bulk_updater.inputs.record_keys import parse_mapping
from bulk_updater.inputs.schema import field_column, normal
from tests.inputs.conftest import only_invalid, only_update, read_all

LEAD = "665d4e5f6a7b8c9d0e1f2a3b"


def write_bytes(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


# --- 1. header matching


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("First Name", "firstName"),
        ("first_name", "firstName"),
        ("FIRSTNAME", "firstName"),
        ("Job Title", "jobTitle"),
        ("job-title", "jobTitle"),
        ("LinkedIn URL", "linkedinUrl"),
        ("Company Name", "companyName"),
        (" ID ", "id"),
        ("_id", "id"),
        ("E-mail", "email"),
        ("TAGS", "tags"),
        ("custom_fields", "customFields"),
    ],
)
def test_headers_match_fields_ignoring_case_spaces_underscores_and_dashes(
    tmp_path: Path, header: str, field: str
) -> None:
    column = field_column(header)
    assert column is not None
    assert str(column) == field


def test_a_custom_field_keeps_its_name_as_written(tmp_path: Path) -> None:
    path = write_bytes(
        tmp_path,
        "in.csv",
        f"ID,Custom Fields.Region,custom_fields.Deal Size\n{LEAD},EU,big\n".encode(),
    )
    ((_, item),) = read_all(path)
    assert only_update(item).body() == {"customFields": {"Region": "EU", "Deal Size": "big"}}


@pytest.mark.parametrize("header", ["Record ID", "Lead ID", "Phone Number", "Name", "Owner"])
def test_nothing_cleverer_is_guessed(header: str) -> None:
    assert field_column(header) is None


@given(st.lists(st.sampled_from(
    ["id", "ID", "_id", "First Name", "first_name", "firstName", "FIRSTNAME", "Job Title",
     "jobTitle", "tags", "Tags", "customFields.a", "Custom Fields.a", "city", "City", "email"]
), min_size=1, max_size=6, unique=True))  # fmt: skip
def test_two_headers_never_silently_mean_one_field(tmp_path_factory: pytest.TempPathFactory,
                                                   header: list[str]) -> None:  # fmt: skip
    """Either every header has a field of its own, or the file is refused naming both."""
    path = tmp_path_factory.mktemp("h") / "in.csv"
    path.write_text(",".join(header) + "\n" + ",".join("x" for _ in header) + "\n")
    fields = [str(field_column(h)) for h in header]
    if len(set(fields)) < len(fields):
        with pytest.raises(InputError, match=r"both mean|appears twice"):
            Source(str(path))
    elif "id" not in fields and "email" not in fields:
        with pytest.raises(InputError, match="no `id` column"):
            Source(str(path))
    else:
        Source(str(path)).close()


# --- 2. the column map


def test_a_map_says_what_a_column_is(tmp_path: Path) -> None:
    path = write_bytes(
        tmp_path, "in.csv",
        f"Lead ID,Phone Number,Region,Owner\n{LEAD},4155550100,EU,Ann\n".encode(),
    )  # fmt: skip
    columns = {"Lead ID": "id", "Phone Number": "phone", "Region": "customFields.Region",
               "Owner": "-"}  # fmt: skip
    ((_, item),) = read_all(path, columns=columns)
    update = only_update(item)
    assert update.id == LEAD
    assert update.body() == {"phone": "4155550100", "customFields": {"Region": "EU"}}


@pytest.mark.parametrize("target", ["phone number", "customFields.", "nope"])
def test_a_map_to_no_field_is_refused_saying_what_fields_are(tmp_path: Path, target: str) -> None:
    path = write_bytes(tmp_path, "in.csv", f"id,Phone\n{LEAD},1\n".encode())
    with pytest.raises(ConfigError, match="is not a field"):
        Source(path, columns={"Phone": target})


# --- 3. unknown columns


def test_every_unknown_column_is_named_at_once_with_the_ways_out(tmp_path: Path) -> None:
    header = "Record ID,First Name,Owner,Last Activity,Phone Number,Country/Region"
    path = write_bytes(tmp_path, "in.csv", f"{header}\n1,Ann,Bo,2025,5,FR\n".encode())
    with pytest.raises(InputError) as info:
        Source(path)
    message = str(info.value)
    for name in ("Record ID", "Owner", "Last Activity", "Phone Number", "Country/Region"):
        assert f"`{name}`" in message
    assert "`Phone Number` (did you mean `phone`?)" in message
    assert "`Country/Region` (did you mean `country`?)" in message
    assert "--map" in message
    assert "--ignore-unknown-columns" in message
    assert "First Name" not in message


def test_unknown_columns_can_be_left_out(tmp_path: Path) -> None:
    path = write_bytes(
        tmp_path, "in.csv", f"id,Owner,Job Title,Last Activity\n{LEAD},Bo,CTO,2025\n".encode()
    )
    source = Source(path, ignore_unknown_columns=True)
    assert source.dropped == ["Owner", "Last Activity"]
    assert source.plan() == [
        "id → id", "Owner → dropped", "Job Title → jobTitle", "Last Activity → dropped"
    ]  # fmt: skip
    ((row),) = list(source)
    assert only_update(row.item).body() == {"jobTitle": "CTO"}


# --- 4. delimiters


@pytest.mark.parametrize("delimiter", [";", "\t", "|", ","])
def test_the_delimiter_is_found_from_the_header(tmp_path: Path, delimiter: str) -> None:
    text = delimiter.join(["id", "First Name", "City"]) + "\n"
    text += delimiter.join([LEAD, "Ann", '"Paris, FR"' if delimiter != "," else "Paris"]) + "\n"
    source = Source(write_bytes(tmp_path, "in.csv", text.encode()))
    assert source.delimiter == delimiter
    ((row),) = list(source)
    assert only_update(row.item).firstName == "Ann"


def test_a_given_delimiter_wins(tmp_path: Path) -> None:
    path = write_bytes(tmp_path, "in.csv", f"id;city,x\n{LEAD};Oslo,NO\n".encode())
    ((_, item),) = read_all(path, delimiter=";", columns={"city,x": "city"})
    assert only_update(item).city == "Oslo,NO"


# --- 5. encodings


EUROPEAN = f"id;Prénom;Ville\n{LEAD};Zoë;Košice\n"  # Košice: not in cp1252


def test_a_file_that_is_not_utf8_is_refused_whole_naming_its_first_bad_line(
    tmp_path: Path,
) -> None:
    text = f"id;First Name;City\n{LEAD};Ann;Paris\n{LEAD};Zoë;Orléans\n"
    source = Source(write_bytes(tmp_path, "in.csv", text.encode("cp1252")))
    with pytest.raises(InputError, match=r"line 3 is not UTF-8 .*--encoding cp1252"):
        source.check()
    source.close()


def test_cp1252_with_its_name(tmp_path: Path) -> None:
    text = f"id;First Name;City\r\n{LEAD};Zoë;Orléans\r\n"
    path = write_bytes(tmp_path, "in.csv", text.encode("cp1252"))
    source = Source(path, encoding="cp1252")
    source.check()
    ((row),) = list(source)
    assert (only_update(row.item).firstName, only_update(row.item).city) == ("Zoë", "Orléans")


@pytest.mark.parametrize("name", ["cp1252", "latin-1", "iso-8859-15"])
def test_a_utf8_file_read_with_a_legacy_encoding_is_refused(tmp_path: Path, name: str) -> None:
    """Each non-ASCII letter of UTF-8 read as cp1252 is two wrong ones: `Müller` as `MÃ¼ller`."""
    text = f"id;Last Name;City\n{LEAD};Ann;Paris\n{LEAD};Müller;Köln\n"
    source = Source(write_bytes(tmp_path, "in.csv", text.encode("utf-8")), encoding=name)
    with pytest.raises(InputError) as refused:
        source.check()
    source.close()
    garbled = "Müller".encode().decode(name)  # MÃ¼ller in cp1252 and latin-1
    assert str(refused.value).endswith(
        f"in.csv: the file is UTF-8 text, not {name} (line 3 holds `Müller`, which {name} reads "
        f"as `{garbled}`); drop --encoding {name}"
    )


@pytest.mark.parametrize("text", [f"id;City\n{LEAD};Paris\n", f"id;City\n{LEAD};Zoë Köln\n"])
def test_a_legacy_encoding_reads_ascii_and_legacy_text(tmp_path: Path, text: str) -> None:
    """ASCII is the same in either; a cp1252 `ë` is no valid UTF-8: neither is refused."""
    source = Source(write_bytes(tmp_path, "in.csv", text.encode("cp1252")), encoding="cp1252")
    source.check()
    ((row),) = list(source)
    assert only_update(row.item).city == text.split(";")[-1].strip()


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-8"])
def test_unicode_text_by_its_bom(tmp_path: Path, codec: str) -> None:
    """Excel's "Unicode text": UTF-16 LE with a BOM, tab separated, CRLF."""
    bom = {"utf-16-le": b"\xff\xfe", "utf-16-be": b"\xfe\xff", "utf-32-le": b"\xff\xfe\x00\x00",
           "utf-8": b"\xef\xbb\xbf"}[codec]  # fmt: skip
    text = f"id\tFirst Name\tCity\r\n{LEAD}\tZoë\tKošice\r\n"
    source = Source(write_bytes(tmp_path, "in.txt", bom + text.encode(codec)))
    source.check()
    assert source.delimiter == "\t"
    ((row),) = list(source)
    assert only_update(row.item).city == "Košice"


@pytest.mark.parametrize("name", ["utf-16", "utf16", "UTF_16", "utf-32"])
def test_unicode_text_without_a_bom_by_its_name(tmp_path: Path, name: str) -> None:
    """`--encoding utf-16` on a file without a BOM: little-endian, as Windows writes it."""
    codec = "utf-32-le" if "32" in name else "utf-16-le"
    text = f"id\tFirst Name\tCity\r\n{LEAD}\tZoë\tKošice\r\n"
    source = Source(write_bytes(tmp_path, "in.txt", text.encode(codec)), encoding=name)
    source.check()
    ((row),) = list(source)
    assert only_update(row.item).city == "Košice"
    assert source.options()["encoding"] == codec


def test_an_unknown_encoding_name_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--encoding"):
        Source(write_bytes(tmp_path, "in.csv", b"id,city\n"), encoding="klingon")


@pytest.mark.parametrize("codec", ["idna", "rot13", "base64", "zlib", "punycode"])
def test_a_codec_that_does_not_read_text_files_is_a_usage_error(tmp_path: Path, codec: str) -> None:
    with pytest.raises(ConfigError, match=f"--encoding {codec}: not an encoding text files"):
        Source(write_bytes(tmp_path, "in.csv", f"id,city\n{LEAD},Oslo\n".encode()), encoding=codec)


# --- 7. spreadsheet debris


def test_spreadsheet_debris_is_ignored(tmp_path: Path) -> None:
    text = (
        "id,jobTitle,,\r\n"  # trailing empty header columns
        f" {LEAD} ,CFO,,\r\n"  # spaces around the id, trailing empty cells
        ",,,\r\n"  # an empty row: a blank line, not a record
        f"{LEAD},CTO\r\n"  # a short row that still has every named column
    )
    rows = read_all(write_bytes(tmp_path, "in.csv", text.encode()))
    assert [row for row, _ in rows] == [1, 2]
    assert only_update(rows[0][1]).id == LEAD
    assert only_update(rows[0][1]).jobTitle == "CFO"
    assert only_update(rows[1][1]).jobTitle == "CTO"


def test_a_row_with_cells_beyond_the_header_is_invalid(tmp_path: Path) -> None:
    rows = read_all(write_bytes(tmp_path, "in.csv", f"id,city\n{LEAD},Oslo,extra\n".encode()))
    assert "3 cells but the header 2" in only_invalid(rows[0][1]).message


# --- 9. where each record starts


def test_each_row_knows_its_line_in_the_file(tmp_path: Path) -> None:
    text = f'id,city\n{LEAD},"two\nlines"\n\n{LEAD},x\n,\n{LEAD},y\n'
    rows = list(Source(write_bytes(tmp_path, "in.csv", text.encode())))
    assert [(row.number, row.line) for row in rows] == [(1, 2), (2, 5), (3, 7)]


def test_rejects_columns_are_left_alone(tmp_path: Path) -> None:
    text = f"id,city,_status,_message\n{LEAD},Oslo,invalid,column city: bad\n"
    ((_, item),) = read_all(write_bytes(tmp_path, "in.csv", text.encode()))
    assert only_update(item).body() == {"city": "Oslo"}


def test_json_lines_keys_match_like_headers(tmp_path: Path) -> None:
    path = write_bytes(
        tmp_path, "in.jsonl",
        (f'{{"ID": "{LEAD}", "First Name": "Ann", "Owner": "x", "_status": "failed"}}\n').encode(),
    )  # fmt: skip
    ((_, item),) = read_all(path, ignore_unknown_columns=True)
    assert only_update(item).body() == {"firstName": "Ann"}
    ((_, refused),) = read_all(path)
    assert isinstance(refused, Invalid)
    assert "`Owner`" in refused.message


def test_a_plan_is_printable(tmp_path: Path) -> None:
    source = Source(
        write_bytes(tmp_path, "in.csv", b"Lead ID,Job Title\n"), columns={"Lead ID": "id"}
    )
    assert source.plan() == ["Lead ID → id", "Job Title → jobTitle"]
    assert source.options()["columns"] == "Lead ID=id"
    source.close()
    assert re.fullmatch(r"[a-z]+", normal("First-Name _x"))
    assert isinstance(LeadUpdate(id=LEAD, city="x"), LeadUpdate)


@pytest.mark.parametrize(
    "record",
    [
        {"id": LEAD, "jobtitle": None, "jobTitle": "CFO"},
        {"id": LEAD, "Job Title": "CFO", "jobTitle": None},
        {"id": LEAD, "customFields.Region": None, "Custom Fields.Region": "EU"},
        {"id": LEAD, "Email": None, "email": "ann@example.com", "city": "Oslo"},
    ],
)
def test_a_json_null_under_a_second_key_for_one_field_is_not_a_way_around(
    tmp_path: Path, record: dict[str, object]
) -> None:
    """`null` leaves a field alone, but two keys naming one field are refused all the same: which
    one was meant cannot be told."""
    path = write_bytes(tmp_path, "in.jsonl", (json.dumps(record) + "\n").encode())
    ((_, item),) = read_all(path)
    assert "both mean" in only_invalid(item).message


def test_a_long_email_is_matched_whole(tmp_path: Path) -> None:
    email = "a" * 240 + "@example.com"
    path = write_bytes(tmp_path, "in.jsonl", f'{{"email": "{email}", "city": "Oslo"}}\n'.encode())
    ((_, item),) = read_all(path)
    assert getattr(item, "email", None) == email


def test_a_phone_column_excel_saved_as_numbers_is_invalid_naming_the_cause(tmp_path: Path) -> None:
    """Excel writes a phone number held as a number in E-notation (German Excel with a comma)."""
    text = f"id;Phone;City\r\n{LEAD};4,15556E+11;Köln\r\n{LEAD};+49 221 123456;Köln\r\n"
    (_, first), (_, second) = read_all(write_bytes(tmp_path, "de.csv", text.encode("utf-8")))
    assert only_invalid(first).message == (
        "column phone: Excel turned this phone number into 4,15556E+11 (its digits are lost); "
        "format the column as Text in Excel and export again"
    )
    assert only_update(second).phone == "+49 221 123456"


def test_json_lines_empty_or_blank_text_leaves_the_field_alone_as_an_empty_cell(
    tmp_path: Path,
) -> None:
    """pandas' `to_json(lines=True)` of a frame read from CSV writes `""` for an empty cell: the
    same data as JSON lines must change what the CSV changes, nothing more."""
    path = tmp_path / "t.jsonl"
    blank = {"city": "", "country": " ", "state": "\u00a0", "customFields.tier": ""}
    first_line = json.dumps({"id": LEAD, **blank, "jobTitle": "CTO", "tags": []})
    path.write_text(first_line + "\n" + json.dumps({"id": LEAD, "city": "  "}) + "\n")
    first, second = read_all(str(path))
    assert only_update(first[1]).body() == {"jobTitle": "CTO", "tags": []}
    assert only_invalid(second[1]).message == "the row sets no field to update"


#: Custom field values that mean "leave this field alone": empty, spaces, a non-breaking space,
#: a zero-width space.
BLANK_CUSTOM = {"industry": "", "source": " ", "employees": "\u00a0", "tier": "\u200b"}


def test_a_blank_custom_field_in_a_json_object_leaves_the_field_alone(tmp_path: Path) -> None:
    """A reverse-ETL export nests custom fields and writes `""` for each missing one: it must
    not blank the lead's values, as the same empty `customFields.<name>` cell does not."""
    path = tmp_path / "t.jsonl"
    custom = {**BLANK_CUSTOM, "region": "EU", "note": None}
    lines = [
        {"id": LEAD, "customFields": custom},
        {"id": LEAD, "customFields": BLANK_CUSTOM, "country": "x"},
        {"id": LEAD, "customFields": BLANK_CUSTOM},
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    first, second, third = read_all(str(path))
    assert only_update(first[1]).body() == {"customFields": {"region": "EU", "note": None}}
    assert only_update(second[1]).body() == {"country": "x"}
    assert only_invalid(third[1]).message == "the row sets no field to update"
    assert only_update(parse_mapping({"id": LEAD, "customFields": custom})).body() == {
        "customFields": {"region": "EU", "note": None}
    }


def test_a_blank_custom_field_in_a_csv_json_object_cell_leaves_the_field_alone(
    tmp_path: Path,
) -> None:
    cell = json.dumps({**BLANK_CUSTOM, "region": "EU"}).replace('"', '""')
    text = f'id,customFields,country\n{LEAD},"{cell}",x\n'
    [(_, item)] = read_all(write_bytes(tmp_path, "t.csv", text.encode()))
    assert only_update(item).body() == {"country": "x", "customFields": {"region": "EU"}}

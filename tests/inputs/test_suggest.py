"""What a refused header suggests (`inputs/suggest.py`), on files shaped as Salesforce, Mailchimp
and Excel export them: no suggestion that would send a row to the wrong lead or field, every
problem of the file in one message, a title row named as one, Excel's `sep=` line honoured."""

from __future__ import annotations

from pathlib import Path

import pytest

from bulk_updater import InputError, LeadUpdate, Source
from bulk_updater.inputs.suggest import hint, nearest
from tests.inputs.conftest import jsonl, only_invalid, only_update, read_all, write

LEAD = "665d4e5f6a7b8c9d0e1f2a3b"
SALESFORCE_IDS = ["00Q5e00000AbCdEFGH", "00Q5e00000AbCdEFGI", "00Q5e00000AbCdEFGJ"]


def refused(path: str, **options: object) -> str:
    with pytest.raises(InputError) as info:
        Source(path, **options)  # type: ignore[arg-type]
    return str(info.value)


# --- which suggestions may be made


ALIKE = ["CONFIRM_TIME", "LAST_CHANGED", "Full name", "Done?", "Surname", "Person - Name",
         "OPTIN_TIME", "Street", "Width", "Idea"]  # fmt: skip


@pytest.mark.parametrize("name", ALIKE)
def test_names_merely_alike_suggest_nothing(name: str) -> None:
    assert nearest(name) is None
    assert hint(name, ["x"]) == ""


#: Names that, followed to the field they resemble, would send data to a wrong field or lead.
ELSEWHERE = ["Mobile", "Company Size", "Stage", "Statement", "Real Estate", "Ethnicity",
             "Velocity", "Capacity", "Publicity", "Phone Extension", "Assistant Phone",
             "Phone Country Code", "Manager Email", "Referrer Email", "Owner ID", "Paid",
             "Company / Account", "Email Opt Out"]  # fmt: skip


@pytest.mark.parametrize("name", ELSEWHERE)
def test_names_of_another_field_or_someone_elses_suggest_nothing(name: str) -> None:
    assert nearest(name) is None
    assert hint(name, ["ann@x.io"]) == ""
    assert hint(name, [LEAD]) == ""


@pytest.mark.parametrize(
    ("name", "field"),
    [("Job Titel", "jobTitle"), ("compnyName", "companyName"), ("tag", "tags"),
     ("Frist Name", "firstName"), ("Citty", "city"), ("First", "firstName"),
     ("Title", "jobTitle"), ("LinkedIn", "linkedinUrl"), ("Phone Number", "phone"),
     ("Mobile Phone", "phone"), ("Country/Region", "country"), ("State/Province", "state"),
     ("Email Address", "email"), ("Lead Email", "email"), ("E-mail address", "email"),
     ("Lead ID", "id"), ("LeadId", "id"), ("leadid", "id"), ("Person - SendKit ID", "id"),
     ("LEID", "id")],
)  # fmt: skip
def test_a_slip_or_the_field_among_neutral_words_is_suggested(name: str, field: str) -> None:
    assert nearest(name) == field


def test_email_is_never_suggested_beside_the_rows_email() -> None:
    assert hint("Work Email", ["ann@x.io"]) == " (did you mean `email`?)"
    assert hint("Work Email", ["ann@x.io"], has_email=True) == ""


def test_a_file_with_names_of_other_fields_gets_no_suggestion(tmp_path: Path) -> None:
    header = "Lead ID,Email,Mobile,Company Size,Stage,Phone Extension,Ethnicity,Manager Email"
    row = f"{LEAD},a@example.com,+1 415 555 0100,50,Qualified,204,x,boss@example.com"
    message = refused(write(tmp_path / "in.csv", f"{header}\n{row}\n"))
    assert "`Lead ID` (did you mean `id`?)" in message
    assert message.count("did you mean") == 1


def test_id_is_suggested_only_for_values_shaped_as_sendkit_ids() -> None:
    assert hint("Lead ID", [LEAD, "665d4e5f6a7b8c9d0e1f2a3c"]) == " (did you mean `id`?)"
    assert hint("Lead ID", [LEAD], has_id=True) == ""  # a second id column would be refused
    assert hint("Lead ID", None) == ""  # no values seen (standard input): no guess
    assert hint("Lead ID", ["", " "]) == ""
    salesforce = hint("Lead ID", SALESFORCE_IDS)
    assert "did you mean" not in salesforce
    assert "not SendKit lead ids, which are 24 hex characters" in salesforce
    assert "are 18 letters and digits, all starting `00Q5e00000AbCdEFG`" in salesforce
    assert "15 to 18" in hint("Lead ID", ["00Q5e00000AbCdE", *SALESFORCE_IDS])
    assert "are 9 digits" in hint("LEID", ["123456789", "987654321"])
    assert "are 10 hex characters" in hint("EUID", ["b3c4d5e6f7", "a1b2c3d4e5"])
    assert "not SendKit lead ids" in hint("Lead ID", [LEAD, "00Q5e00000AbCdE"])  # mixed


def test_email_is_suggested_only_for_addresses() -> None:
    assert hint("Email Address", ["ann@x.io", "bo@y.com"]) == " (did you mean `email`?)"
    assert hint("Email Opt Out", ["false", "true"]) == ""
    assert hint("E-mail address", ["ann@x.io", "not an address"]) == ""
    assert hint("Email Address", None) == ""


# --- files as the products export them


def test_a_mailchimp_audience_export_is_refused_with_safe_suggestions(tmp_path: Path) -> None:
    header = "Email Address,First Name,Last Name,TAGS,MEMBER_RATING,OPTIN_TIME,CONFIRM_TIME,"
    header += "LAST_CHANGED,LEID,EUID"
    rows = [
        'ann@x.io,Ann,Lee,"""Customer"",""VIP""",2,2024-01-02 10:00:00,2024-01-02 10:01:00,'
        "2024-03-04 11:00:00,123456789,b3c4d5e6f7",
        "bo@y.com,Bo,Ng,,3,2024-01-05 09:00:00,2024-01-05 09:01:00,2024-03-05 12:00:00,"
        "223456789,c3c4d5e6f8",
    ]
    message = refused(write(tmp_path / "members.csv", "\n".join([header, *rows]) + "\n"))
    assert "`Email Address` (did you mean `email`?)" in message
    assert "`LEID` (not SendKit lead ids" in message
    assert "`EUID` (not SendKit lead ids" in message
    for name in ("CONFIRM_TIME", "LAST_CHANGED", "MEMBER_RATING", "OPTIN_TIME"):
        assert f"`{name}`," in message or f"`{name}`;" in message  # named, with no suggestion
    assert "did you mean `id`" not in message
    assert "2 problems" in message
    assert "no `id` column" in message

    with Source(tmp_path / "members.csv", columns={"Email Address": "email"},
                ignore_unknown_columns=True) as source:  # fmt: skip
        assert source.dropped == ["MEMBER_RATING", "OPTIN_TIME", "CONFIRM_TIME",
                                  "LAST_CHANGED", "LEID", "EUID"]  # fmt: skip


SALESFORCE_HEADER = '"Lead ID","First Name","Last Name","Company / Account","Email","Lead Status"'
SALESFORCE_ROWS = [f'"{lead}","Ann{n}","Lee","Acme","ann{n}@x.io","Open"'
                   for n, lead in enumerate(SALESFORCE_IDS)]  # fmt: skip
SALESFORCE_FOOTER = [
    "",
    '"Copyright (c) 2000-2026 salesforce.com, inc. All rights reserved."',
    '"Confidential Information - Do Not Distribute"',
]


def test_a_salesforce_report_with_its_title_rows_says_header_row(tmp_path: Path) -> None:
    lines = ['"My Open Leads"', '"Generated by Ann Lee, 12/1/2026 9:05 AM"', "",
             SALESFORCE_HEADER, *SALESFORCE_ROWS, *SALESFORCE_FOOTER]  # fmt: skip
    message = refused(write(tmp_path / "report.csv", "\r\n".join(lines) + "\r\n"))
    assert message.endswith(
        "the first line, `My Open Leads`, is a title, not the header: the header looks to be "
        "line 4 (`Lead ID`, `First Name`, `Last Name`, …); pass --header-row 4, or remove the "
        "lines above it"
    )
    assert "did you mean" not in message


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_a_title_above_a_header_of_another_delimiter_is_named(
    tmp_path: Path, delimiter: str
) -> None:
    """The delimiter is found from the title, which holds none: the header is found anyway."""
    lines = ["Leads export", "", delimiter.join(["id", "firstName"]), f"{LEAD}{delimiter}Ann"]
    message = refused(write(tmp_path / "in.csv", "\r\n".join(lines) + "\r\n"))
    assert message.endswith(
        "the first line, `Leads export`, is a title, not the header: the header looks to be "
        "line 3 (`id`, `firstName`); pass --header-row 3, or remove the lines above it"
    )


def test_a_title_under_excels_sep_line_is_named_by_its_line(tmp_path: Path) -> None:
    text = f"sep=;\r\nLeads export 2026-12-01\r\n\r\nid;firstName\r\n{LEAD};Ann\r\n"
    message = refused(write(tmp_path / "in.csv", text))
    assert "in.csv: line 2, `Leads export 2026-12-01`, is a title, not the header: the " in message
    assert "pass --header-row 4" in message


def test_a_title_in_utf16_tab_text_is_named(tmp_path: Path) -> None:
    """Excel's "Unicode text": UTF-16 with a BOM, TAB-separated."""
    path = tmp_path / "in.txt"
    path.write_bytes(f"Leads export\r\n\r\nid\tfirstName\r\n{LEAD}\tAnn\r\n".encode("utf-16"))
    assert "the header looks to be line 3 (`id`, `firstName`)" in refused(str(path))
    with Source(path, header_row=3) as source:
        (row,) = list(source)
    assert only_update(row.item).firstName == "Ann"


def test_a_salesforce_report_never_suggests_its_ids_as_lead_ids(tmp_path: Path) -> None:
    lines = [SALESFORCE_HEADER, *SALESFORCE_ROWS, *SALESFORCE_FOOTER]
    message = refused(write(tmp_path / "report.csv", "\r\n".join(lines) + "\r\n"))
    assert (
        "`Lead ID` (not SendKit lead ids, which are 24 hex characters: its values are 18 letters "
        "and digits, all starting `00Q5e00000AbCdEFG`, like `00Q5e00000AbCdEFGH`)"
    ) in message
    assert "did you mean" not in message  # `Company / Account`, `Lead Status`: none either
    assert "no `id` column" not in message  # `Email` matches the leads by email


def test_the_same_column_of_sendkit_ids_is_suggested(tmp_path: Path) -> None:
    path = write(
        tmp_path / "in.csv", f"Lead ID,Job Title\n{LEAD},CTO\n\n665d4e5f6a7b8c9d0e1f2a3c,\n"
    )
    assert "`Lead ID` (did you mean `id`?)" in refused(path)


def test_a_json_key_is_suggested_from_its_value(tmp_path: Path) -> None:
    rows = read_all(jsonl(tmp_path / "in.jsonl", {"Lead ID": LEAD, "city": "X"},
                          {"Lead ID": SALESFORCE_IDS[0], "city": "X"}))  # fmt: skip
    messages = [item.message for _, item in rows if not isinstance(item, LeadUpdate)]
    assert "did you mean `id`" in messages[0]
    assert "not SendKit lead ids" in messages[1]


# --- every problem at once


def test_every_problem_of_a_file_is_in_one_message(tmp_path: Path) -> None:
    """Unknown columns, a column with no name, two columns for one field, no id column and
    text in another encoding: one try, one message."""
    path = tmp_path / "in.csv"
    path.write_bytes(b"Lead,Job Title,,jobtitle,Owner\nx,CTO,,CFO,Ren\xe9e\n")
    message = refused(str(path))
    assert message.startswith(f"{path}: 5 problems, to fix before any row is sent: 1) unknown")
    assert "1) unknown columns `Lead`, `Owner`;" in message
    assert "2) column 3 of the header has no name" in message
    assert "3) column `jobtitle` and `Job Title` both mean jobTitle" in message
    assert "4) no `id` column" in message
    assert "5) line 2 is not UTF-8 text (byte 0xE9)" in message
    assert "--encoding cp1252" in message


def test_one_problem_is_said_alone(tmp_path: Path) -> None:
    message = refused(write(tmp_path / "in.csv", "id,Owner\nx,Bo\n"))
    assert message == (
        f"{tmp_path / 'in.csv'}: unknown column `Owner`; say what they are with --map "
        '"HEADER=FIELD" (FIELD: id, email, a lead field, customFields.NAME, or - to drop it), '
        "or leave them out with --ignore-unknown-columns"
    )


# --- Excel's `sep=` line


@pytest.mark.parametrize("first", ["sep=;", "SEP=;", '"sep=;"', "sep=;;;"])
def test_excels_sep_line_gives_the_delimiter(tmp_path: Path, first: str) -> None:
    path = write(tmp_path / "in.csv", f"{first}\r\nid;jobTitle;city\r\n{LEAD};CTO, EMEA;Oslo\r\n",
                 bom=True)  # fmt: skip
    source = Source(path)
    assert source.count() == 1
    assert source.delimiter == ";"
    assert source.header == ("id", "jobTitle", "city")
    (row,) = list(source)
    assert row.line == 3
    assert only_update(row.item).body() == {"jobTitle": "CTO, EMEA", "city": "Oslo"}


def test_a_sep_line_gives_way_to_delimiter(tmp_path: Path) -> None:
    path = write(tmp_path / "in.csv", f"sep=;\nid|city\n{LEAD}|Oslo\n")
    source = Source(path, delimiter="|")
    assert source.header == ("id", "city")
    assert [only_update(row.item).city for row in source] == ["Oslo"]


def test_a_title_with_no_header_below_it_still_says_header_row(tmp_path: Path) -> None:
    message = refused(write(tmp_path / "in.csv", "Leads export\nsomething,else\n"))
    assert "the first line, `Leads export`, names no column the tool knows" in message
    assert "--header-row N (N: the header's line)" in message
    assert '--map "Leads export=FIELD"' in message


def test_a_file_of_thousands_of_unknown_columns_gets_a_message_of_one_line(tmp_path: Path) -> None:
    names = [f"col{n}" for n in range(5000)] + ["x" * 500]
    message = refused(write(tmp_path / "wide.csv", ",".join(["id", *names]) + f"\n{LEAD}\n"))
    assert len(message) < 15_000
    assert "`col0`, `col1`," in message
    assert "`col999` and 4001 more; say what they are with --map" in message


def test_every_unknown_column_of_a_wide_export_is_named(tmp_path: Path) -> None:
    names = [f"Apollo Field {n}" for n in range(40)]
    message = refused(write(tmp_path / "apollo.csv", ",".join(["id", *names]) + f"\n{LEAD}\n"))
    assert "`Apollo Field 39`; say what they are" in message
    assert "more" not in message


def test_no_field_is_suggested_for_two_columns(tmp_path: Path) -> None:
    header = "Email,Work Direct Phone,Home Phone,Person - Email - Work,Title,Phone Number"
    message = refused(write(tmp_path / "apollo.csv", f"{header}\nann@x.io,1,2,ann@y.io,CTO,3\n"))
    assert "`Work Direct Phone` (one of 3 columns that may be `phone`: map one at most)" in message
    assert "`Phone Number` (one of 3 columns that may be `phone`: map one at most)" in message
    assert "`Person - Email - Work`," in message  # `Email` is the email already
    assert "`Title` (did you mean `jobTitle`?)" in message
    header = "id,Phone,Mobile Phone"  # a column is the phone already: none may be
    message = refused(write(tmp_path / "phone.csv", f"{header}\n{LEAD},1,2\n"))
    assert "unknown column `Mobile Phone`; say what" in message
    keys = {"id": LEAD, "Home Phone": "1", "Mobile Phone": "2"}
    (row,) = read_all(jsonl(tmp_path / "in.jsonl", keys))
    assert "`Home Phone` (one of 2 columns that may be `phone`" in only_invalid(row[1]).message

"""`--rejects`: the file goes back in as the input with the same options, and reads as the rows
did the first time: written by `RejectsWriter`, read back by `Source`."""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from bulk_updater import BulkUpdater, ConfigError, LeadUpdate, Reply, Source, Status
from bulk_updater.engine.sink import open_rejects
from bulk_updater.report.rejects import RejectsWriter
from tests.conftest import FakeSender

LEAD = "lead1"


def rejects_of(tmp_path: Path, name: str, data: bytes, **options: Any) -> Path:
    """Read `data` as the input `name` with `options`, and write every row to a rejects file."""
    path = tmp_path / name
    path.write_bytes(data)
    source = Source(path, **options)  # type: ignore[arg-type]
    out = tmp_path / ("rejects" + path.suffix)
    writer = open_rejects(out, source)
    for row in source:
        writer.write(row.number, row.raw, Status.NOT_FOUND, "Lead not found", {})
    writer.close()
    return out


def write_to(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def updates(path: Path, **options: Any) -> list[LeadUpdate]:
    items = [row.item for row in Source(path, **options)]  # type: ignore[arg-type]
    assert all(isinstance(item, LeadUpdate) for item in items), items
    return items  # type: ignore[return-value]


def test_a_header_with_empty_columns_at_its_end_goes_back_in(tmp_path: Path) -> None:
    out = rejects_of(tmp_path, "in.csv", f"id,firstName,,\n{LEAD},Ann,,\n".encode())
    assert out.read_bytes().decode("utf-8-sig").splitlines()[0] == "id,firstName,_status,_message"
    (update,) = updates(out)
    assert update.body() == {"firstName": "Ann"}


@pytest.mark.parametrize("city", ["Old\rTown", "Old\r\nTown", "Old\nTown", "x\r"])
def test_a_cell_holding_a_line_break_goes_back_in_whole(tmp_path: Path, city: str) -> None:
    quoted = city.replace('"', '""')
    out = rejects_of(tmp_path, "in.csv", f'id,city\n{LEAD},"{quoted}"\n'.encode())
    (update,) = updates(out)
    assert update.city == city


@pytest.mark.parametrize("name", ["utf_8_sig", "UTF-8-SIG", "utf8", "U8"])
@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
def test_any_spelling_of_utf8_keeps_the_bom_or_its_absence(
    tmp_path: Path, name: str, bom: bytes
) -> None:
    data = bom + f"id,city\n{LEAD},Zoë\nlead2,Åsa\n".encode()
    out = rejects_of(tmp_path, "in.csv", data, encoding=name)
    data = out.read_bytes()
    assert data.count(b"\xef\xbb\xbf") == len(bom) // 3
    assert data.startswith(bom + b"id,city,_status")
    assert [u.city for u in updates(out, encoding=name)] == ["Zoë", "Åsa"]


ROWS = [
    ["id", "city", "jobTitle"],
    [LEAD, "Zoë", 'says "hi", twice'],
    ["lead2", "Åsa", ""],
]


@pytest.mark.parametrize(
    ("codec", "bom"),
    [
        ("utf-8", b""),
        ("utf-8", codecs.BOM_UTF8),
        ("cp1252", b""),
        ("utf-16-be", codecs.BOM_UTF16_BE),
    ],
)
@pytest.mark.parametrize("line_end", ["\r\n", "\n"])
@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
@pytest.mark.parametrize("quoting", [csv.QUOTE_MINIMAL, csv.QUOTE_ALL])
def test_the_rejects_keep_the_inputs_bytes_so_a_diff_shows_only_the_rows(
    tmp_path: Path, codec: str, bom: bytes, line_end: str, delimiter: str, quoting: int
) -> None:
    """A UTF-8 CSV without a BOM and with CRLF once gave rejects with a BOM and LF."""
    text = io.StringIO()
    csv.writer(text, delimiter=delimiter, lineterminator=line_end, quoting=quoting).writerows(ROWS)  # type: ignore[call-overload]
    data = bom + text.getvalue().encode(codec)
    out = rejects_of(tmp_path, "in.csv", data, encoding="cp1252" if codec == "cp1252" else "")
    sent = out.read_bytes()
    lines = [line + line_end for line in text.getvalue().split(line_end)[:-1]]
    q = '"' if quoting == csv.QUOTE_ALL else ""
    extra = [f"{delimiter}{q}_status{q}{delimiter}{q}_message{q}"] + [
        f"{delimiter}{q}not_found{q}{delimiter}{q}Lead not found{q}"
    ] * 2
    pairs = zip(lines, extra, strict=True)
    expected = [line[: -len(line_end)] + tail + line_end for line, tail in pairs]
    assert sent == bom + "".join(expected).encode(codec)


@pytest.mark.parametrize("name", ["utf16", "utf_16", "UTF-16"])
def test_any_spelling_of_utf16_writes_one_bom(tmp_path: Path, name: str) -> None:
    data = ("\ufeff" + f"id\tcity\n{LEAD}\tZoë\nlead2\tÅsa\n").encode("utf-16-le")
    out = rejects_of(tmp_path, "in.csv", data, encoding=name)
    assert out.read_bytes().count(b"\xff\xfe") == 1
    assert [u.city for u in updates(out, encoding=name)] == ["Zoë", "Åsa"]
    assert [u.city for u in updates(out)] == ["Zoë", "Åsa"]  # the BOM says it anyway


@pytest.mark.parametrize(
    ("encoding", "codec"), [("cp1252", "cp1252"), ("latin-1", "latin-1"), ("utf-16", "utf-16")]
)
def test_json_lines_rejects_are_in_the_inputs_encoding(
    tmp_path: Path, encoding: str, codec: str
) -> None:
    line = json.dumps({"id": LEAD, "lastName": "Müller"}, ensure_ascii=False) + "\n"
    out = rejects_of(tmp_path, "in.jsonl", line.encode(codec), encoding=encoding)
    (update,) = updates(out, encoding=encoding)
    assert update.lastName == "Müller"


def test_json_lines_text_the_encoding_cannot_hold_is_escaped(tmp_path: Path) -> None:
    out = tmp_path / "rejects.jsonl"
    writer = RejectsWriter(out, header=None, encoding="cp1252")
    writer.write(1, '{"id": "lead1", "city": "Zoë"}\n', Status.INVALID, "bad → fix", {})
    writer.close()
    (update,) = updates(out, encoding="cp1252")
    assert update.city == "Zoë"
    assert json.loads(out.read_bytes().decode("cp1252"))["_message"] == "bad → fix"


async def test_json_lines_rejects_of_a_run_go_back_with_the_same_options(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    line = json.dumps({"id": LEAD, "lastName": "Müller"}, ensure_ascii=False) + "\n"
    path.write_bytes(line.encode("cp1252"))
    rejects = tmp_path / "rejects.jsonl"

    def missing(update: LeadUpdate, attempt: int) -> Reply:
        return Reply(404, "NOT_FOUND", "Lead not found")

    async with BulkUpdater(sender=FakeSender(missing, latency=0), rate=0) as updater:
        summary = await updater.run(Source(path, encoding="cp1252"), rejects=rejects)
    assert summary.counts[Status.NOT_FOUND] == 1
    (update,) = updates(rejects, encoding="cp1252")
    assert update.lastName == "Müller"


def test_utf16_without_a_bom_goes_back_in_with_the_same_options(tmp_path: Path) -> None:
    data = f"id\tcity\n{LEAD}\tZoë\n".encode("utf-16-le")
    out = rejects_of(tmp_path, "in.csv", data, encoding="utf-16")
    assert [u.city for u in updates(out, encoding="utf-16")] == ["Zoë"]


@pytest.mark.parametrize("ignore", [False, True])
def test_a_line_that_was_no_json_goes_back_as_raw_and_says_what_to_fix(
    tmp_path: Path, ignore: bool
) -> None:
    """It is kept as read (`_raw`); fed back unfixed, the row says what to do with it, even
    with unknown columns ignored (it would otherwise be a row that sets nothing)."""
    rejects = rejects_of(tmp_path, "in.jsonl", b'{"id": "lead1", city: Oslo}\n')
    assert json.loads(rejects.read_text())["_raw"] == '{"id": "lead1", city: Oslo}'
    (row,) = Source(rejects, ignore_unknown_columns=ignore)
    assert not isinstance(row.item, LeadUpdate)
    assert "`_raw` holds a line that was not valid JSON" in row.item.message


def test_a_json_lines_reject_holds_no_character_that_acts_and_reads_back_the_same(
    tmp_path: Path,
) -> None:
    title = "A\u202eB\u2066C\x9b"
    out = rejects_of(tmp_path, "in.jsonl", json.dumps({"id": LEAD, "jobTitle": title}).encode())
    text = out.read_text("utf-8")
    assert not {"\u202e", "\u2066", "\x9b"} & set(text)
    assert json.loads(text)["jobTitle"] == title


def test_a_row_that_cannot_be_read_as_csv_goes_back_as_it_was_read(tmp_path: Path) -> None:
    """Its text is kept, so the rejects line is that row again: fixed, it goes back in; unfixed,
    it is invalid again (never left out), and the report names its id."""
    data = f'id,firstName,lastName\r\n{LEAD},"Bo"b,Smith\r\nlead2,Al,Jones\r\n'.encode()
    (first, _) = Source(write_to(tmp_path / "in.csv", data))
    assert not isinstance(first.item, LeadUpdate)
    assert (first.item.id, first.raw) == (LEAD, f'{LEAD},"Bo"b,Smith\r\n')
    out = rejects_of(tmp_path, "in.csv", data)
    lines = out.read_bytes().decode("utf-8-sig").split("\r\n")
    assert lines[1].startswith(f'{LEAD},"Bo"b,Smith,not_found,')
    again, second = Source(out)
    assert not isinstance(again.item, LeadUpdate)
    assert "cannot be read as CSV" in again.item.message
    assert isinstance(second.item, LeadUpdate)
    out.write_bytes(out.read_bytes().replace(b'"Bo"b', b"Bob"))
    assert [u.firstName for u in updates(out)] == ["Bob", "Al"]


def test_a_rejects_line_with_no_cells_kept_is_never_left_out(tmp_path: Path) -> None:
    """A record too large keeps no cell: its line still reads back as one invalid row."""
    data = f"id,city\n{LEAD},{'x' * (2 << 20)}\n".encode()
    out = rejects_of(tmp_path, "in.csv", data)
    (row,) = Source(out)
    assert not isinstance(row.item, LeadUpdate)
    assert row.item.message.startswith("this rejects line kept no cell of its row (not_found:")


async def test_a_workbooks_rejects_send_what_its_rows_would_have_sent(tmp_path: Path) -> None:
    """Numbers keep their format, booleans stay booleans, text stays text (`=1+1` too): fed
    back, each row sends what it would have sent, not the text a CSV would have held."""
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["id", "phone", "jobTitle", "customFields.employees", "customFields.active",
                  "customFields.share", "customFields.start", "customFields.zip"])  # fmt: skip
    sheet.append([LEAD, 4155553898, "=1+1", 1201, True, 0.15, dt.date(2025, 6, 15), 2134])
    sheet.append(["lead2", 4155550000, "CEO", 12.5, False, 1, dt.date(2024, 1, 2), 99])
    for row in (2, 3):
        sheet[f"B{row}"].number_format = "[<=9999999]###-####;(###) ###-####"
        sheet[f"D{row}"].number_format = "#,##0"
        sheet[f"F{row}"].number_format = "0%"
        sheet[f"G{row}"].number_format = "yyyy-mm-dd"
        sheet[f"H{row}"].number_format = "00000"
    sheet["C2"].data_type = "s"  # the text `=1+1`, not a formula
    path = tmp_path / "in.xlsx"
    book.save(path)
    rejects = tmp_path / "rejects.xlsx"

    def missing(update: LeadUpdate, attempt: int) -> Reply:
        return Reply(404, "NOT_FOUND", "Lead not found")

    async with BulkUpdater(sender=FakeSender(missing, latency=0), rate=0) as updater:
        summary = await updater.run(Source(path), rejects=rejects)
    assert summary.counts[Status.NOT_FOUND] == 2
    sent = [update.body() for update in updates(path)]
    assert sent[0]["customFields"]["employees"] == 1201
    assert [update.body() for update in updates(rejects)] == sent
    assert [row.raw[:8] for row in Source(rejects)] == [row.raw for row in Source(path)]


def test_a_workbooks_rejects_must_be_a_workbook(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["id", "city"])
    book.save(tmp_path / "in.xlsx")
    with (
        Source(tmp_path / "in.xlsx") as source,
        pytest.raises(ConfigError, match=r"the input is a workbook, .*: name it \.xlsx"),
    ):
        open_rejects(tmp_path / "rejects.csv", source)


def test_the_rejects_of_a_file_with_titles_go_back_with_the_same_header_row(
    tmp_path: Path,
) -> None:
    """The lines above the header are kept, so `--header-row 4` (in a job file, say) reads the
    rejects as it read the input."""
    titles = '"Leads report"\r\n"Generated 12/1/2026"\r\n\r\n'
    data = f'{titles}"SendKit Id","City"\r\n"{LEAD}","Paris"\r\n'
    options: dict[str, Any] = {"header_row": 4, "columns": {"SendKit Id": "id"}}
    out = rejects_of(tmp_path, "in.csv", data.encode(), **options)
    assert out.read_bytes().decode().startswith(titles)
    assert [u.city for u in updates(out, **options)] == ["Paris"]


@pytest.mark.parametrize("first", ["sep=;", '"sep=;"', "SEP=;;;"])
def test_the_rejects_keep_excels_sep_line(tmp_path: Path, first: str) -> None:
    """Excel writes `sep=;` above the header: kept, the rejects open in Excel as the input does,
    and a diff against the input shows only the rows. Its quotes do not make every cell quoted."""
    rows = f"id;jobTitle;city\r\n{LEAD};CTO, EMEA;Oslo\r\n"
    out = rejects_of(tmp_path, "in.csv", codecs.BOM_UTF8 + f"{first}\r\n{rows}".encode())
    assert (
        out.read_bytes()
        == codecs.BOM_UTF8
        + (
            f"{first}\r\nid;jobTitle;city;_status;_message\r\n"
            f"{LEAD};CTO, EMEA;Oslo;not_found;Lead not found\r\n"
        ).encode()
    )
    assert [(u.jobTitle, u.city) for u in updates(out)] == [("CTO, EMEA", "Oslo")]


def test_the_rejects_of_a_sheet_keep_its_header_row(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet["A1"] = "Leads export"
    sheet.append([])
    sheet.append(["id", "city"])
    sheet.append([LEAD, "Paris"])
    book.save(tmp_path / "in.xlsx")
    with Source(tmp_path / "in.xlsx", header_row=3) as source:
        writer = open_rejects(tmp_path / "rejects.xlsx", source)
        for row in source:
            writer.write(row.number, row.raw, Status.NOT_FOUND, "Lead not found", {})  # type: ignore[arg-type]
        writer.close()
    assert [u.city for u in updates(tmp_path / "rejects.xlsx", header_row=3)] == ["Paris"]  # type: ignore[arg-type]


ADDED = ",not_found,Lead not found"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(  # the header's quoting once quoted every cell of every row
            b'"id","jobTitle"\nlead1,B\n',
            f'"id","jobTitle","_status","_message"\nlead1,B{ADDED}\n',
            id="quoted-header-plain-rows",
        ),
        pytest.param(  # and left the rows' quotes out
            b'id,jobTitle\n"lead1","B"\nlead2,"B, c"\n',
            'id,jobTitle,_status,_message\n"lead1","B","not_found","Lead not found"\n'
            f'lead2,"B, c"{ADDED}\n',
            id="plain-header-quoted-rows",
        ),
        pytest.param(  # every line once took the first line's ending
            b"id,jobTitle\r\nlead1,A\nlead2,B\r\nlead3,C\rlead4,D\n",
            f"id,jobTitle,_status,_message\r\nlead1,A{ADDED}\nlead2,B{ADDED}\r\n"
            f"lead3,C{ADDED}\rlead4,D{ADDED}\n",
            id="mixed-line-endings",
        ),
        pytest.param(  # the two columns take the place of the empty one (no column is unnamed)
            b"id,jobTitle,\nlead1,B,\n",
            f"id,jobTitle,_status,_message\nlead1,B{ADDED}\n",
            id="trailing-delimiter",
        ),
        pytest.param(  # a line break is added: the next row written must not join the last one
            b"id,jobTitle\nlead1,B",
            f"id,jobTitle,_status,_message\nlead1,B{ADDED}\n",
            id="no-final-line-break",
        ),
        pytest.param(  # a cell over two lines is kept as it was too
            b'id,jobTitle\r\nlead1,"Line 1\nLine 2"\r\n',
            f'id,jobTitle,_status,_message\r\nlead1,"Line 1\nLine 2"{ADDED}\r\n',
            id="cell-over-two-lines",
        ),
    ],
)
def test_each_rejected_row_is_its_own_text_with_the_two_columns_added(
    tmp_path: Path, data: bytes, expected: str
) -> None:
    """A diff against the input shows only the rows: each keeps its own quoting and line end."""
    out = rejects_of(tmp_path, "in.csv", data)
    assert out.read_bytes() == expected.encode()
    assert updates(out) == updates(tmp_path / "in.csv")


def test_a_row_whose_cells_do_not_fill_the_header_is_written_cell_by_cell(tmp_path: Path) -> None:
    """Its own text would put `_status` under another column: its cells are padded instead."""
    data = b'id,jobTitle,city\n"lead1","B"\nlead2,C,Oslo,\n'
    out = rejects_of(tmp_path, "in.csv", data)
    assert out.read_bytes().split(b"\n")[1:3] == [
        b"lead1,B,,not_found,Lead not found",
        b"lead2,C,Oslo,not_found,Lead not found",
    ]

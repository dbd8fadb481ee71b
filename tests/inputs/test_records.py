"""Records in bounded memory: a huge or broken record is one `invalid` row, never several rows,
and the record after it is read as it should be (CSV and JSON lines)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bulk_updater import Invalid, LeadUpdate, Source
from bulk_updater.inputs.records import CHUNK, MAX_RECORD, csv_records, json_lines

ID1, ID2, ID3 = (f"{n:024x}" for n in (1, 2, 3))
VICTIM = "victim" + "0" * 18


def rows_of(path: Path) -> list[tuple[int, LeadUpdate | Invalid]]:
    return [(row.number, row.item) for row in Source(path)]


def test_a_cell_over_the_limit_smuggles_nothing(tmp_path: Path) -> None:
    """The adversarial file: a quoted cell of 1 MiB + 100 characters that holds, after its first
    megabyte, what would read as a row updating another lead."""
    smuggled = "x" * (MAX_RECORD + 100) + f"\n{VICTIM},Pwned\ntail"
    path = tmp_path / "in.csv"
    path.write_text(
        f'id,firstName\n{ID1},Alice\n{ID2},"{smuggled}"\n{ID3},Carol\n', encoding="utf-8"
    )
    rows = rows_of(path)
    assert [row for row, _ in rows] == [1, 2, 3]
    first, second, third = (item for _, item in rows)
    assert isinstance(first, LeadUpdate)
    assert first.firstName == "Alice"
    assert isinstance(second, Invalid)
    assert "larger than 1 MiB" in second.message
    assert isinstance(third, LeadUpdate)
    assert (third.id, third.firstName) == (ID3, "Carol")
    assert all(getattr(item, "id", "") != VICTIM for _, item in rows)


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_records_keep_their_first_line_number(newline: str) -> None:
    text = newline.join(["id,note", 'a,"two', 'lines"', "b,plain", "", 'c,"x""y"', "d,z"])
    records = list(csv_records(io.StringIO(text + newline, newline="\n")))
    assert [line for line, _ in records] == [1, 2, 4, 5, 6, 7]
    assert records[1][1] == f'a,"two{newline}lines"{newline}'


@pytest.mark.parametrize(
    ("first", "rest", "expected"),
    [
        ("id,city\n", "a,Oslo\n", [(1, "id,city\n"), (2, "a,Oslo\n")]),
        ("id,city\r", "\na,Oslo\r\n", [(1, "id,city\r\n"), (2, "a,Oslo\r\n")]),  # CRLF split
        ("id,city\r", "a,Oslo\r", [(1, "id,city\r"), (2, "a,Oslo\r")]),  # bare CRs
        ('id,"ci', 'ty"\na,Oslo\n', [(1, 'id,"city"\n'), (2, "a,Oslo\n")]),  # a line cut short
        ("", "", []),
    ],
)
def test_the_text_read_ahead_is_read_first(first: str, rest: str, expected: list[object]) -> None:
    """The header line read to find the delimiter (`first`) is the start of the first record,
    whole with what follows it in the stream."""
    assert list(csv_records(io.StringIO(rest, newline=""), first=first)) == expected


def test_a_plain_line_is_a_record_within_the_limit_only() -> None:
    """A line with no quote is a record whole however it was read (in one read or several),
    and `None` once longer than the limit."""
    long = "x" * (3 * CHUNK)
    text = f"id,note\na,{long}\nb,xxxxxxxxxx\nc,y\r\n"
    records = list(csv_records(io.StringIO(text, newline="")))
    assert records == [(1, "id,note\n"), (2, f"a,{long}\n"), (3, "b,xxxxxxxxxx\n"), (4, "c,y\r\n")]
    records = list(csv_records(io.StringIO(text, newline=""), limit=8))
    assert records == [(1, "id,note\n"), (2, None), (3, None), (4, "c,y\r\n")]


def test_an_unterminated_quote_is_one_record_to_the_end() -> None:
    text = 'id,note\na,"never closed\nb,1\nc,2\n'
    records = list(csv_records(io.StringIO(text, newline="\n")))
    assert [line for line, _ in records] == [1, 2]


def test_a_record_too_large_is_skipped_without_being_kept(tmp_path: Path) -> None:
    big = "y" * (3 * MAX_RECORD)
    stream = io.StringIO(f'id,note\na,"{big}"\nb,"short"\n', newline="\n")
    records = list(csv_records(stream))
    assert records == [(1, "id,note\n"), (2, None), (3, 'b,"short"\n')]


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ('"a""b"', 3),  # a doubled quote inside a quoted cell
        ('"a,b"', 3),  # a delimiter inside quotes
        ('x"y', 3),  # a quote inside an unquoted cell is literal
        ('"a"b', 3),  # malformed: parsing reports it; the record still ends at its line
    ],
)
def test_quoting_follows_the_csv_module(cell: str, expected: int) -> None:
    text = f"id,note\nr1,{cell}\nr2,after\n"
    records = list(csv_records(io.StringIO(text, newline="\n")))
    assert len(records) == expected
    assert records[-1][1] == "r2,after\n"


def test_json_line_over_the_limit_is_one_invalid_row(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    huge = json.dumps({"id": ID1, "firstName": "z" * (2 * MAX_RECORD)})
    path.write_text(f'{huge}\n{{"id": "{ID2}", "firstName": "Bo"}}\n', encoding="utf-8")
    (_, first), (row, second) = rows_of(path)
    assert isinstance(first, Invalid)
    assert "larger than 1 MiB" in first.message
    assert row == 2
    assert isinstance(second, LeadUpdate)
    assert second.firstName == "Bo"


@pytest.mark.parametrize("depth", [10, 500, 973, 990, 5000, 100_000])
def test_a_json_id_nested_at_any_depth_is_one_invalid_row(tmp_path: Path, depth: int) -> None:
    path = tmp_path / "in.jsonl"
    nested = "[" * depth + "]" * depth
    path.write_text(f'{{"id": {nested}, "city": "x"}}\n{{"id": "{ID2}", "city": "y"}}\n')
    (_, first), (_, second) = rows_of(path)
    assert isinstance(first, Invalid)
    assert len(first.id) <= 201
    assert isinstance(second, LeadUpdate)


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_nul_and_control_characters_anywhere_make_the_row_invalid(tmp_path: Path, fmt: str) -> None:
    filler = [f"{n:024x},{'p' * 60}" for n in range(10, 400)]  # more than the first 8 KB
    bad = [f"{ID1},a\x00b", f"{ID2},a\x01b", f"{ID3},tab\tand\r\nnewline"]
    if fmt == "csv":
        lines = ["id,city", *filler, *bad[:2], f'{ID3},"tab\tand\r\nnewline"']
        text = "\n".join(lines) + "\n"
    else:
        records = [dict(zip(("id", "city"), r.split(",", 1), strict=True)) for r in filler + bad]
        text = "".join(json.dumps(r) + "\n" for r in records)
    path = tmp_path / f"in.{fmt}"
    path.write_bytes(text.encode())
    *_, (_, nul), (_, ctrl), (_, fine) = rows_of(path)
    assert isinstance(nul, Invalid)
    assert isinstance(ctrl, Invalid)
    assert "control character" in ctrl.message
    assert isinstance(fine, LeadUpdate)
    assert fine.city == "tab\tand\r\nnewline"


def test_counting_agrees_with_reading(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    big = "q" * (MAX_RECORD + 1)
    path.write_text(f'id,city\n{ID1},"a\nb"\n\n{ID2},"{big}"\n{ID3},c\n', encoding="utf-8")
    source = Source(path)
    assert source.count() == 3
    assert len(list(source)) == 3


def test_json_lines_keeps_line_numbers() -> None:
    stream = io.StringIO('{"a": 1}\n\n{"b":\r2}\n', newline="\n")
    assert list(json_lines(stream)) == [(1, '{"a": 1}\n'), (2, "\n"), (3, '{"b":\r2}\n')]


# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork and exec.
MEMORY_PROBE = """
import sys
from bulk_updater import Source
rows = sum(1 for _ in Source(sys.argv[1]))
peak = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:")).split()[1]
print(rows, int(peak) // 1024)
"""


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_memory_stays_flat_for_a_huge_record(tmp_path: Path, fmt: str) -> None:
    """A 200 MB cell or JSON string is read a chunk at a time, never held."""
    path = tmp_path / f"huge.{fmt}"
    size = 200 << 20
    with open(path, "w", encoding="utf-8") as file:
        if fmt == "csv":
            file.write(f'id,city\n{ID1},"')
            for _ in range(size >> 20):
                file.write("h" * (1 << 20))
            file.write(f'"\n{ID2},after\n')
        else:
            file.write(f'{{"id": "{ID1}", "city": "')
            for _ in range(size >> 20):
                file.write("h" * (1 << 20))
            file.write(f'"}}\n{{"id": "{ID2}", "city": "after"}}\n')
    done = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, str(path)], capture_output=True, text=True, check=True
    )
    rows, peak_mb = map(int, done.stdout.split())
    assert rows == 2
    assert peak_mb < 100, f"peak RSS {peak_mb} MB"

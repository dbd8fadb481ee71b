"""`Source` as a whole: opening the file, whole-file errors, the BOM, the format, standard input."""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import pytest

from bulk_updater import ConfigError, InputError, Source
from bulk_updater.inputs import numbered
from tests.inputs.conftest import jsonl, only_invalid, only_update, read_all, write

# --- opening


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


def test_source_accepts_a_pathlib_path(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text("id,city\nabc,Oslo\n", encoding="utf-8")
    assert [row.number for row in Source(path)] == [1]


# --- files that are not a table of text


def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="empty"):
        Source(write(tmp_path / "in.csv", ""))


def test_file_that_is_not_text(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10")
    with pytest.raises(InputError, match="not a text file"):
        Source(str(path))


def test_a_zip_named_csv_is_read_as_a_workbook_and_refused_as_one(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00")
    with pytest.raises(InputError, match="workbook"):
        Source(str(path))


def test_jsonl_that_is_not_text(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"id": "a"}\n\x00\x01\x02')
    with pytest.raises(InputError, match="not a text file"):
        Source(str(path))


def test_header_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes("id,pr\u00e9nom\nlead1,x\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"line 1 is not UTF-8.*--encoding cp1252"):
        Source(str(path))


def test_bom_before_a_quoted_header(tmp_path: Path) -> None:
    rows = read_all(write(tmp_path / "in.csv", '"id","jobTitle"\nlead1,CTO\n', bom=True))
    assert only_update(rows[0][1]).body() == {"jobTitle": "CTO"}


# --- the format


def test_unknown_extension_needs_a_format(tmp_path: Path) -> None:
    path = write(tmp_path / "in.dat", "id,city\nlead1,X\n")
    with pytest.raises(ConfigError, match="--format"):
        Source(path)
    rows = read_all(path, format="csv")
    assert only_update(rows[0][1]).body() == {"city": "X"}


def test_jsonl_is_chosen_by_extension(tmp_path: Path) -> None:
    for name in ("in.jsonl", "in.NDJSON"):
        rows = read_all(jsonl(tmp_path / name, {"id": "lead1", "city": "X"}))
        assert only_update(rows[0][1]).body() == {"city": "X"}


# --- JSON lines: one object a line


@pytest.mark.parametrize(
    "line", ["not json", '{"id": "lead1", "city": ', "[1, 2]", '"a string"', "42", "null"]
)
def test_jsonl_line_that_is_not_an_object_is_invalid(tmp_path: Path, line: str) -> None:
    rows = read_all(jsonl(tmp_path / "in.jsonl", line, {"id": "lead2", "city": "X"}))
    assert [row for row, _ in rows] == [1, 2]
    assert "line" in only_invalid(rows[0][1]).message
    assert only_update(rows[1][1]).id == "lead2"


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
    assert only_update(rows[0].item).body() == {"city": "Oslo, NO"}
    assert "column id" in only_invalid(rows[1].item).message


async def test_stdin_jsonl_read_in_a_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    records = [{"id": f"lead{i}", "city": str(i)} for i in range(600)]
    fake_stdin(monkeypatch, "".join(json.dumps(r) + "\n" for r in records).encode())
    source = Source("-", format="jsonl")
    rows = [row async for row in numbered(source)]
    assert [row.number for row in rows] == list(range(1, 601))
    assert [only_update(row.item).body() for row in rows] == [{"city": str(i)} for i in range(600)]


def test_stdin_whole_file_error_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_stdin(monkeypatch, b"id,jobtitel\nlead1,CTO\n")
    with pytest.raises(InputError, match="did you mean `jobTitle`"):
        Source("-", format="csv")

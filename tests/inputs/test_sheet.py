"""A workbook's sheet and shared strings read in bounded memory: the 1 MiB cell limit of CSV holds
for `.xlsx` too, whatever the workbook holds. Hostile workbooks are written here, a part at a
time, highly compressible, so they are small on disk; memory is measured in a subprocess (its
peak resident size), a bound that does not depend on timing."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from bulk_updater import InputError, Source
from tests.inputs.conftest import only_invalid, only_update

NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
_TYPES = (
    '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
    'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-'
    'package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml"'
    ' ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.spreadsheetml.sharedStrings+xml"/></Types>'
)
_RELS = '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
_OFFICE = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PARTS = {
    "[Content_Types].xml": _TYPES,
    "_rels/.rels": f'{_RELS}<Relationship Id="rId1" Type="{_OFFICE}/officeDocument" '
    'Target="xl/workbook.xml"/></Relationships>',
    "xl/workbook.xml": f'<workbook {NS} xmlns:r="{_OFFICE}"><sheets><sheet name="Leads" '
    'sheetId="1" r:id="rId1"/></sheets></workbook>',
    "xl/_rels/workbook.xml.rels": f'{_RELS}<Relationship Id="rId1" Type="{_OFFICE}/worksheet" '
    f'Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="{_OFFICE}/sharedStrings" '
    'Target="sharedStrings.xml"/></Relationships>',
}
MIB = 1 << 20


def hostile(
    path: Path,
    sheet: Iterable[bytes],
    strings: Iterable[bytes],
    compression: int = zipfile.ZIP_DEFLATED,
    parts: dict[str, str] = _PARTS,
) -> Path:
    """A workbook whose sheet and shared strings are written from chunks (compressed as written)."""
    with zipfile.ZipFile(path, "w", compression, compresslevel=1) as package:
        for name, text in parts.items():
            package.writestr(name, text)
        parts = (("xl/worksheets/sheet1.xml", sheet), ("xl/sharedStrings.xml", strings))
        for name, chunks in parts:
            with package.open(name, "w", force_zip64=True) as part:
                for chunk in chunks:
                    part.write(chunk)
    return path


def inline(text: str) -> bytes:
    return f'<c t="inlineStr"><is><t>{text}</t></is></c>'.encode()


def sheet(big: int = 0) -> Iterator[bytes]:
    """id, city; row 2 holds a city of `big` bytes, row 3 a city from the shared strings."""
    yield f"<worksheet {NS}><sheetData><row>".encode() + inline("id") + inline("city") + b"</row>"
    yield b"<row>" + inline("lead1") + b'<c t="inlineStr"><is><t>'
    for _ in range(big // MIB):
        yield b"y" * MIB
    yield b"</t></is></c></row><row>" + inline("lead2") + b'<c t="s"><v>0</v></c></row>'
    yield b"</sheetData></worksheet>"


def strings(total: int, size: int = 1000) -> Iterator[bytes]:
    """Shared strings of `size` characters each, `total` bytes of them."""
    yield f"<sst {NS}>".encode()
    one = b"<si><t>" + b"x" * size + b"</t></si>"
    for _ in range(max(1, total // len(one))):
        yield one
    yield b"</sst>"


_PEAK = """
import sys
from bulk_updater import InputError, Source
try:
    print([str(row.item)[:60] for row in Source(sys.argv[1])])
except InputError as exc:
    print("refused:", exc)
print("peak", next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM")))
"""


def peak(path: Path) -> tuple[str, int]:
    """What reading `path` printed, and the peak memory it took (MB), in a fresh process."""
    done = subprocess.run([sys.executable, "-c", _PEAK, str(path)], capture_output=True,
                          text=True, check=True)  # fmt: skip
    out, _, kilobytes = done.stdout.rpartition("peak ")
    return out, int(kilobytes) // 1024


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak memory from /proc")
def test_300_mb_of_shared_strings_are_refused_within_bounded_memory(tmp_path: Path) -> None:
    path = hostile(tmp_path / "strings.xlsx", sheet(), strings(300 * MIB))
    assert path.stat().st_size < 4 * MIB
    out, megabytes = peak(path)
    assert "refused:" in out
    assert "export the sheet as CSV" in out
    assert megabytes <= 300


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak memory from /proc")
def test_a_200_mb_cell_is_an_invalid_row_within_bounded_memory(tmp_path: Path) -> None:
    path = hostile(tmp_path / "cell.xlsx", sheet(200 * MIB), strings(100))
    assert path.stat().st_size < 2 * MIB
    out, megabytes = peak(path)
    assert "larger than 1 MiB" in out
    assert "lead2" in out
    assert megabytes <= 300


def test_a_cell_over_1_mib_is_invalid_as_in_csv(tmp_path: Path) -> None:
    path = hostile(tmp_path / "cell.xlsx", sheet(20 * MIB), strings(100))
    first, second = list(Source(path))
    assert "larger than 1 MiB" in only_invalid(first.item).message
    assert only_update(second.item).city == "x" * 1000  # the next row is read as it should be


def test_a_shared_string_over_1_mib_makes_its_rows_invalid(tmp_path: Path) -> None:
    path = hostile(tmp_path / "big.xlsx", sheet(), strings(3 * MIB, size=2 * MIB))
    _, second = list(Source(path))  # the first row sets no field
    assert "larger than 1 MiB" in only_invalid(second.item).message


def test_a_row_of_many_cells_over_1_mib_in_all_is_invalid(tmp_path: Path) -> None:
    cells = b"".join(inline("z" * 1000) for _ in range(1100))
    rows = [
        f"<worksheet {NS}><sheetData><row>".encode() + inline("id") + inline("city"),
        b"</row><row>" + inline("lead1") + cells + b"</row></sheetData></worksheet>",
    ]
    (row,) = list(Source(hostile(tmp_path / "wide.xlsx", rows, strings(100))))
    assert "larger than 1 MiB" in only_invalid(row.item).message


@pytest.mark.parametrize(
    ("part", "message"),
    [
        (b'<!DOCTYPE w [<!ENTITY a "aaaa">]><worksheet/>', "holds a DTD"),
        (b'<worksheet><c r="' + b"A" * (2 * MIB) + b'"/></worksheet>', "a tag larger than 1 MiB"),
        (b"<worksheet><!--" + b"c" * (2 * MIB) + b"--></worksheet>", "a tag larger than 1 MiB"),
        (b"<worksheet><sheetData><row>" + inline("id") + b"</row><row>", "damaged after row 1"),
        (b"<worksheet><sheetData", r"damaged \(unclosed token"),
    ],
)
def test_hostile_xml_is_refused_with_one_line(tmp_path: Path, part: bytes, message: str) -> None:
    path = hostile(tmp_path / "bad.xlsx", [part], strings(100))
    with pytest.raises(InputError, match=message):
        list(Source(path))


def test_a_damaged_sheet_is_refused_before_any_row_is_handed_out(tmp_path: Path) -> None:
    """A bad CRC shows only at the end of the part: the sheet is read through when opened, so
    the damaged bytes (`Mal!e` for `Alice`) are never sent."""
    rows = [f"<worksheet {NS}><sheetData><row>".encode() + inline("id") + inline("firstName")]
    rows += [b"<row>" + inline("lead1") + inline("Alice") + b"</row>"]
    rows += [b"<row>" + inline(f"lead{n}") + inline("Filler") + b"</row>" for n in range(3000)]
    path = hostile(tmp_path / "crc.xlsx", [*rows, b"</sheetData></worksheet>"], strings(100),
                   compression=zipfile.ZIP_STORED)  # fmt: skip
    data = path.read_bytes()
    path.write_bytes(data.replace(b"Alice", b"Mal!e", 1))
    with pytest.raises(InputError, match=r"the workbook is damaged \(Bad CRC-32") as caught:
        Source(path)
    assert "export or copy it again" in str(caught.value)


def test_a_row_of_shared_strings_counts_their_text_not_their_index(tmp_path: Path) -> None:
    """Three cells that point to one 600 KB string are a row of 1.8 MB, as in CSV."""
    part = f"<worksheet {NS}><sheetData><row>".encode() + inline("id") + inline("city")
    part += inline("region") + inline("zone") + b"</row><row>" + inline("lead1")
    part += b'<c t="s"><v>0</v></c>' * 3 + b"</row></sheetData></worksheet>"
    columns = {"region": "customFields.region", "zone": "customFields.zone"}
    path = hostile(tmp_path / "sst.xlsx", [part], strings(1, size=600_000))
    (row,) = list(Source(path, columns=columns))
    assert "larger than 1 MiB" in only_invalid(row.item).message


def test_a_part_read_whole_is_bounded_whatever_its_name(tmp_path: Path) -> None:
    """`[Content_Types].xml` names the workbook part: one renamed is checked as well."""
    parts = dict(_PARTS)
    parts["[Content_Types].xml"] = _TYPES.replace("/xl/workbook.xml", "/xl/wb2.xml")
    workbook = parts.pop("xl/workbook.xml").replace("<sheets>", " " * (17 * MIB) + "<sheets>")
    parts["xl/wb2.xml"] = workbook
    parts["xl/_rels/wb2.xml.rels"] = parts.pop("xl/_rels/workbook.xml.rels")
    parts["xl/workbook.xml"] = "<workbook/>"  # there, but not the part openpyxl reads
    path = hostile(tmp_path / "wb.xlsx", sheet(), strings(100), parts=parts)
    assert path.stat().st_size < MIB
    with pytest.raises(InputError, match=r"`xl/wb2.xml` unpacks to more than 16 MiB"):
        Source(path)


def test_a_formula_saved_as_empty_text_is_an_empty_cell_not_a_missing_value(
    tmp_path: Path,
) -> None:
    row = (
        b"<row>" + inline("lead1") + inline("Oslo")
        + b'<c t="str"><f>IF(1,"","")</f><v></v></c><c><f>1+1</f><v/></c></row>'
    )  # fmt: skip
    part = f"<worksheet {NS}><sheetData><row>".encode() + inline("id") + inline("city")
    part += inline("region") + inline("score") + b"</row>" + row + b"</sheetData></worksheet>"
    columns = {"region": "customFields.region", "score": "customFields.score"}
    (only,) = list(Source(hostile(tmp_path / "f.xlsx", [part], strings(100)), columns=columns))
    message = only_invalid(only.item).message  # Excel saves "" as text; a script saves nothing
    assert message.startswith("column score: a formula with no saved value")

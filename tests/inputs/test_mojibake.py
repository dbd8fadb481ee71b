"""UTF-8 text read with a legacy `--encoding`, told apart from legacy text whose few non-ASCII
bytes happen to be valid UTF-8 (`mojibake.py`): the one refused, the other read as given."""

from __future__ import annotations

from pathlib import Path

import pytest

from bulk_updater import InputError, Invalid, Source
from tests.inputs.conftest import only_invalid, only_update
from tests.inputs.test_source import fake_stdin

LEAD = "665d4e5f6a7b8c9d0e1f2a3b"


def last_names(path: Path, data: bytes, encoding: str) -> list[str | None]:
    """The last name of each row of a file of `data`, checked whole first as a run checks it."""
    path.write_bytes(data)
    with Source(path, encoding=encoding) as source:
        source.check()
        return [only_update(row.item).lastName for row in source]


def rows(*names: str) -> str:
    return "id,lastName\n" + "".join(f"{LEAD},{name}\n" for name in names)


@pytest.mark.parametrize(
    ("names", "codec"),
    [
        (["홍", "황"], "euc-kr"),  # Hong, Hwang: read as UTF-8, `ȫ` and `Ȳ`
        (["Groß“"], "cp1252"),  # `ß“` reads as an NKo letter in UTF-8
        (["Ñº", "Ü€"], "cp1252"),  # a rare Cyrillic letter, a Syriac one
        (["谢", "魏"], "gbk"),  # Xie, Wei: read as UTF-8, Cyrillic `л` and Greek `κ`
        (["Groß“ Ä…"], "cp1252"),  # `Ä…` reads as `ą`, `ß“` as NKo: a tie is no reason
    ],
)
def test_legacy_text_that_happens_to_be_valid_utf8_is_read_as_given(
    tmp_path: Path, names: list[str], codec: str
) -> None:
    data = rows(*names).encode(codec)
    data.decode("utf-8")  # the file is valid UTF-8 indeed
    assert last_names(tmp_path / "in.csv", data, codec) == names


@pytest.mark.parametrize(
    ("name", "codec", "garbled"),
    [
        ("Müller", "cp1252", "MÃ¼ller"),
        ("Mu\u0308ller", "cp1252", "MuÌ\u02c6ller"),  # macOS's decomposed `ü`
        ("Ștefănescu", "cp1252", "È\u02dctefÄƒnescu"),  # Romanian, from Latin Extended-B
        ("O\u2019Brien", "cp1252", "Oâ€\u2122Brien"),  # a curly apostrophe
        ("Müller", "euc-kr", "M체ller"),  # a Hangul syllable inside a Latin word
        ("Müller", "shift_jis", "Mﾃｼller"),
    ],
)
def test_utf8_text_read_with_a_legacy_encoding_is_refused(
    tmp_path: Path, name: str, codec: str, garbled: str
) -> None:
    path = tmp_path / "in.csv"
    with pytest.raises(InputError) as refused:
        last_names(path, rows("Ann", name).encode(), codec)
    assert str(refused.value) == (
        f"{path}: the file is UTF-8 text, not {codec} (line 3 holds `{name}`, which {codec} reads "
        f"as `{garbled}`); drop --encoding {codec}"
    )


def test_utf8_text_wins_by_its_many_letters_over_a_rare_one(tmp_path: Path) -> None:
    """One odd character (IPA) among many German letters: the file is still UTF-8."""
    path = tmp_path / "in.csv"
    with pytest.raises(InputError, match="line 2 holds `Müller`"):
        last_names(path, rows("Müller", "Köln", "ʃ").encode(), "cp1252")


@pytest.mark.parametrize("format", ["csv", "jsonl"])
def test_standard_input_rows_of_utf8_read_with_a_legacy_encoding_are_invalid(
    monkeypatch: pytest.MonkeyPatch, format: str
) -> None:
    """A pipe cannot be checked ahead: each row is, by the same vote, and never sent garbled."""
    # Ann and Müller in UTF-8; Groß“ in cp1252, whose bytes are valid UTF-8 too.
    written = [("Ann", "utf-8"), ("Müller", "utf-8"), ("Groß“", "cp1252")]
    if format == "csv":
        lines = ["id,lastName", *(f"{LEAD},{name}" for name, _ in written)]
    else:
        lines = [f'{{"id": "{LEAD}", "lastName": "{name}"}}' for name, _ in written]
    codecs = ["utf-8"] * (len(lines) - len(written)) + [codec for _, codec in written]
    data = b"".join(f"{line}\n".encode(codec) for line, codec in zip(lines, codecs, strict=True))
    fake_stdin(monkeypatch, data)
    with Source("-", format=format, encoding="cp1252") as source:
        ann, muller, gross = (row.item for row in source)
    assert only_update(ann).lastName == "Ann"
    assert only_invalid(muller) == Invalid(
        LEAD,
        "the row is UTF-8 text, not cp1252 (it holds `Müller`, which cp1252 reads as `MÃ¼ller`); "
        "drop --encoding cp1252",
    )
    assert only_update(gross).lastName == "Groß“"  # a cp1252 row, read as given

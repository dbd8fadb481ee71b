"""What a server or the input says reaches a terminal, a log or a report without a character that
acts there: C0 and C1 controls (U+009B starts an escape sequence, as ESC does), the line and
paragraph separators, and the bidirectional marks, overrides and isolates."""

from __future__ import annotations

import csv
import json
import subprocess
import unicodedata
from pathlib import Path

import pytest
from aiohttp import web

from bulk_updater.answers import one_line
from bulk_updater.printable import escape, escape_json
from bulk_updater.report.formulas import cell, email_cell
from bulk_updater.sandbox import SandboxThread
from tests.cli.conftest import KEY, clean_env, command
from tests.conftest import make_leads

#: Each character that must never reach a terminal or a report as itself.
ACTING = [
    "\x1b", "\x07", "\x00", "\r", "\x7f", "\x85", "\x9b", "\x9d",
    "\u061c", "\u200e", "\u200f", "\u2028", "\u2029",
    "\u202a", "\u202b", "\u202c", "\u202d", "\u202e",
    "\u2066", "\u2067", "\u2068", "\u2069",
    # invisible: zero-width space, non-joiner, joiner, BOM, soft hyphen, word joiner and the
    # invisible operators, tag characters
    "\u200b", "\u200c", "\u200d", "\ufeff", "\u00ad", "\u2060", "\u2061", "\u2062",
    "\u2063", "\u2064", "\U000e0001", "\U000e0041", "\U000e007f",
]  # fmt: skip
#: A server's message with every one of them.
HOSTILE = "bad \x9b31m value \u202egnp.exe " + "".join(ACTING) + " end"


def acting_in(text: str) -> list[str]:
    return sorted({char for char in ACTING if char in text})


@pytest.mark.parametrize("char", ACTING)
def test_each_acting_character_is_shown_as_its_escape(char: str) -> None:
    code = ord(char)
    expected = f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"
    if code > 0xFFFF:
        expected = f"\\U{code:08x}"
    assert escape(f"a{char}b") == f"a{expected}b"
    assert cell(f"a{char}b") == f"a{expected}b"
    assert email_cell(f"ann{char}@x.com") == f"ann{expected}@x.com"


def test_every_control_format_and_separator_character_is_escaped() -> None:
    """Unicode categories Cc, Cf (invisible or reordering), Zl and Zp, as this Python knows
    them: none is left as itself, and JSON lines read back the same text."""
    kinds = {"Cc", "Cf", "Zl", "Zp"}
    acting = "".join(
        char for char in map(chr, range(0x110000)) if unicodedata.category(char) in kinds
    )
    assert escape(acting).isascii()
    line = escape_json(json.dumps({"text": acting}, ensure_ascii=False))
    assert line.isascii()
    assert json.loads(line) == {"text": acting}


def test_text_that_shows_as_itself_is_left_alone() -> None:
    text = "straße, café, 東京, مرحبا, עברית, emoji 🙂, tab-free"
    assert escape(text) == text
    assert escape("one\ntwo\x9b", keep="\n") == "one\ntwo\\x9b"


def test_a_json_line_keeps_its_values_and_shows_no_acting_character() -> None:
    record = {"message": HOSTILE, "id": "ab\u202ecd"}
    line = escape_json(json.dumps(record, ensure_ascii=False))
    assert acting_in(line) == []
    assert json.loads(line) == record


def test_a_servers_message_loses_every_acting_character() -> None:
    cleaned = one_line(HOSTILE)
    assert acting_in(cleaned) == []
    assert cleaned.startswith("bad 31m value gnp.exe")
    assert cleaned.endswith(" end")


@pytest.mark.parametrize("report_name", ["report.csv", "report.jsonl"])
def test_nothing_a_server_or_the_input_says_acts_on_a_terminal_or_in_a_report(
    tmp_path: Path, report_name: str
) -> None:
    """A 422 and then a 401 whose code and message hold them all, an input whose values, ids
    and column names hold them: the output of a run (`-v` too) and of a dry run, the report, the
    summary."""
    leads = make_leads(3)
    ids = list(leads)

    async def hostile(request: web.Request) -> web.StreamResponse | None:
        status = {ids[0]: 422, ids[1]: 401}.get(request.path.rpartition("/")[2])
        if request.method != "PATCH" or status is None:
            return None
        error = {"code": "BAD\u202eCODE\x9b", "message": HOSTILE}
        return web.json_response({"success": False, "error": error}, status=status)

    source = tmp_path / "in.csv"
    with source.open("w", newline="", encoding="utf-8") as file:
        csv.writer(file).writerows(
            [
                ["id", "jobTitle", "note\u202e\x9b"],
                [ids[0], "A\u202eB\u2066", ""],
                ["ab\u202ecd", "x", ""],
                ["ab\x9bcd", "x", ""],
                [ids[2], "t\x9b", ""],
                [ids[1], "t", ""],
            ]
        )
    report = tmp_path / report_name
    summary = tmp_path / "summary.json"
    by_email = tmp_path / "by_email.csv"
    emails = ("ann\u202e@x.com", "ann\u200b@x.com", "ann\U000e0041@x.com", "ann\u00ad@x.com")
    by_email.write_text("email,jobTitle\n" + "".join(f"{e},t\n" for e in emails), "utf-8")
    rejects = tmp_path / "rejects.csv"
    email_report = tmp_path / ("emails" + report.suffix)
    unknown = ("--ignore-unknown-columns",)
    runs = [
        (source, *unknown, "--report", report, "--summary-json", summary),
        (source, *unknown, "--report", tmp_path / "again.csv", "-v", "--rejects", rejects),
        (source, *unknown, "--dry-run"),
        (by_email, "--match", "email", "-v", "--report", email_report),
        (by_email, "--match", "email", "--dry-run"),
        (source, "--map", "note\u202e\x9b=nothing"),  # refused, quoting the column
    ]
    with SandboxThread(leads, api_key=KEY, intercept=hostile) as sb:
        for extra in runs:
            done = subprocess.run(
                command(*extra, "--base-url", sb.url, "--rate", "0", "--concurrency", "1"),
                env=clean_env(SENDKIT_API_KEY=KEY), capture_output=True, text=True, timeout=30,
                check=False,
            )  # fmt: skip
            assert "Traceback" not in done.stderr
            assert acting_in(done.stdout + done.stderr) == [], (extra, done.stdout, done.stderr)
    # The CSV report's own BOM is no character of its text.
    assert "gnp.exe" in report.read_text("utf-8-sig")  # the message is there, shown as it reads
    assert acting_in(report.read_text("utf-8-sig")) == []
    assert "ann" in email_report.read_text("utf-8-sig")
    assert acting_in(email_report.read_text("utf-8-sig")) == []
    assert "ann\\u200b@x.com" in email_report.read_text("utf-8-sig")
    # A rejects file keeps each input cell as read, to fix and feed back; its message is shown.
    with rejects.open(encoding="utf-8", newline="") as file:
        rejected = {row["id"]: row for row in csv.DictReader(file)}
    assert rejected["ab\u202ecd"]["jobTitle"] == "x"
    assert all(acting_in(row["_message"]) == [] for row in rejected.values())
    assert "gnp.exe" in rejected[ids[0]]["_message"]
    stopped = json.loads(summary.read_text())["stop_message"]
    assert "HTTP 401: bad 31m value gnp.exe" in stopped
    assert acting_in(stopped) == []

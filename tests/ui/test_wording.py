"""The page's words for the engine's flags (`wording.py`): every kind of message that names a
flag and can reach the page, drawn from the code that writes it where that is cheap, says what to
do on the page instead.

The pages themselves show them through `wording.page_words`: the file step (`test_detect.py`),
an answer refused (`test_steps.py`), the Done step's table (`test_browser.py`).
"""

from __future__ import annotations

import re
from pathlib import Path

import openpyxl
import pytest
from yarl import URL

from bulk_updater import BulkUpdater, LeadUpdate, Reply, Source, Status
from bulk_updater.engine.emails import keyed
from bulk_updater.errors import BulkUpdaterError
from bulk_updater.inputs import ColumnMap, Invalid
from bulk_updater.inputs.tags import parse_tags
from bulk_updater.limits.holds import Holds
from bulk_updater.limits.redis_budget import REPAIRED
from bulk_updater.proxy import Proxy, clear_text_problem
from bulk_updater.settings import NOT_FOUND_STOP
from bulk_updater.ui.detect import ReadOptions, detect
from bulk_updater.ui.wording import page_words
from tests.conftest import FakeSender

#: A command named whole, in backticks: what the page cannot do, said as that command.
_COMMAND = re.compile(r"`bulk-updater [^`]*`")


def shown(message: str) -> str:
    """`message` as the page shows it, checked to name no flag but inside a command."""
    assert "--" in message, message  # a message of the command line's, to begin with
    page = page_words(message)
    assert "--" not in _COMMAND.sub("", page), page
    return page


def refusal(path: Path, options: ReadOptions, columns: dict[str, str] | None = None) -> str:
    """Why the page cannot read `path` so (with the page's mapping `columns`), as the engine
    says it."""
    with pytest.raises(BulkUpdaterError) as refused:
        _read(path, options, columns)
    return str(refused.value)


def _read(path: Path, options: ReadOptions, columns: dict[str, str] | None) -> None:
    if columns is None:
        detect(path, path.name, options)
        return
    with options.source(path, ColumnMap(columns)) as source:
        list(source)


def invalid(path: Path) -> str:
    """The message of the one invalid row of `path`, read as `bulk-updater run` reads it."""
    with Source(path) as source:
        (bad,) = [row.item for row in source if isinstance(row.item, Invalid)]
    assert isinstance(bad, Invalid)
    return bad.message


# --- the columns step


def test_a_tags_cell_split_otherwise_names_the_separator_to_choose(tmp_path: Path) -> None:
    problem = parse_tags("VIP,Customer", ";")
    assert isinstance(problem, str)
    assert "choose `,` under Tags separated by" in shown(problem)
    data = tmp_path / "in.csv"
    data.write_text('id,tags\n066091adcd648f9dab09032e,"a|b"\n')
    with Source(data) as source:
        list(source)
        (note,) = source.notes()  # the summary's warning
    assert note.endswith("if the cells are lists, pass --tags-separator '|'")
    assert shown(note).endswith("if the cells are lists, choose `|` under Tags separated by")


def test_a_column_is_given_its_meaning_by_its_field(tmp_path: Path) -> None:
    data = tmp_path / "in.csv"
    data.write_text("Lead ID,Other,City\n066091adcd648f9dab09032e,x,Oslo\n")
    wrong = refusal(data, ReadOptions(), {"Lead ID": "idd"})
    assert "the column `Lead ID` as `idd`: `idd` is not a field" in shown(wrong)
    assert shown(wrong).endswith("or `dropped (not sent)` to drop the column")
    none = refusal(data, ReadOptions(), {"Lead ID": "-", "Other": "-"})
    assert "lead ids under another name: choose id as that column's Field" in shown(none)
    twice = refusal(data, ReadOptions(), {"Lead ID": "id", "Other": "id"})
    assert "(or drop one: `dropped (not sent)` as the Field of `Other`)" in shown(twice)
    with pytest.raises(BulkUpdaterError) as unknown:
        Source(data)  # the rules of `run`, which know no `Other`
    assert "choose what each one is as its Field (`dropped (not sent)` leaves it out)" in shown(
        str(unknown.value)
    )


def test_an_id_column_of_another_systems_ids_names_the_field_to_drop_it(tmp_path: Path) -> None:
    data = tmp_path / "in.csv"
    data.write_text("ID,Email\n00Q5g00000AbCdEEA1,ann@acme.com\n")
    with Source(data) as source:
        list(source)
        (note,) = source.notes()  # the summary's warning
    assert shown(note).endswith(
        "by column `Email` instead, drop the ids: `dropped (not sent)` as the Field of `ID`"
    )


# --- the file step


def test_a_file_not_in_its_encoding_names_the_encoding_to_choose(tmp_path: Path) -> None:
    data = tmp_path / "in.csv"
    data.write_bytes(b"id,city\n066091adcd648f9dab09032e,Z\x81rich\n")  # no cp1252 either
    assert shown(refusal(data, ReadOptions())).endswith("choose another Encoding")
    with pytest.raises(BulkUpdaterError) as default, Source(data) as source:
        source.check()
    assert "choose cp1252 under Encoding (or the encoding it was saved in)" in shown(
        str(default.value)
    )
    binary = tmp_path / "binary.csv"
    binary.write_bytes("id,city\n".encode("utf-16-le"))
    assert "(or choose utf-16 under Encoding, for UTF-16 without a BOM)" in shown(
        refusal(binary, ReadOptions())
    )
    unknown = refusal(data, ReadOptions(encoding="klingon"))
    assert shown(unknown).startswith("Encoding klingon: not an encoding Python knows (choose ")
    latin = tmp_path / "latin.csv"
    latin.write_text("id,jobTitle\n066091adcd648f9dab09032e,CEO\u0085\n")
    assert "(Excel's: cp1252 under Encoding)" in shown(invalid(latin))
    utf8 = tmp_path / "utf8.csv"
    utf8.write_text("id,lastName\n066091adcd648f9dab09032e,Müller\n", encoding="utf-8")
    chosen = refusal(utf8, ReadOptions(encoding="cp1252"))
    assert shown(chosen).endswith("which cp1252 reads as `MÃ¼ller`); choose utf-8 under Encoding")


def test_a_header_row_that_cannot_be_read_names_the_header_row(tmp_path: Path) -> None:
    data = tmp_path / "in.csv"
    data.write_text("Leads to update\n\nid,city\n066091adcd648f9dab09032e,Oslo\n")
    assert "Header row 0: give a line number" in shown(refusal(data, ReadOptions(header_row=0)))
    assert "has no line 9 (Header row 9)" in shown(refusal(data, ReadOptions(header_row=9)))
    empty = shown(refusal(data, ReadOptions(header_row=2)))
    assert "line 2 is empty; the Header row must be the line that names the columns" in empty
    with pytest.raises(BulkUpdaterError) as title:
        Source(data)
    assert "give 3 as Header row, or remove the lines above it" in shown(str(title.value))
    data.write_text("Leads to update\nid,city\n066091adcd648f9dab09032e,Oslo\n")
    data_row = shown(refusal(data, ReadOptions(header_row=3), {}))
    assert data_row.endswith("the header looks to be line 2 (`id`, `city`); give 2 as Header row")


def test_a_header_split_by_another_delimiter_names_the_command(tmp_path: Path) -> None:
    data = tmp_path / "in.csv"
    # A tie: both split the row alike, and neither gives a known column name
    data.write_text("Key;Notes (a, b, c);Town\n066091adcd648f9dab09032e;x, y, z;Oslo\n")
    split = shown(refusal(data, ReadOptions(), {}))
    assert "if it is `;`-separated, run it with `bulk-updater run --delimiter ';'`" in split


def test_a_sheet_that_is_not_there_names_the_sheets_to_choose(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Leads"
    sheet.append(["id", "city"])
    path = tmp_path / "book.xlsx"
    book.save(path)
    missing = shown(refusal(path, ReadOptions(sheet="Nope")))
    assert missing.endswith("no sheet named `Nope`; choose under Sheet one of `Leads`")
    summary = book.create_sheet("Summary", 0)
    summary.append(["Q3 lead cleanup"])
    book.create_sheet("More leads").append(["id", "city"])
    book.save(path)
    first = shown(refusal(path, ReadOptions(), {}))
    assert first.endswith("also has `Leads`, `More leads`; choose one of them under Sheet")
    book.remove(book["More leads"])
    book.save(path)
    assert shown(refusal(path, ReadOptions(), {})).endswith("; choose `Leads` under Sheet")
    book["Leads"].title = "Q3 Leads"
    book.save(path)
    assert shown(refusal(path, ReadOptions(), {})).endswith("; choose `Q3 Leads` under Sheet")


# --- the job


async def test_a_jobs_stops_say_what_to_do_on_the_page() -> None:
    def refused(update: LeadUpdate, attempt: int) -> Reply:
        return Reply(401, "UNAUTHORIZED", "bad key")

    def unknown(update: LeadUpdate, attempt: int) -> Reply:
        return Reply(404, "NOT_FOUND", "Lead not found")

    def down(update: LeadUpdate, attempt: int) -> Reply:
        return Reply(500, "INTERNAL", "oops")

    said = {}
    rows = [{"id": f"lead{i}", "city": "Oslo"} for i in range(NOT_FOUND_STOP + 10)]
    for name, script in (("refused", refused), ("unknown", unknown), ("down", down)):
        sender = FakeSender(script, latency=0)
        async with BulkUpdater(sender=sender, rate=0, backoff_base=0, backoff_max=0) as updater:
            summary = await updater.run(rows)
        assert summary.counts[Status.UPDATED] == 0
        assert summary.stop_message is not None
        said[name] = shown(summary.stop_message)
    assert said["refused"].endswith("check the API key (and the Workspace id, for a platform key)")
    assert "run it with `bulk-updater run --allow-not-found` if you expect that" in said["unknown"]
    assert said["down"].endswith("; Resume later")


def test_the_rest_of_the_engines_advice_is_said_for_the_page() -> None:
    holds = Holds(max_pause=30, give_up_after=60)
    holds.held = 61
    given_up = holds.given_up()
    assert given_up is not None
    assert shown(given_up).endswith("more than the 60s a job may be held; Resume later")
    by_email = keyed(LeadUpdate(id="lead1", city="Oslo"), "email")
    assert isinstance(by_email, Invalid)
    assert shown(by_email.message).startswith("no email to match by (matching by email)")
    proxy = Proxy(URL("http://proxy.example:3128"), "HTTPS_PROXY")
    problem = clear_text_problem("http://127.0.0.1:8765", proxy)
    assert "(or give a proxy on this machine in BULK_UPDATER_PROXY)" in shown(problem)
    assert "`bulk-updater run --redis-clock redis`" in shown(REPAIRED["starts"])
    # Written where they are raised, from an answer or a socket this test does not make:
    dns = "the host api.example is not known (its name does not resolve); check --base-url"
    assert shown(dns).endswith("check the address given to `bulk-updater ui --base-url`")
    search = "was answered 404 (Not Found): the API at --base-url has no lead search"
    assert "the API the page sends to has no lead search" in shown(search)
    distrusted = "sent after its rate-limit headers had said for --max-pause 30s that nothing"
    assert "had said for 30s that nothing" in shown(distrusted)
    unsorted = "it is complete, in the order rows finished, and --resume can read it"
    assert shown(unsorted).endswith("and Resume can read it")


def test_a_message_without_a_flag_is_left_as_it_is() -> None:
    message = "column email: `ann@` is not an email address; fix it"
    assert page_words(message) == message


def test_a_hidden_row_is_unhidden_in_the_workbook_to_send_it(tmp_path: Path) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in (["id", "city"], ["066091adcd648f9dab09032e", "Oslo"]):
        sheet.append(row)
    sheet.row_dimensions[2].hidden = True
    book.save(tmp_path / "in.xlsx")
    with Source(tmp_path / "in.xlsx") as source:
        (row,) = list(source)
        (note,) = source.notes()
    assert isinstance(row.item, Invalid)
    assert shown(row.item.message).endswith("so left out; to send it, unhide it in the workbook")
    assert shown(note).endswith("to send it, unhide it in the workbook")

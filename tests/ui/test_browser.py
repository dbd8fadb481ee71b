"""The page in a real headless Chromium, against the sandbox: the flows issue 26 lists.

Controls are found by their accessible names, as a screen reader finds them. Every wait is on a
condition of the page (`WebDriverWait`), never a fixed sleep.
"""

from __future__ import annotations

import csv
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

from bulk_updater.inputs import Source
from bulk_updater.sandbox import DEFAULT_SANDBOX_KEY, SandboxThread
from bulk_updater.ui import Connection
from tests.ui.conftest import (
    LEADS,
    SAMPLES,
    UiThread,
    all_leads_file,
    new_server,
    salesforce_report,
)

EXPORT = SAMPLES / "excel-export.csv"


def control(driver: Any, name: str) -> Any:
    """The one visible control whose accessible name is `name` (once the page shows it)."""

    def named() -> list[Any]:
        return [
            element
            for element in driver.find_elements(By.CSS_SELECTOR, "button, a, input, select")
            if element.is_displayed() and element.accessible_name == name
        ]

    found = WebDriverWait(driver, 10).until(lambda _: named())
    assert len(found) == 1, f"{len(found)} controls named {name!r}"
    return found[0]


def open_page(driver: Any, ui: UiThread, address: str | None = None) -> None:
    """Open the page through `address` (the token's by default) and wait until it is wired.

    The token's answer moves on to `/` by itself, after `get` returned: acting before `app.js`
    ran would act on a page that does not listen yet.
    """
    driver.get(address or ui.server.url)
    page = f"http://127.0.0.1:{ui.server.port}/"
    wait(
        driver,
        lambda: (
            driver.current_url == page
            and driver.execute_script(
                "return document.readyState === 'complete' && document.body.dataset.ready === '1'"
            )
        ),
    )


def wait(driver: Any, holds: Callable[[], object], timeout: float = 60) -> Any:
    return WebDriverWait(driver, timeout).until(lambda _: holds())


def text(driver: Any, element_id: str) -> str:
    return str(driver.find_element(By.ID, element_id).text)


def choose_file(driver: Any, path: Path) -> None:
    # The button opens the system's file dialog, which a test cannot drive: the file goes to the
    # input the button clicks, as the dialog would give it.
    assert control(driver, "Choose file").tag_name == "button"
    driver.find_element(By.ID, "file").send_keys(str(path))


@pytest.fixture
def sandbox() -> Iterator[SandboxThread]:
    # An API that takes 10 requests a second, slowly: a job of the 60 sample leads lasts long
    # enough to be reloaded and stopped, however fast the engine learns to go.
    with SandboxThread(LEADS, api_key=DEFAULT_SANDBOX_KEY, latency_ms=150, rate=10) as running:
        yield running


def _ui(tmp_path: Path, sandbox: SandboxThread | None = None) -> UiThread:
    connection = None
    if sandbox is not None:
        connection = Connection(SecretStr(DEFAULT_SANDBOX_KEY), sandbox.url, sandbox=True)
    return UiThread(new_server(tmp_path, connection))


def test_the_european_export_with_a_mapping_fix_a_fixed_cell_and_the_downloads(
    tmp_path: Path, browser: Any, downloads: Path
) -> None:
    with _ui(tmp_path) as ui:
        open_page(browser, ui)
        assert "token" not in browser.current_url  # dropped from the address
        control(browser, "Try it on the local sandbox").click()
        wait(browser, lambda: "local sandbox" in text(browser, "where"))
        choose_file(browser, EXPORT)
        wait(browser, lambda: "Look at the columns" in text(browser, "check-counts"))
        assert "cp1252" in text(browser, "detected")
        Select(control(browser, "Field of Owner")).select_by_value("-")
        wait(browser, lambda: "'Lead ID=id'" in text(browser, "command"))
        control(browser, "Check rows").click()
        wait(browser, lambda: "10 rows read: 9 valid, 1 invalid" in text(browser, "check-counts"))
        assert "tags" in text(browser, "invalid")
        cell = control(browser, "Row 10 Tags")
        cell.send_keys(Keys.CONTROL, "a")  # typed over, as a person does (clear() sends a change)
        cell.send_keys('["vip"]', Keys.TAB)
        wait(browser, lambda: "10 valid, 0 invalid" in text(browser, "check-counts"))
        control(browser, "Start").click()
        wait(browser, lambda: "10 rows: 9 updated, 1 not_found" in text(browser, "summary"))
        assert "Finished" in text(browser, "progress")

        control(browser, "Download report").click()
        control(browser, "Download rejects").click()
        wait(
            browser, lambda: {p.name for p in downloads.iterdir()} == {"report.csv", "rejects.csv"}
        )
        sandbox = ui.server.sandbox
        assert sandbox is not None
        with open(downloads / "report.csv", encoding="utf-8-sig", newline="") as file:
            report = list(csv.DictReader(file))
        for line in report:
            lead = sandbox.state.leads.get(line["id"])
            if line["status"] == "updated":
                assert lead is not None
                assert lead["updatedAt"] != LEADS[line["id"]]["updatedAt"]
            else:
                assert (line["status"], lead) == ("not_found", None)
        assert sandbox.state.leads["f64616a3d4cca855af4b6121"]["tags"] == ["vip"]
        rejects = (downloads / "rejects.csv").read_text(encoding="utf-8-sig")
        assert "ffffffffffffffffffffffff" in rejects
        wait(browser, lambda: browser.find_elements(By.ID, "reject-1-0"))
        missing = control(browser, "Reject 1 Lead ID").get_attribute("value")
        assert missing == "ffffffffffffffffffffffff"  # the rejects, in the page to fix
        if picture := os.environ.get("UI_SCREENSHOT"):  # `make screenshot`, for the README
            height = browser.execute_script("return document.documentElement.scrollHeight")
            browser.set_window_size(1280, height + 240)
            browser.execute_script("window.scrollTo(0, 0)")
            assert browser.save_screenshot(picture)

        # The reject fixed in the page, and sent again alone.
        assert not control(browser, "Send fixed rows").is_enabled()
        requests = sandbox.state.requests
        cell = control(browser, "Reject 1 Lead ID")
        cell.send_keys(Keys.CONTROL, "a")
        cell.send_keys("7bc3be32b23532505b2f632b", Keys.TAB)
        control(browser, "Send fixed rows").click()
        wait(browser, lambda: text(browser, "summary") == "1 rows: 1 updated")
        assert text(browser, "job-name") == "The job on excel-export.csv (fixed rows)"
        assert sandbox.state.requests == requests + 1
        assert sandbox.state.leads["7bc3be32b23532505b2f632b"]["city"] == "Nîmes"
        # The first job's report is still offered, apart from the fixed rows' own.
        assert "Job 1, on excel-export.csv (finished: 9 updated" in text(browser, "earlier")
        control(browser, "Download report of job 1").click()
        wait(browser, lambda: (downloads / "report-job1.csv").exists())
        first = (downloads / "report.csv").read_bytes()
        wait(browser, lambda: (downloads / "report-job1.csv").read_bytes() == first)
        # Nothing the page did was refused or failed in the browser (its policy, a missing file).
        assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []


def _done(driver: Any) -> int:
    words = text(driver, "progress").split(": ", 1)[-1].split()
    return int(words[0]) if words and words[0].isdigit() else 0


def test_a_reload_reattaches_and_a_stop_resumes_with_no_row_sent_twice(
    tmp_path: Path, browser: Any, sandbox: SandboxThread
) -> None:
    with _ui(tmp_path, sandbox) as ui:
        open_page(browser, ui)
        choose_file(browser, all_leads_file(tmp_path))
        wait(browser, lambda: "60 valid, 0 invalid" in text(browser, "check-counts"))
        control(browser, "Start").click()
        wait(browser, lambda: _done(browser) >= 3)
        browser.refresh()
        seen = wait(
            browser, lambda: text(browser, "progress").startswith("Running") and _done(browser)
        )
        wait(browser, lambda: _done(browser) > seen)  # the reloaded page follows the job live
        assert browser.find_element(By.ID, "progress").get_attribute("aria-live") == "polite"
        control(browser, "Stop").click()
        wait(browser, lambda: text(browser, "progress").startswith("Stopped"))
        stopped_at = sum(sandbox.state.applied_by_lead.values())
        assert 0 < stopped_at < len(LEADS)
        control(browser, "Resume").click()
        wait(browser, lambda: text(browser, "progress").startswith("Finished"))
        applied = sandbox.state.applied_by_lead
        assert set(applied) == set(LEADS)
        assert max(applied.values()) == 1  # no row was sent twice
        for lead_id, lead in sandbox.state.leads.items():
            assert lead["jobTitle"] == f"Title {lead_id}"


def test_a_second_file_of_the_same_headers_opens_mapped(tmp_path: Path, browser: Any) -> None:
    with _ui(tmp_path) as ui:
        open_page(browser, ui)
        choose_file(browser, EXPORT)
        wait(browser, lambda: "Look at the columns" in text(browser, "check-counts"))
        Select(control(browser, "Field of Owner")).select_by_value("-")
        Select(control(browser, "Field of Last Activity")).select_by_value(
            "customFields.Last Activity"
        )
        wait(browser, lambda: "Last Activity=customFields" in text(browser, "command"))
        control(browser, "Check rows").click()
        wait(browser, lambda: "10 rows read" in text(browser, "check-counts"))
        copy = tmp_path / "december.csv"
        copy.write_bytes(EXPORT.read_bytes())
        choose_file(browser, copy)
        wait(browser, lambda: "december.csv" in text(browser, "detected"))
        wait(browser, lambda: "10 rows read" in text(browser, "check-counts"))  # by itself
        hows = [
            cell.text
            for cell in browser.find_elements(By.CSS_SELECTOR, "#columns td.how-remembered")
        ]
        assert len(hows) == 8
        field = Select(control(browser, "Field of Last Activity")).first_selected_option
        assert field.get_attribute("value") == "customFields.Last Activity"


def test_update_by_email(tmp_path: Path, browser: Any) -> None:
    with SandboxThread(LEADS, api_key=DEFAULT_SANDBOX_KEY) as sandbox, _ui(tmp_path, sandbox) as ui:
        open_page(browser, ui)
        choose_file(browser, all_leads_file(tmp_path, column="email"))
        wait(browser, lambda: "60 valid, 0 invalid" in text(browser, "check-counts"))
        assert "<the lead with the email" in text(browser, "examples")
        control(browser, "Start").click()
        wait(browser, lambda: "60 rows: 60 updated" in text(browser, "summary"), timeout=120)
        for lead_id, lead in sandbox.state.leads.items():
            assert lead["jobTitle"] == f"Title {lead_id}"


def test_a_restart_finds_the_job_and_offers_to_resume_it(
    tmp_path: Path, browser: Any, sandbox: SandboxThread
) -> None:
    with _ui(tmp_path, sandbox) as ui:
        open_page(browser, ui)
        choose_file(browser, all_leads_file(tmp_path))
        wait(browser, lambda: "60 valid, 0 invalid" in text(browser, "check-counts"))
        control(browser, "Start").click()
        wait(browser, lambda: _done(browser) >= 3)
    # The server stopped mid-run (Ctrl+C): the job stopped gracefully, its folder kept.
    sent = sum(sandbox.state.applied_by_lead.values())
    assert 0 < sent < len(LEADS)
    with _ui(tmp_path, sandbox) as ui:
        open_page(browser, ui)
        wait(browser, lambda: text(browser, "progress").startswith("Stopped"))
        assert text(browser, "job-name") == "The job on all-by-id.csv"
        assert not control(browser, "Start").is_enabled()
        control(browser, "Resume").click()
        wait(browser, lambda: text(browser, "progress").startswith("Finished"))
    assert set(sandbox.state.applied_by_lead) == set(LEADS)
    assert max(sandbox.state.applied_by_lead.values()) == 1


def test_a_key_goes_in_a_password_field_and_never_comes_back(tmp_path: Path, browser: Any) -> None:
    key = "sk_live_typed1nThePage0000"
    with _ui(tmp_path) as ui:
        open_page(browser, ui)
        field = control(browser, "SendKit API key")
        assert field.get_attribute("type") == "password"
        field.send_keys(key)
        control(browser, "Use this key").click()
        wait(browser, lambda: text(browser, "where") == "Sending to https://api.sendkit.ai")
        assert not browser.find_element(By.ID, "connect").is_displayed()
        assert browser.find_element(By.ID, "key").get_attribute("value") == ""
        assert key not in browser.page_source
        browser.refresh()
        wait(browser, lambda: text(browser, "where") == "Sending to https://api.sendkit.ai")
        assert key not in browser.page_source


def test_a_429_pause_is_counted_down(tmp_path: Path, browser: Any) -> None:
    with (
        SandboxThread(LEADS, api_key=DEFAULT_SANDBOX_KEY, rate=2) as sandbox,
        _ui(tmp_path, sandbox) as ui,
    ):
        open_page(browser, ui)
        choose_file(browser, all_leads_file(tmp_path))
        wait(browser, lambda: "60 valid, 0 invalid" in text(browser, "check-counts"))
        control(browser, "Start").click()
        wait(
            browser,
            lambda: (
                "Paused (429 Too Many Requests): going on in" in text(browser, "pause")
                and "paused (429 Too Many Requests)" in text(browser, "progress")
            ),
        )
        control(browser, "Stop").click()
        wait(browser, lambda: text(browser, "progress").startswith("Stopped"))
        wait(browser, lambda: text(browser, "pause") == "")


def test_a_header_row_below_title_rows_is_chosen(tmp_path: Path, browser: Any) -> None:
    with _ui(tmp_path) as ui:
        open_page(browser, ui)
        control(browser, "Try it on the local sandbox").click()
        wait(browser, lambda: "local sandbox" in text(browser, "where"))
        choose_file(browser, salesforce_report(tmp_path))
        wait(browser, lambda: "header on row 1" in text(browser, "detected"))
        control(browser, "Header row").send_keys("4", Keys.TAB)
        wait(browser, lambda: "header on row 4" in text(browser, "detected"))
        assert "--header-row 4" in text(browser, "command")
        control(browser, "Check rows").click()  # confirms `Lead ID` as the suggested id
        wait(browser, lambda: "3 rows read: 3 valid, 0 invalid" in text(browser, "check-counts"))
        control(browser, "Start").click()
        wait(browser, lambda: "3 rows: 2 updated, 1 not_found" in text(browser, "summary"))
        sandbox = ui.server.sandbox
        assert sandbox is not None
        assert sandbox.state.leads["066091adcd648f9dab09032e"]["jobTitle"] == "CFO"


def test_a_file_dropped_on_the_drop_zone_is_read(tmp_path: Path, browser: Any) -> None:
    with _ui(tmp_path) as ui:
        open_page(browser, ui)
        # A drop, as the browser dispatches it for a file dragged from the desktop.
        browser.execute_script(
            """
            const data = new DataTransfer();
            data.items.add(new File(["id,city\\n066091adcd648f9dab09032e,Paris\\n"],
                                    "dropped.csv", {type: "text/csv"}));
            const zone = document.getElementById("drop");
            for (const type of ["dragover", "drop"]) {
              zone.dispatchEvent(new DragEvent(type, {dataTransfer: data, bubbles: true}));
            }
            """
        )
        wait(browser, lambda: "1 rows read: 1 valid, 0 invalid" in text(browser, "check-counts"))
        assert text(browser, "detected").startswith("dropped.csv: csv")


def test_the_same_file_chosen_again_is_read_again(tmp_path: Path, browser: Any) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text("id,city\n066091adcd648f9dab09032e,Paris\n")
    with _ui(tmp_path) as ui:
        open_page(browser, ui)
        choose_file(browser, rows)
        wait(browser, lambda: "1 rows read: 1 valid, 0 invalid" in text(browser, "check-counts"))
        rows.write_text("id,city\n066091adcd648f9dab09032e,Paris\nnot a lead id,Lyon\n")
        choose_file(browser, rows)  # fixed in the spreadsheet, saved, chosen again
        wait(browser, lambda: "2 rows read: 1 valid, 1 invalid" in text(browser, "check-counts"))


def test_a_file_of_another_format_is_refused_with_what_to_do(tmp_path: Path, browser: Any) -> None:
    wrong = tmp_path / "leads.pdf"
    wrong.write_bytes(b"%PDF-1.7")
    with _ui(tmp_path) as ui:
        open_page(browser, ui)
        choose_file(browser, wrong)
        wait(browser, lambda: text(browser, "error").startswith("leads.pdf: the page reads CSV"))
        assert text(browser, "upload-status") == ""


def test_the_file_given_to_the_browser_opens_the_page_once(tmp_path: Path, browser: Any) -> None:
    with _ui(tmp_path) as ui:
        opener = ui.call(ui.server.browser_file)
        open_page(browser, ui, opener.as_uri())  # the token is dropped from the address
        assert control(browser, "Choose file").is_enabled()
        browser.refresh()  # the cookie it got keeps it open
        assert control(browser, "Choose file").is_enabled()
        assert ui.server.guard.token not in browser.page_source


def test_the_tags_separator_is_chosen_where_the_columns_are(tmp_path: Path, browser: Any) -> None:
    rows = tmp_path / "tags.csv"
    rows.write_text('id,tags\n066091adcd648f9dab09032e,"vip|hot"\n')
    with _ui(tmp_path) as ui:
        open_page(browser, ui)
        control(browser, "Try it on the local sandbox").click()
        wait(browser, lambda: "local sandbox" in text(browser, "where"))
        choose_file(browser, rows)
        wait(browser, lambda: "1 rows read: 0 valid, 1 invalid" in text(browser, "check-counts"))
        Select(control(browser, "Tags separated by")).select_by_value("|")
        wait(browser, lambda: text(browser, "command").endswith("--tags-separator '|'"))
        control(browser, "Check rows").click()
        wait(browser, lambda: "1 rows read: 1 valid, 0 invalid" in text(browser, "check-counts"))
        control(browser, "Start").click()
        wait(browser, lambda: "1 rows: 1 updated" in text(browser, "summary"))
        sandbox = ui.server.sandbox
        assert sandbox is not None
        assert sandbox.state.leads["066091adcd648f9dab09032e"]["tags"] == ["vip", "hot"]


def test_the_done_steps_rejects_say_what_to_do_on_the_page(
    tmp_path: Path, browser: Any, downloads: Path
) -> None:
    # The engine says `pass --tags-separator '|'`; the page has a select for that.
    rows = tmp_path / "tags.csv"
    rows.write_text('id,tags\n066091adcd648f9dab09032e,"vip|hot"\n7bc3be32b23532505b2f632b,vip\n')
    page_words = "choose `|` under Tags separated by"
    with _ui(tmp_path) as ui:
        open_page(browser, ui)
        control(browser, "Try it on the local sandbox").click()
        wait(browser, lambda: "local sandbox" in text(browser, "where"))
        choose_file(browser, rows)
        wait(browser, lambda: "2 rows read: 1 valid, 1 invalid" in text(browser, "check-counts"))
        assert page_words in text(browser, "invalid")
        control(browser, "Start").click()
        wait(browser, lambda: "2 rows: 1 updated, 1 invalid" in text(browser, "summary"))
        wait(browser, lambda: browser.find_elements(By.ID, "reject-1-0"))
        table = text(browser, "rejects")
        assert page_words in table
        assert "--tags-separator" not in table
        control(browser, "Download rejects").click()
        wait(browser, lambda: (downloads / "rejects.csv").exists())
        with open(downloads / "rejects.csv", encoding="utf-8-sig", newline="") as file:
            (reject,) = list(csv.DictReader(file))
        assert page_words in reject["_message"]
        assert "--" not in reject["_message"]


def test_stop_while_the_job_starts_stops_it_and_resume_sends_all(
    tmp_path: Path, browser: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    go_on = threading.Event()
    check = Source.check

    def held_check(source: Source) -> None:
        go_on.wait(timeout=60)  # the job's read-through of its input, a big file's, say
        check(source)

    with SandboxThread(LEADS, api_key=DEFAULT_SANDBOX_KEY) as sandbox, _ui(tmp_path, sandbox) as ui:
        open_page(browser, ui)
        choose_file(browser, all_leads_file(tmp_path))
        wait(browser, lambda: "60 valid, 0 invalid" in text(browser, "check-counts"))
        monkeypatch.setattr(Source, "check", held_check)
        control(browser, "Start").click()
        wait(browser, lambda: text(browser, "progress").startswith("Starting"))
        control(browser, "Stop").click()
        wait(browser, lambda: text(browser, "progress").startswith("Stopping"))
        go_on.set()
        wait(browser, lambda: text(browser, "progress").startswith("Stopped"))
        assert sandbox.state.requests == 0
        monkeypatch.undo()
        control(browser, "Resume").click()
        wait(browser, lambda: text(browser, "progress").startswith("Finished"))
        assert set(sandbox.state.applied_by_lead) == set(LEADS)
        assert set(sandbox.state.applied_by_lead.values()) == {1}

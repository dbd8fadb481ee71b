"""Helpers for the tests of `bulk-updater ui`: the page's server, a client with its cookie, and a
real headless Chromium.

- `page_client(server)`: an aiohttp client that went through the token once, as a browser does,
  and sends `Sec-Fetch-Site: same-origin` with its changes (`change()`).
- `UiThread`: the server in a thread of its own, for the synchronous browser tests.
- `browser`: Debian's chromium through /usr/bin/chromedriver (`tools/ensure-chromium`), never a
  driver Selenium would download: without them these tests fail, they never skip.
"""

from __future__ import annotations

import asyncio
import csv
import json
import tempfile
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bulk_updater.sandbox import load_leads
from bulk_updater.ui import Connection, UiServer
from bulk_updater.ui.mapping import Remembered

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
LEADS = load_leads(SAMPLES / "leads.json")


def all_leads_file(tmp_path: Path, column: str = "id") -> Path:
    """A CSV that sets every sample lead's jobTitle to `Title ID`, by id or by email."""
    path = tmp_path / f"all-by-{column}.csv"
    with open(path, "w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow([column, "jobTitle"])
        for lead_id, lead in LEADS.items():
            writer.writerow([lead_id if column == "id" else lead["email"], f"Title {lead_id}"])
    return path


#: A Salesforce report exported as CSV: the report's name and when it ran above the header, its
#: notice below the rows.
_SALESFORCE = """\
"Leads to update"
"As of 11/30/2026 09:12 by Jane Doe"
""
"Lead ID","First Name","Job Title","City"
"066091adcd648f9dab09032e","Amelia","CFO","Lyon"
"906a04f0281c1bc2aafa0bc0","Bruno","CEO","Oslo"
"000000000000000000000000","Chloé","CTO","Nice"
""
"Confidential Information - Do Not Distribute"
"Copyright (c) 2000-2026 salesforce.com, inc. All rights reserved."
"""


def salesforce_report(tmp_path: Path) -> Path:
    """A CSV with title rows above its header (line 4) and a notice below its three rows."""
    path = tmp_path / "report.csv"
    path.write_text(_SALESFORCE, encoding="utf-8")
    return path


def finished(state: dict[str, Any]) -> bool:
    """Whether the state's job ended (finished, stopped or failed)."""
    job = state["job"]
    return job is not None and job["state"] in ("finished", "stopped", "failed")


def checked(state: dict[str, Any]) -> bool:
    """Whether the state's check ended."""
    return state["check"] is not None and not state["check"]["running"]


def new_server(
    tmp_path: Path,
    connection: Connection | None = None,
    sandbox_leads: Path = SAMPLES / "leads.json",
) -> UiServer:
    """The page's server, its remembered mappings and kept job under `tmp_path`."""
    return UiServer(
        connection=connection,
        base_url="https://api.sendkit.ai",
        sandbox_leads=sandbox_leads,
        remembered=Remembered(tmp_path / "columns.json"),
        jobs=tmp_path / "ui-job",
    )


class PageClient:
    """A client holding the page's cookie; `change()` sends what the page's own script sends."""

    def __init__(self, session: aiohttp.ClientSession, origin: str) -> None:
        self.http = session
        self.origin = origin

    async def change(self, path: str, **kwargs: Any) -> aiohttp.ClientResponse:
        headers = {"Sec-Fetch-Site": "same-origin", **kwargs.pop("headers", {})}
        return await self.http.post(self.origin + path, headers=headers, **kwargs)

    async def until(self, holds: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The first state pushed on the page's event stream for which `holds` is true."""
        async with asyncio.timeout(60), self.http.get(self.origin + "/api/events") as stream:
            async for line in stream.content:
                if line.startswith(b"data: "):
                    state: dict[str, Any] = json.loads(line[6:])
                    if holds(state):
                        return state
        raise AssertionError("the event stream ended")

    async def act(self, path: str, **kwargs: Any) -> dict[str, Any]:
        """A change the page makes, which must succeed; the state it answers with."""
        async with await self.change(path, **kwargs) as answer:
            data: dict[str, Any] = await answer.json()
            assert answer.status == 200, data
            return data

    async def state(self) -> dict[str, Any]:
        async with self.http.get(self.origin + "/api/state") as answer:
            assert answer.status == 200
            data: dict[str, Any] = await answer.json()
            return data


async def upload(page: PageClient, path: Path, name: str) -> dict[str, Any]:
    """`path` chosen on the page, under `name`; the state the upload answers with."""
    data = await asyncio.to_thread(path.read_bytes)
    return await page.act(f"/api/upload?name={name}", data=data)


@asynccontextmanager
async def page_client(server: UiServer) -> AsyncIterator[PageClient]:
    # Cookies for an IP address are kept only by an `unsafe` jar, as a browser keeps them.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(server.url) as answer:
            assert answer.status == 200, await answer.text()
        yield PageClient(http, f"http://127.0.0.1:{server.port}")


class UiThread:
    """`UiServer` served by a thread with its own event loop; `with` starts and stops it."""

    def __init__(self, server: UiServer) -> None:
        self.server = server
        self._started = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="ui-server", daemon=True)

    def __enter__(self) -> UiThread:
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def call(self, function: Any) -> Any:
        """Run `function()` in the server's loop and return its result (for looking at state)."""
        assert self._loop is not None

        async def run() -> Any:
            return function()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=10)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:
            self._error = exc
        finally:
            self._started.set()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        async with self.server:
            self._loop = asyncio.get_running_loop()
            self._started.set()
            await self._stop.wait()


@pytest.fixture(autouse=True)
def _loopback_direct(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loopback is never sent through a proxy a developer's environment may name (the browser
    and the command's children read these); only for the tests of this folder."""
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1,localhost,[::1]")
    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must never download a driver


@pytest.fixture
def downloads(tmp_path: Path) -> Path:
    """Where the browser saves what the page offers to download."""
    folder = tmp_path / "downloads"
    folder.mkdir()
    return folder


@pytest.fixture
def browser(downloads: Path) -> Iterator[Any]:
    """Headless Chromium from Debian's packages, with a fresh profile, offline."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    flags = (
        "--headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
        "--disable-background-networking --disable-component-update --disable-sync "
        "--disable-dev-shm-usage --window-size=1280,1600"
    )
    for flag in flags.split():
        options.add_argument(flag)
    prefs = {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    options.add_experimental_option("prefs", prefs)
    with tempfile.TemporaryDirectory(prefix="ui-chromium-") as profile:
        options.add_argument(f"--user-data-dir={profile}")
        driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
        try:
            yield driver
        finally:
            driver.quit()

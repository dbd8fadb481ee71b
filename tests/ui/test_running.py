"""The run step's job: a Stop while it is still `starting` (its input read through) stops it
before its first row, and leaves it to Resume."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from bulk_updater import LeadUpdate, Reply, SendKitClient
from bulk_updater.inputs import Source
from tests.ui.conftest import (
    LEADS,
    all_leads_file,
    checked,
    finished,
    new_server,
    page_client,
    upload,
)


async def test_a_stop_while_the_job_starts_sends_nothing_and_resume_sends_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reading, go_on = threading.Event(), threading.Event()
    check = Source.check

    def held_check(source: Source) -> None:
        """The job's read-through of its input, held until the test lets it go on."""
        reading.set()
        go_on.wait(timeout=60)
        check(source)

    async with new_server(tmp_path) as server, page_client(server) as page:
        await page.act("/api/sandbox")
        await upload(page, all_leads_file(tmp_path), "all.csv")
        await page.until(checked)  # the page's own check is not held
        monkeypatch.setattr(Source, "check", held_check)
        state = await page.act("/api/start")
        assert state["job"]["state"] == "starting"
        await asyncio.to_thread(reading.wait, 60)
        state = await page.act("/api/stop")
        assert state["job"]["state"] == "stopping"
        go_on.set()
        state = await page.until(finished)
        assert state["job"]["state"] == "stopped"
        assert state["job"]["error"] is None
        assert server.sandbox is not None
        assert server.sandbox.state.requests == 0  # no row went
        monkeypatch.undo()
        await page.act("/api/resume")
        state = await page.until(lambda s: finished(s) and s["job"]["summary"] is not None)
        assert state["job"]["state"] == "finished"
        assert set(server.sandbox.state.applied_by_lead) == set(LEADS)
        assert set(server.sandbox.state.applied_by_lead.values()) == {1}


async def test_a_job_that_fails_on_a_bug_is_failed_on_the_page_without_a_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Neither a `BulkUpdaterError` nor an `OSError`: the job was left `running` for ever."""
    keys: list[str] = []

    async def crash(client: SendKitClient, update: LeadUpdate) -> Reply:
        keys.append(client.secrets[0])
        raise RuntimeError(f"bug: {keys[0]}")

    monkeypatch.setattr(SendKitClient, "send", crash)
    async with new_server(tmp_path) as server, page_client(server) as page:
        await page.act("/api/sandbox")
        await upload(page, all_leads_file(tmp_path), "all.csv")
        await page.until(checked)
        await page.act("/api/start")
        state = await page.until(finished)
    job = state["job"]
    assert job["state"] == "failed"
    assert job["error"] == "the job failed: RuntimeError('bug: [redacted]'); Resume may go on"
    assert keys
    assert keys[0] not in caplog.text
    assert "the job failed: RuntimeError('bug: [redacted]')" in caplog.text

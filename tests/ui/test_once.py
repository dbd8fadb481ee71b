"""One job at a time: a second Start, Resume or send of fixed rows while one starts is a 409.

A double click sends two requests at once (`asyncio.gather`); the second must neither run a
job of its own nor touch the one that runs.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bulk_updater.sandbox import DEFAULT_SANDBOX_KEY, Sandbox
from bulk_updater.ui import Connection
from tests.ui.conftest import (
    LEADS,
    PageClient,
    all_leads_file,
    checked,
    finished,
    new_server,
    page_client,
    upload,
)


async def _twice(page: PageClient, path: str, **kwargs: Any) -> list[tuple[int, dict[str, Any]]]:
    """`path` posted twice at once: each answer's status and body, the accepted one first."""

    async def post() -> tuple[int, dict[str, Any]]:
        async with await page.change(path, **kwargs) as answer:
            return answer.status, await answer.json()

    answers = await asyncio.gather(post(), post())
    return sorted(answers, key=lambda answer: answer[0])


def _refused(answer: tuple[int, dict[str, Any]]) -> None:
    status, body = answer
    assert status == 409, body
    assert body["error"].startswith("a job is starting or running")
    assert "\n" not in body["error"]


async def test_a_double_start_starts_one_job(tmp_path: Path) -> None:
    async with new_server(tmp_path) as server, page_client(server) as page:
        await page.act("/api/sandbox")
        await upload(page, all_leads_file(tmp_path), "all.csv")
        await page.until(checked)
        accepted, refused = await _twice(page, "/api/start")
        assert accepted[0] == 200, accepted[1]
        _refused(refused)
        state = await page.until(finished)
        assert state["job"]["state"] == "finished", state["job"]["error"]
        assert server.sandbox is not None
        assert set(server.sandbox.state.applied_by_lead.values()) == {1}  # each lead once
        assert set(server.sandbox.state.applied_by_lead) == set(LEADS)


async def test_a_double_resume_runs_once_and_can_be_stopped(tmp_path: Path) -> None:
    async with Sandbox(LEADS, api_key=DEFAULT_SANDBOX_KEY, latency_ms=100, rate=10) as sandbox:
        connection = Connection(SecretStr(DEFAULT_SANDBOX_KEY), sandbox.url, sandbox=True)
        async with new_server(tmp_path, connection) as server, page_client(server) as page:
            await upload(page, all_leads_file(tmp_path), "all.csv")
            await page.until(checked)
            await page.act("/api/start")
            await page.until(lambda s: s["job"]["state"] == "running" and s["job"]["done"] >= 1)
            await page.act("/api/stop")
            await page.until(lambda s: s["job"]["state"] == "stopped")
            accepted, refused = await _twice(page, "/api/resume")
            assert accepted[0] == 200, accepted[1]
            _refused(refused)
            state = await page.until(lambda s: s["job"]["state"] == "running")
            assert state["job"]["error"] is None  # the refused one left the job alone
            await page.act("/api/stop")  # the running job is still the page's to stop
            state = await page.until(finished)
            assert state["job"]["state"] == "stopped"
            assert state["job"]["error"] is None


async def test_a_double_send_of_fixed_rows_sends_them_once(tmp_path: Path) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text("id,city\nnot-a-lead,Paris\n")
    async with new_server(tmp_path) as server, page_client(server) as page:
        await page.act("/api/sandbox")
        await upload(page, rows, "rows.csv")
        await page.until(checked)
        await page.act("/api/start")
        await page.until(finished)
        target = "906a04f0281c1bc2aafa0bc0"
        fixed = {"rows": {"1": {"id": target, "city": "Paris"}}}
        accepted, refused = await _twice(page, "/api/send-fixed", json=fixed)
        assert accepted[0] == 200, accepted[1]
        _refused(refused)
        state = await page.until(lambda s: finished(s) and s["job"]["summary"] is not None)
        assert state["job"]["summary"]["counts"] == {"updated": 1}
        assert server.sandbox is not None
        assert server.sandbox.state.applied_by_lead[target] == 1


async def test_a_start_while_a_job_runs_is_a_409(tmp_path: Path) -> None:
    async with Sandbox(LEADS, api_key=DEFAULT_SANDBOX_KEY, latency_ms=100, rate=10) as sandbox:
        connection = Connection(SecretStr(DEFAULT_SANDBOX_KEY), sandbox.url, sandbox=True)
        async with new_server(tmp_path, connection) as server, page_client(server) as page:
            await upload(page, all_leads_file(tmp_path), "all.csv")
            await page.until(checked)
            await page.act("/api/start")
            await page.until(lambda s: s["job"]["state"] == "running")
            async with await page.change("/api/resume") as answer:
                _refused((answer.status, await answer.json()))
            await page.act("/api/stop")
            await page.until(finished)

"""A job left unfinished outlives the server: the next `bulk-updater ui` offers to resume it."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bulk_updater.report import COLUMNS
from bulk_updater.report.meta import write_meta
from bulk_updater.sandbox import DEFAULT_SANDBOX_KEY, Sandbox
from bulk_updater.state.paths import Account
from bulk_updater.ui import Connection
from bulk_updater.ui.kept import JobRecord, KeptJob
from bulk_updater.ui.running import Job
from tests.ui.conftest import LEADS, all_leads_file, finished, new_server, page_client


def _done(state: dict[str, Any]) -> int:
    job = state["job"]
    return job["done"] if job is not None else 0


async def _upload_all(page: Any, tmp_path: Path) -> None:
    data = await asyncio.to_thread(all_leads_file(tmp_path).read_bytes)
    await page.act("/api/upload?name=all.csv", data=data)
    await page.until(lambda s: s["check"] is not None and not s["check"]["running"])


async def test_a_job_cut_by_the_servers_stop_is_resumed_by_the_next_start(tmp_path: Path) -> None:
    async with Sandbox(LEADS, api_key=DEFAULT_SANDBOX_KEY, latency_ms=100, rate=10) as sandbox:
        connection = Connection(SecretStr(DEFAULT_SANDBOX_KEY), sandbox.url, sandbox=True)
        async with new_server(tmp_path, connection) as server, page_client(server) as page:
            await _upload_all(page, tmp_path)
            await page.act("/api/start")
            await page.until(lambda s: _done(s) >= 3)
        # The stop was graceful: part done, and the folder kept, its record without the key.
        sent = sum(sandbox.state.applied_by_lead.values())
        assert 0 < sent < len(LEADS)
        record = json.loads((tmp_path / "ui-job" / "job.json").read_text())
        assert record["name"] == "all.csv"
        assert DEFAULT_SANDBOX_KEY not in json.dumps(record)

        async with new_server(tmp_path) as server, page_client(server) as page:
            job = (await page.state())["job"]
            assert (job["name"], job["state"]) == ("all.csv", "stopped")
            assert job["counts"]["updated"] == sent
            async with await page.change("/api/resume") as answer:
                assert answer.status == 400  # nowhere to send yet
                assert "say where to send" in (await answer.json())["error"]
            assert server.session is not None
            server.session.use_connection(connection)  # as the page's sandbox button does
            await page.act("/api/resume")
            state = await page.until(finished)
        assert state["job"]["state"] == "finished"
        assert state["job"]["summary"]["counts"] == {"updated": len(LEADS) - sent, "skipped": sent}
        assert not state["job"]["has_rejects"]  # rows skipped by the resume are no rejects
        assert max(sandbox.state.applied_by_lead.values()) == 1  # no row sent twice
        assert set(sandbox.state.applied_by_lead) == set(LEADS)
    assert not (tmp_path / "ui-job").exists()  # finished: removed at the stop, as uploads are


async def test_a_kept_job_goes_on_only_where_it_was_going(tmp_path: Path) -> None:
    async with Sandbox(LEADS, api_key=DEFAULT_SANDBOX_KEY, latency_ms=100, rate=10) as sandbox:
        connection = Connection(SecretStr(DEFAULT_SANDBOX_KEY), sandbox.url, sandbox=True)
        async with new_server(tmp_path, connection) as server, page_client(server) as page:
            await _upload_all(page, tmp_path)
            await page.act("/api/start")
            await page.until(lambda s: _done(s) >= 1)
            await page.act("/api/stop")
            await page.until(lambda s: s["job"]["state"] == "stopped")
    elsewhere = Connection(SecretStr("sk_live_other"), "https://api.sendkit.ai")
    async with new_server(tmp_path, elsewhere) as server, page_client(server) as page:
        async with await page.change("/api/resume") as answer:
            assert answer.status == 400
            error = (await answer.json())["error"]
        assert error.startswith("this job was sent to the local sandbox")
        assert (await page.state())["job"]["state"] == "stopped"
    assert (tmp_path / "ui-job" / "job.json").exists()  # still kept


def test_a_kept_job_elsewhere_says_the_command_that_goes_on_there(tmp_path: Path) -> None:
    record = JobRecord("a.csv", "input.csv", None, None, {}, "https://api.sendkit.ai", None, False)
    job = Job(tmp_path, record, lambda: None, state="stopped")
    _report(job, "updated")
    other = Connection(SecretStr("sk_live_other"), "https://eu.sendkit.ai")
    assert job.refuse_resume(other) == (
        "this job was sent to https://api.sendkit.ai; restart with "
        "`bulk-updater ui --base-url https://api.sendkit.ai`"
    )


def test_the_rate_and_eta_of_a_resumed_job_count_only_the_rows_sent(tmp_path: Path) -> None:
    record = JobRecord("a.csv", "input.csv", None, None, {}, "https://api.sendkit.ai", None, False)
    job = Job(tmp_path, record, lambda: None, state="running", total=100)
    job.counts = {"skipped": 50, "updated": 10}  # 50 done by the run before, 10 in 10 s
    job.started = time.monotonic() - 10
    job.ended = job.started + 10
    seen = job.describe()
    assert (seen["done"], seen["rate"], seen["eta_s"]) == (60, 1.0, 40)


def test_a_record_kept_before_the_header_row_existed_is_read_with_none(tmp_path: Path) -> None:
    kept = KeptJob(tmp_path / "ui-job")
    kept.replace()
    (kept.root / "input.csv").write_text("id,city\n")
    record = {
        "name": "a.csv",
        "input": "input.csv",
        "encoding": None,
        "sheet": None,
        "columns": {},
        "base_url": "https://api.sendkit.ai",
        "workspace_id": None,
        "sandbox": False,
    }
    (kept.root / "job.json").write_text(json.dumps(record))
    loaded = kept.load()
    assert loaded is not None
    assert (loaded.name, loaded.header_row) == ("a.csv", None)


def test_a_kept_job_goes_on_only_with_its_workspace_and_key(tmp_path: Path) -> None:
    record = JobRecord(
        "a.csv", "input.csv", None, None, {}, "https://api.sendkit.ai", "ws_a", False
    )
    job = Job(tmp_path, record, lambda: None, state="stopped")
    sent = Connection(SecretStr("sk_live_first"), "https://api.sendkit.ai", "ws_a")
    # What the engine keeps of the account in the report's meta, as the job's run left it.
    write_meta(job.report.resolve(), None, {}, account=Account.of(sent.settings()))
    _report(job, "updated", "aborted")  # row 1 got the API's answer: the account is the job's
    assert job.refuse_resume(sent) is None
    elsewhere = Connection(SecretStr("sk_live_first"), "https://api.sendkit.ai", "ws_b")
    assert (
        job.refuse_resume(elsewhere)
        == "this job was sent to workspace ws_a; give that workspace id"
    )
    other_key = Connection(SecretStr("sk_live_second"), "https://api.sendkit.ai", "ws_a")
    refused = job.refuse_resume(other_key)
    assert refused == "this job was sent with another API key; give that key"


def _report(job: Job, *statuses: str) -> None:
    lines = [",".join(COLUMNS)]
    lines += [
        f"{row},{row + 1},lead_{row},{status},,,,1,," for row, status in enumerate(statuses, 1)
    ]
    job.report.write_text("\n".join(lines) + "\n")


def test_a_job_no_row_of_which_got_an_answer_goes_on_with_another_key_or_workspace(
    tmp_path: Path,
) -> None:
    """A key the API refused (401/403) finished nothing: Resume goes on with the right key, or a
    platform key's workspace id, and the job is kept as sent there from then on."""
    record = JobRecord("a.csv", "input.csv", None, None, {}, "https://api.sendkit.ai", None, False)
    job = Job(tmp_path, record, lambda: None, state="stopped")
    refused = Connection(SecretStr("sk_live_typo"), "https://api.sendkit.ai")
    write_meta(job.report.resolve(), None, {}, account=Account.of(refused.settings()))
    _report(job, "aborted", "invalid", "aborted")
    fixed = Connection(SecretStr("sk_live_platform"), "https://api.sendkit.ai", "ws_a")
    assert job.refuse_resume(fixed) is None
    assert job.retarget(fixed)
    assert job.record.workspace_id == "ws_a"
    assert not job.retarget(fixed)
    assert job.refuse_resume(Connection(SecretStr("k"), "http://x", sandbox=True)) is not None

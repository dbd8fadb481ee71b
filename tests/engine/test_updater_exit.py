"""Leaving `async with BulkUpdater(...)`: every stream's job ends (held or dropped), the limiter
and the client are closed however the exit goes, and a failing close never hides the exception
that ended the job."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bulk_updater import BulkUpdater, LeadUpdate, Outcome, Reply, SendKitClient
from bulk_updater.report import ReportWriter
from tests.conftest import FakeSender, WatchedPacer, read_report

ROWS = [{"id": f"lead{i}", "jobTitle": "CRO"} for i in range(50)]


async def test_a_stream_still_held_after_the_block_lets_go_of_the_state_file(
    tmp_path: Path,
) -> None:
    state = tmp_path / "s.sqlite3"
    options: dict[str, Any] = {"rate": 0, "skip_unchanged": True, "state": state}
    async with BulkUpdater(sender=FakeSender(), **options) as updater:
        stream = updater.stream(ROWS)
        await anext(stream)  # held by the caller, not finished
    async with BulkUpdater(sender=FakeSender(), **options) as updater:
        summary = await updater.run(ROWS[:5])
    assert summary.rows == 5
    assert [outcome async for outcome in stream] == []  # its job ended with its block


class SlowToCancel:
    """Answers the first request; the others wait, and take until `release` to end once
    cancelled (a request finishing as it is cancelled)."""

    def __init__(self) -> None:
        self.answered = 0
        self.cancelled = asyncio.Event()
        self.release = asyncio.Event()

    async def send(self, update: LeadUpdate) -> Reply:
        if not self.answered:
            self.answered += 1
            return Reply(200)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            await asyncio.shield(self.release.wait())
            raise
        raise AssertionError("never answered")


async def test_a_cancel_while_the_block_ends_still_closes_the_limiter() -> None:
    limiter, sender = WatchedPacer(), SlowToCancel()

    async def block() -> None:
        async with BulkUpdater(sender=sender, limiter=limiter, concurrency=2) as updater:
            stream = updater.stream(ROWS)
            await anext(stream)

    leaving = asyncio.create_task(block())
    await sender.cancelled.wait()  # the exit is ending the stream's job
    leaving.cancel()  # a second Ctrl+C, a timeout
    with pytest.raises(asyncio.CancelledError):
        await leaving
    assert limiter.calls == ["open", "close"]
    sender.release.set()


async def test_a_failing_close_does_not_hide_the_exception_that_ended_the_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    closing = ReportWriter.close

    def full_disk(self: ReportWriter) -> None:
        closing(self)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ReportWriter, "close", full_disk)

    def on_outcome(outcome: Outcome) -> None:
        if outcome.row == 5:
            raise ValueError("a bug in the callback")

    async with BulkUpdater(sender=FakeSender(), rate=0, concurrency=1) as updater:
        with pytest.raises(ValueError, match="a bug in the callback") as raised:
            await updater.run(ROWS, report=tmp_path / "r.csv", on_outcome=on_outcome)
    told = f"closing the report {tmp_path / 'r.csv'} failed too: No space left on device"
    assert raised.value.__notes__ == [told]  # user words: no class name, no repr
    async with BulkUpdater(sender=FakeSender(), rate=0) as updater:  # a close that fails alone
        with pytest.raises(OSError, match="No space left"):
            await updater.run(ROWS[:1], report=tmp_path / "r2.csv")


KEY = "sk_live_Crash0123456789abcdef"
PROXY_PASSWORD = "pr0xy_pa\u20acss"
ASCII_PASSWORD = "pr0xy_passw0rd"
REDIS_PASSWORD = "R3disPassw0rd"


class Crashing:
    """A sender with a bug, whose exception quotes what it was given (as aiohttp's
    `UnicodeEncodeError` quoted a proxy's login)."""

    async def send(self, update: LeadUpdate) -> Reply:
        raise RuntimeError(f"bug: {KEY} {PROXY_PASSWORD} {ASCII_PASSWORD} :{REDIS_PASSWORD}@")


async def test_a_failure_is_in_every_row_without_a_secret_of_the_job(tmp_path: Path) -> None:
    """The row whose sending raised is not said to be sent: whether it left is not known."""
    report = tmp_path / "report.csv"
    options: dict[str, Any] = {
        "api_key": KEY, "rate": 5, "concurrency": 1,
        "proxy": f"http://ann:{ASCII_PASSWORD}@127.0.0.1:3128",
        "redis_url": f"redis://:{REDIS_PASSWORD}@127.0.0.1:6379/0",
    }  # fmt: skip
    async with BulkUpdater(sender=Crashing(), limiter=WatchedPacer(), **options) as updater:
        with pytest.raises(RuntimeError, match=r"^bug: "):
            await updater.run(ROWS[:3], report=report)
    messages = [row["message"] for row in read_report(report)]
    assert messages[0].startswith("not known whether it was sent (the lead may be updated): ")
    assert all("the job failed: RuntimeError('bug: [redacted] " in m for m in messages), messages
    text = report.read_text(encoding="utf-8")
    for secret in (KEY, ASCII_PASSWORD, REDIS_PASSWORD):
        assert secret not in text


async def test_a_failure_leaves_out_the_login_of_a_proxy_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the client knows the login of the proxy `HTTPS_PROXY` names."""
    monkeypatch.setenv("HTTPS_PROXY", f"http://ann:{PROXY_PASSWORD}@127.0.0.1:3128")
    monkeypatch.setattr(SendKitClient, "send", Crashing.send)
    report = tmp_path / "report.csv"
    options: dict[str, Any] = {"api_key": KEY, "base_url": "https://api.sendkit.ai", "rate": 0}
    async with BulkUpdater(**options) as updater:
        with pytest.raises(RuntimeError, match=r"^bug: "):
            await updater.run(ROWS[:2], report=report)
    text = report.read_text(encoding="utf-8")
    assert "the job failed: RuntimeError(" in text
    assert PROXY_PASSWORD not in text
    assert KEY not in text

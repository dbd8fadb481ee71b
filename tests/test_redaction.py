"""The key never survives in what a server or the client says about an answer: not whole, not cut
at the edge of a bounded message, not quoted from a line that is not HTTP (against real servers
on a loopback port, `tests/http_server.py`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import web

from bulk_updater import BulkUpdater, LeadUpdate, SendKitClient, Source, TransportError
from bulk_updater.answers import REDACTED, Redactor
from bulk_updater.sandbox import Sandbox
from tests.conftest import make_leads, read_report, write_csv
from tests.http_server import Answers, RawServer

KEY = "sk_live_0123456789abcdefghijklmnopqrstuvwxyz"
LEAD = "665d4e5f6a7b8c9d0e1f2a3b"
PATH = f"/v1/leads/{LEAD}"
UPDATE = LeadUpdate(id=LEAD, jobTitle="CRO")


def leaked(text: str) -> str | None:
    """The longest piece of the key in `text`: any start of 4 characters or more, any 8 inside."""
    for size in range(len(KEY), 3, -1):
        if KEY[:size] in text:
            return KEY[:size]
    for start in range(1, len(KEY) - 7):
        if KEY[start : start + 8] in text:
            return KEY[start : start + 8]
    return None


def client(base: str) -> SendKitClient:
    return SendKitClient(api_key=KEY, base_url=base, timeout=5, concurrency=2)


# --- the redactor itself


def test_a_start_of_the_key_at_a_cut_is_dropped() -> None:
    redact = Redactor(KEY)
    for size in range(4, len(KEY)):
        text = "x" * (100 - size) + KEY
        clipped = redact.clip(text, 100)
        assert leaked(clipped) is None, size
        assert len(clipped) <= 100 + len(REDACTED)


def test_a_piece_of_the_key_anywhere_is_removed() -> None:
    redact = Redactor(KEY)
    assert redact(f"b'HTTP/1.1 2x0 {KEY[5:30]}'\n  ^") == f"b'HTTP/1.1 2x0 {REDACTED}'\n  ^"
    assert redact("nothing secret here") == "nothing secret here"


# --- answers cut before they reach a report


PORTAL = "<i>" * 660 + KEY + " portal"  # 1,980 characters of tags, then the key across 2,000


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (200, PORTAL),  # a 2xx that is not the API's answer
        (400, "<p>" + "y" * 180 + " key " + KEY + "</p>"),  # an HTML error cut at 200
        (400, "<p>" + "y" * 195 + " " + KEY + "</p>"),
        (500, '{"message": "' + "z" * 490 + KEY + '"}'),  # a JSON message cut at 500
        (422, '{"error": {"code": "' + "c" * 90 + KEY + '", "message": "m"}}'),
    ],
)
async def test_a_key_across_a_cut_does_not_survive(status: int, body: str) -> None:
    async with Answers() as server, client(server.url) as c:
        server.add("PATCH", PATH, status=status, body=body, content_type="text/html")
        server.add("GET", "/v1/leads", status=status, body=body, content_type="text/html")
        patched = await c.send(UPDATE)
        searched = await c.search("ann@x.com", None)
    assert server.requests[1].query == {"limit": "100", "search": "ann@x.com"}
    for reply in (patched, searched):
        assert leaked(reply.message) is None, reply.message
        assert leaked((reply.error_code or "").lower()) is None


async def test_rate_limit_headers_holding_the_key_are_redacted() -> None:
    async with Answers() as server, client(server.url) as c:
        headers = {"X-RateLimit-Limit": KEY, "Retry-After": "1"}
        server.add("PATCH", PATH, status=429, headers=headers, payload={})
        reply = await c.send(UPDATE)
    assert reply.headers is not None
    assert leaked(str(dict(reply.headers))) is None
    assert reply.retry_after == 1


# --- the client quoting a line that is not HTTP


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 2x0 %s\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX-Echo %s\r\nContent-Length: 0\r\n\r\n",
        # a header line far longer than any client reads of a head (aiohttp: 8 KiB a line)
        b"HTTP/1.1 200 OK\r\nX-Echo: " + b"e" * (1 << 20) + b"%s\r\nContent-Length: 0\r\n\r\n",
    ],
)
async def test_a_protocol_error_quoting_the_key_is_redacted(raw: bytes) -> None:
    async with RawServer(raw.replace(b"%s", KEY.encode())) as server, client(server.url) as c:
        for call in (lambda: c.send(UPDATE), lambda: c.search("ann@x.com", None)):
            with pytest.raises(TransportError) as info:
                await call()
            assert info.value.kind == "connection"
            assert leaked(info.value.message) is None, info.value.message
            assert leaked(str(info.value)) is None
            assert "\n" not in info.value.message
    assert len(server.requests) == 2


# --- end to end: the report and the summary


async def test_the_report_and_summary_keep_no_piece_of_the_key(tmp_path: Path) -> None:
    async def portal(request: web.Request) -> web.StreamResponse | None:
        return web.Response(text=PORTAL, status=200, content_type="text/html")

    leads = make_leads(1)
    path = write_csv(tmp_path / "in.csv", ["id", "firstName"], [[next(iter(leads)), "Ann"]])
    report = tmp_path / "report.csv"
    async with (
        Sandbox(leads, api_key=KEY, intercept=portal) as sb,
        BulkUpdater(api_key=KEY, base_url=sb.url, rate=0, max_attempts=1) as updater,
    ):
        summary = await updater.run(Source(path), report=report)
    (line,) = read_report(report)
    assert line["status"] == "failed"
    assert "not the API's answer" in line["message"]
    assert leaked(report.read_text()) is None
    assert leaked(summary.model_dump_json()) is None

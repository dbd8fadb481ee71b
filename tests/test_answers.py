"""What the client reads of an answer: a bounded prefix, the key removed wherever a server echoes
it, a 2xx judged by its body, an unknown host told apart from a refused connection."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aioresponses import aioresponses

from bulk_updater import LeadUpdate, SendKitClient, TransportError
from bulk_updater.answers import REDACTED, Redactor, describe_error, is_success

KEY = "sk_live_echo7fQ2mX9pLr4TzW8c"
BASE = "https://api.sendkit.ai"
LEAD = "665d4e5f6a7b8c9d0e1f2a3b"
UPDATE = LeadUpdate(id=LEAD, jobTitle="CRO")


def client(base: str = BASE) -> SendKitClient:
    return SendKitClient(api_key=KEY, base_url=base, timeout=5, concurrency=4, workspace_id="ws_9")


@pytest.mark.parametrize(
    ("status", "body", "content_type"),
    [
        (401, f'{{"error":{{"code":"UNAUTHORIZED","message":"Invalid API key {KEY}"}}}}', "json"),
        (400, f'{{"error":"Bad","message":"key {KEY} may not set this","code":400}}', "json"),
        (503, f"<html><body>upstream said {KEY} is not allowed</body></html>", "html"),
        (422, f'{{"success":false,"error":{{"code":"{KEY}","message":"x"}}}}', "json"),
    ],
)
async def test_a_key_echoed_by_the_server_is_never_kept(
    status: int, body: str, content_type: str
) -> None:
    kind = "application/json" if content_type == "json" else "text/html"
    with aioresponses() as mocked:
        mocked.patch(f"{BASE}/v1/leads/{LEAD}", status=status, body=body, content_type=kind)
        async with client() as c:
            reply = await c.send(UPDATE)
    assert KEY not in reply.message
    assert KEY.upper() not in (reply.error_code or "")
    assert REDACTED in reply.message or REDACTED.upper() in (reply.error_code or "")


async def test_a_redirect_location_holding_the_key_is_redacted() -> None:
    with aioresponses() as mocked:
        mocked.patch(
            f"{BASE}/v1/leads/{LEAD}", status=302, headers={"Location": f"https://x/?k={KEY}"}
        )
        async with client() as c:
            reply = await c.send(UPDATE)
    assert KEY not in reply.message
    assert "--base-url" in reply.message


@pytest.mark.parametrize(
    ("body", "ok"),
    [
        (b'{"success":true,"data":{"_id":"x"}}', True),
        (b' { "success" : true }', True),
        (b"<html>Please sign in to the hotel Wi-Fi</html>", False),
        (b"", False),
        (b'{"success":false}', False),
        (b'{"data":{}}', False),
        (b"[true]", False),
        (b'"success"', False),
    ],
)
def test_what_counts_as_a_success_body(body: bytes, ok: bool) -> None:
    assert is_success(body, complete=True) is ok


def test_a_success_body_too_long_to_read_is_judged_by_its_start() -> None:
    assert is_success(b'{"success": true, "data": {"notes": "' + b"x" * 100, complete=False)
    assert not is_success(b"<html>" + b"x" * 100, complete=False)


@pytest.mark.parametrize("body", ["<html>Welcome! Log in</html>", "", '{"success":false}'])
async def test_a_2xx_that_is_not_the_answer_is_marked(body: str) -> None:
    with aioresponses() as mocked:
        mocked.patch(f"{BASE}/v1/leads/{LEAD}", status=200, body=body)
        async with client() as c:
            reply = await c.send(UPDATE)
    assert reply.malformed
    assert reply.error_code == "UNEXPECTED_ANSWER"
    assert "not the API's answer" in reply.message


async def test_a_real_success_is_not_marked() -> None:
    with aioresponses() as mocked:
        mocked.patch(f"{BASE}/v1/leads/{LEAD}", status=200, payload={"success": True, "data": {}})
        async with client() as c:
            reply = await c.send(UPDATE)
    assert not reply.malformed
    assert reply.status == 200


def test_describe_error_redacts_and_bounds() -> None:
    redact = Redactor(KEY)
    code, message = describe_error(500, f'{{"message": "{KEY}{"z" * 5000}"}}'.encode(), "", redact)
    assert KEY not in message
    assert len(message) <= 500
    assert code == "HTTP_500"


@pytest.fixture
async def endless_server() -> AsyncIterator[str]:
    """Answers 500 (or 200) with a body that never ends, until the client goes away."""

    async def endless(request: web.Request) -> web.StreamResponse:
        status = 200 if request.match_info["id"] == "ok" else 500
        response = web.StreamResponse(status=status, headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        chunk = b"x" * (1 << 20)
        try:
            for _ in range(10_000):  # 10 GB: far more than any client should read
                await response.write(chunk)
        except (ConnectionError, asyncio.CancelledError):
            pass
        return response

    app = web.Application()
    app.router.add_route("PATCH", "/v1/leads/{id}", endless)
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


@pytest.mark.parametrize("lead", ["bad", "ok"])
async def test_an_endless_answer_is_read_only_up_to_a_bound(endless_server: str, lead: str) -> None:
    async with client(endless_server) as c:
        reply = await asyncio.wait_for(c.send(LeadUpdate(id=lead, city="x")), timeout=20)
    assert len(reply.message) <= 500
    if lead == "ok":
        assert reply.malformed
    else:
        assert reply.status == 500


async def test_an_unknown_host_is_not_a_connection_error() -> None:
    key = aiohttp.client_reqrep.ConnectionKey("api.sendkti.ai", 443, True, True, None, None, None)
    error = aiohttp.ClientConnectorDNSError(key, socket.gaierror(-2, "Name or service not known"))
    with aioresponses() as mocked:
        mocked.patch(f"https://api.sendkti.ai/v1/leads/{LEAD}", exception=error)
        async with client("https://api.sendkti.ai") as c:
            with pytest.raises(TransportError) as info:
                await c.send(UPDATE)
    assert info.value.kind == "dns"
    assert "api.sendkti.ai" in info.value.message
    assert "--base-url" in info.value.message


async def test_a_refused_connection_stays_a_connection_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with client(f"http://127.0.0.1:{port}") as c:
        with pytest.raises(TransportError) as info:
            await c.send(UPDATE)
    assert info.value.kind == "connection"

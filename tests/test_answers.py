"""What the client reads of an answer: a bounded prefix, the key removed wherever a server echoes
it, a 2xx judged by its body, an unknown host told apart from a refused connection (against real
servers on a loopback port, `tests/http_server.py`)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from aiohttp import web

from bulk_updater import LeadUpdate, SendKitClient, TransportError
from bulk_updater.answers import REDACTED, Redactor, describe_error, is_success
from tests.http_server import Answers

KEY = "sk_live_echo7fQ2mX9pLr4TzW8c"
LEAD = "665d4e5f6a7b8c9d0e1f2a3b"
PATH = f"/v1/leads/{LEAD}"
UPDATE = LeadUpdate(id=LEAD, jobTitle="CRO")


def client(base: str) -> SendKitClient:
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
    async with Answers() as server, client(server.url) as c:
        server.add("PATCH", PATH, status=status, body=body, content_type=kind)
        reply = await c.send(UPDATE)
    assert KEY not in reply.message
    assert KEY.upper() not in (reply.error_code or "")
    assert REDACTED in reply.message or REDACTED.upper() in (reply.error_code or "")


async def test_a_redirect_location_holding_the_key_is_redacted() -> None:
    async with Answers() as server, client(server.url) as c:
        server.add("PATCH", PATH, status=302, headers={"Location": f"https://x/?k={KEY}"})
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
    async with Answers() as server, client(server.url) as c:
        server.add("PATCH", PATH, status=200, body=body)
        reply = await c.send(UPDATE)
    assert reply.malformed
    assert reply.error_code == "UNEXPECTED_ANSWER"
    assert "not the API's answer" in reply.message


async def test_a_real_success_is_not_marked() -> None:
    async with Answers() as server, client(server.url) as c:
        server.add("PATCH", PATH, status=200, payload={"success": True, "data": {}})
        reply = await c.send(UPDATE)
    assert not reply.malformed
    assert reply.status == 200


def test_describe_error_redacts_and_bounds() -> None:
    redact = Redactor(KEY)
    code, message = describe_error(500, f'{{"message": "{KEY}{"z" * 5000}"}}'.encode(), "", redact)
    assert KEY not in message
    assert len(message) <= 500
    assert code == "HTTP_500"


async def endless(request: web.Request) -> web.StreamResponse:
    """Answers 500 (or 200 to the lead "ok") with a body that never ends, until the client goes
    away."""
    status = 200 if request.path == "/v1/leads/ok" else 500
    response = web.StreamResponse(status=status, headers={"Content-Type": "text/plain"})
    await response.prepare(request)
    chunk = b"x" * (1 << 20)
    try:
        for _ in range(10_000):  # 10 GB: far more than any client should read
            await response.write(chunk)
    except (ConnectionError, asyncio.CancelledError):
        pass
    return response


@pytest.mark.parametrize("lead", ["bad", "ok"])
async def test_an_endless_answer_is_read_only_up_to_a_bound(lead: str) -> None:
    async with Answers() as server, client(server.url) as c:
        server.add("PATCH", f"/v1/leads/{lead}", handler=endless)
        reply = await asyncio.wait_for(c.send(LeadUpdate(id=lead, city="x")), timeout=20)
    assert len(reply.message) <= 500
    if lead == "ok":
        assert reply.malformed
    else:
        assert reply.status == 500


async def test_an_unknown_host_is_not_a_connection_error() -> None:
    """A name under `.invalid` (RFC 2606, RFC 6761) never resolves, wherever the test runs."""
    async with client("https://api.sendkti.invalid") as c:
        with pytest.raises(TransportError) as info:
            await c.send(UPDATE)
    assert info.value.kind == "dns"
    assert "api.sendkti.invalid" in info.value.message
    assert "--base-url" in info.value.message


async def test_a_refused_connection_stays_a_connection_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with client(f"http://127.0.0.1:{port}") as c:
        with pytest.raises(TransportError) as info:
            await c.send(UPDATE)
    assert info.value.kind == "connection"


def lookups_failing_for(names: set[str], monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The running loop's lookups of `names` fail once each with `EAI_AGAIN`, as `getaddrinfo`
    fails when the resolver does not answer in time; the names asked for are returned."""
    loop = asyncio.get_running_loop()
    real = loop.getaddrinfo
    asked: list[str] = []

    async def getaddrinfo(host: str, *args: Any, **kwargs: Any) -> Any:
        asked.append(host)
        if host in names:
            names.discard(host)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return await real(host, *args, **kwargs)

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
    return asked


@pytest.mark.parametrize("through", ["direct", "proxy"])
async def test_a_lookup_that_fails_for_now_is_retried_not_an_unknown_host(
    monkeypatch: pytest.MonkeyPatch, through: str
) -> None:
    """`EAI_AGAIN` says the resolver did not answer, not that the name does not exist: a
    connection failure, retried, whose next lookup may well succeed. Only a name that does not
    exist (`EAI_NONAME`) stops the job."""
    async with Answers() as server:
        port = server.url.rsplit(":", 1)[1]
        proxy = None
        if through == "proxy":  # the server stands in for a proxy: it answers the request
            proxy, base = f"http://localhost:{port}", f"http://127.0.0.1:{port}"
        else:
            base = f"http://localhost:{port}"
        server.add("PATCH", PATH, payload={"success": True, "data": {}})
        asked = lookups_failing_for({"localhost"}, monkeypatch)
        c = SendKitClient(api_key=KEY, base_url=base, timeout=5, concurrency=4, proxy=proxy)
        async with c:
            with pytest.raises(TransportError) as info:
                await c.send(UPDATE)
            reply = await c.send(UPDATE)
    assert asked == ["localhost", "localhost"]
    assert (info.value.kind, info.value.final, info.value.error_code) == (
        "connection",
        False,
        "CONNECTION",
    )
    said = "localhost could not be resolved just now (Temporary failure in name resolution)"
    if through == "proxy":
        assert info.value.message == (
            f"the proxy http://localhost:{port} (from --proxy) cannot be reached: its host {said}"
        )
    else:
        assert info.value.message == f"the name {said}"
    assert reply.status == 200

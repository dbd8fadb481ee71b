"""The transport's pool of connections: no more than its limit, a cancelled request's place
given back, a GET sent again once when a kept-alive connection closed under it, a close while
requests are in flight, refused and unknown hosts, and TLS (a certificate authority of the test's
own, from trustme)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from pathlib import Path

import pytest
import trustme
from aiohttp import web

from bulk_updater.transport import Origin, Pool, TransportError
from tests.http_server import LINES, OK, RawServer, opened


async def test_no_more_connections_than_the_limit() -> None:
    release, both, gone = asyncio.Event(), asyncio.Event(), asyncio.Event()
    open_now = arrived = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal open_now, arrived
        open_now += 1
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                await reader.readexactly(int(head.split(b"Content-Length: ")[1].split(b"\r")[0]))
                arrived += 1
                if arrived == 2:
                    both.set()
                await release.wait()
                writer.write(OK)
                await writer.drain()
        open_now -= 1
        writer.close()
        await writer.wait_closed()
        if not open_now:
            gone.set()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with opened(port, limit=2) as p:
        requests = [
            asyncio.create_task(p.request(b"PATCH", b"/v1/leads/a", b"{}")) for _ in range(6)
        ]
        await both.wait()
        at_most = open_now  # two requests held by the server: the other four wait for a place
        release.set()
        answers = await asyncio.gather(*requests)
    await gone.wait()  # the pool closed its connections: the server's side ends too
    server.close()
    await server.wait_closed()
    assert [a.status for a in answers] == [200] * 6
    assert at_most == 2


async def test_a_cancelled_request_gives_its_place_back() -> None:
    def silent(writer: asyncio.StreamWriter) -> None:
        pass  # no answer, ever

    async with RawServer(silent, OK, keep_alive=True) as server, opened(server.port, limit=1) as p:
        stuck = asyncio.create_task(p.request(b"PATCH", b"/v1/leads/a", b"{}"))
        await server.arrived.wait()
        stuck.cancel()
        with pytest.raises(asyncio.CancelledError):
            await stuck
        answer = await asyncio.wait_for(p.request(b"PATCH", b"/v1/leads/a", b"{}"), 10)
    assert answer.status == 200
    assert server.connections == 2  # the cancelled one's connection is never reused


async def test_refused_and_unknown_hosts() -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    async with opened(port) as p:
        with pytest.raises(TransportError) as refused:
            await p.request(b"PATCH", b"/v1/leads/a", b"{}")
    unknown = Pool(
        Origin(True, "api.sendkit.invalid", 443, "api.sendkit.invalid"),
        limit=1,
        connect_timeout=5,
        header_lines=LINES,
        body_limit=100,
    )
    with pytest.raises(TransportError) as dns:
        await unknown.request(b"PATCH", b"/v1/leads/a", b"{}")
    await unknown.close()
    assert refused.value.kind == "connection"
    assert refused.value.message.startswith(f"cannot connect to 127.0.0.1:{port} (")
    assert dns.value.kind == "dns"
    assert "api.sendkit.invalid is not known" in dns.value.message


@pytest.fixture
def authority() -> trustme.CA:
    return trustme.CA()


async def test_tls_to_a_trusted_server_and_a_refusal_of_an_untrusted_one(
    authority: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost").configure_cert(server_context)

    async def answer(request: web.Request) -> web.Response:
        return web.json_response({"success": True, "data": {}})

    app = web.Application()
    app.router.add_patch("/v1/leads/{id}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_context)
    await site.start()
    port = runner.addresses[0][1]
    origin = Origin(True, "localhost", port, f"localhost:{port}")
    options = {"limit": 1, "connect_timeout": 5, "header_lines": LINES, "body_limit": 100}
    try:
        untrusted = Pool(origin, **options)  # type: ignore[arg-type]
        with pytest.raises(TransportError) as info:
            await untrusted.request(b"PATCH", b"/v1/leads/a", b"{}")
        await untrusted.close()
        ca_file = tmp_path / "ca.pem"
        authority.cert_pem.write_to_path(str(ca_file))
        monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))  # what OpenSSL trusts by default
        trusted = Pool(origin, **options)  # type: ignore[arg-type]
        got = await trusted.request(b"PATCH", b"/v1/leads/a", b"{}")
        await trusted.close()
    finally:
        await runner.cleanup()
    assert info.value.kind == "connection"
    assert info.value.message.startswith(f"TLS with localhost:{port} failed (")
    assert "CERTIFICATE_VERIFY_FAILED" in info.value.message
    assert (got.status, got.body) == (200, b'{"success": true, "data": {}}')


@pytest.mark.parametrize("method", [b"GET", b"PATCH"])
async def test_a_get_is_sent_again_once_when_a_kept_alive_connection_closes_under_it(
    method: bytes,
) -> None:
    """The server answers, keeps the connection, then closes it on the next request without a
    word: a GET goes again on a new connection (as aiohttp does); a PATCH fails, for the engine's
    rules to retry (a start of its own, paced)."""
    async with RawServer(OK, "close", OK, keep_alive=True) as server, opened(server.port) as p:
        assert (await p.request(b"PATCH", b"/v1/leads/a", b"{}")).status == 200
        if method == b"GET":
            again = await p.request(method, b"/v1/leads?search=x", None)
            assert again.status == 200
        else:
            with pytest.raises(TransportError) as info:
                await p.request(method, b"/v1/leads/a", b"{}")
            assert info.value.message == "the server closed the connection without answering"
    assert len(server.requests) == (3 if method == b"GET" else 2)
    assert server.connections == (2 if method == b"GET" else 1)


async def test_a_close_while_requests_are_in_flight_ends_them_with_an_error() -> None:
    """Even one whose body would end with the connection: the pool's own close is no end."""
    half = b"HTTP/1.0 200 OK\r\n\r\n" + b'{"succ'

    def partial(writer: asyncio.StreamWriter) -> None:
        writer.write(half)  # and nothing more, until the client goes

    async with RawServer(partial, keep_alive=True) as server, opened(server.port) as p:
        request = asyncio.create_task(p.request(b"PATCH", b"/v1/leads/a", b"{}"))
        await server.arrived.wait()
        await p.close()
        with pytest.raises(TransportError) as info:
            await request
    assert info.value.message == "the connection was closed"


async def test_a_handshake_that_never_comes_is_a_connect_timeout() -> None:
    """A server that takes the connection and then says nothing: the TLS handshake waits, and
    the connect timeout (not the request's) ends it."""
    async with RawServer("silent") as server:
        origin = Origin(True, "127.0.0.1", server.port, f"127.0.0.1:{server.port}")
        pool = Pool(origin, limit=1, connect_timeout=0.2, header_lines=LINES, body_limit=100)
        with pytest.raises(TransportError) as info:
            await pool.request(b"PATCH", b"/v1/leads/a", b"{}")
        await pool.close()
    assert info.value.kind == "timeout"
    assert info.value.message == f"no connection to 127.0.0.1:{server.port} within the timeout"


async def test_requests_waiting_for_a_place_when_the_pool_closes_are_told() -> None:
    """A close with requests waiting (a bug of the caller's): they end, they do not hang."""
    async with RawServer("silent") as server, opened(server.port, limit=1) as p:
        holder = asyncio.create_task(p.request(b"PATCH", b"/v1/leads/a", b"{}"))
        await server.arrived.wait()
        waiting = asyncio.create_task(p.request(b"PATCH", b"/v1/leads/b", b"{}"))
        await asyncio.wait((waiting,), timeout=0)  # it runs up to its wait for a place
        await p.close()
        with pytest.raises(RuntimeError, match="the client is closed"):
            await waiting
        with pytest.raises(TransportError):
            await holder

"""The HTTP/1.1 transport against a raw loopback server that answers with bytes of each test's
choosing: kept-alive connections and when they are not reused, the ways an answer's body ends,
the bounds on what is read, interim and extra answers, the limit on connections, cancellation,
refused and unknown hosts, and TLS (a certificate authority of the test's own, from trustme)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import trustme
from aiohttp import web

from bulk_updater.transport import MAX_HEAD, Origin, Pool, TransportError

OK = b'HTTP/1.1 200 OK\r\nContent-Length: 16\r\n\r\n{"success":true}'
LINES = b"Host: 127.0.0.1\r\nX-Api-Key: sk_test_transport\r\n"
Answer = bytes | Callable[[asyncio.StreamWriter], object]


class RawServer:
    """Answers the n-th request with `answers[n]` (the last one again once they run out): bytes
    written as they are, or a callable given the writer. Counts connections; keeps requests."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers) or [OK]
        self.requests: list[bytes] = []
        self.connections = 0
        self.port = 0
        self.arrived = asyncio.Event()  # set as each request arrives
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                self.requests.append(head + await reader.readexactly(length))
                self.arrived.set()
                answer = self.answers[min(len(self.requests), len(self.answers)) - 1]
                if callable(answer):
                    answer(writer)
                else:
                    writer.write(answer)
                await writer.drain()
                if writer.is_closing():
                    return
        writer.close()


def pool(port: int, *, limit: int = 4, body_limit: int = 1000) -> Pool:
    origin = Origin(False, "127.0.0.1", port, f"127.0.0.1:{port}")
    return Pool(origin, limit=limit, connect_timeout=5, header_lines=LINES, body_limit=body_limit)


@contextlib.asynccontextmanager
async def opened(port: int, **options: int) -> AsyncIterator[Pool]:
    p = pool(port, **options)
    try:
        yield p
    finally:
        await p.close()


async def test_a_request_is_the_bytes_it_should_be_and_connections_are_kept_alive() -> None:
    async with RawServer() as server, opened(server.port) as p:
        for _ in range(5):
            answer = await p.request(b"PATCH", b"/v1/leads/a1", b'{"city":"Oslo"}')
            assert (answer.status, answer.body, answer.complete) == (200, b'{"success":true}', True)
        get = await p.request(b"GET", b"/v1/leads?search=x&limit=100", None)
    assert get.status == 200
    assert server.connections == 1
    assert server.requests[0] == (
        b"PATCH /v1/leads/a1 HTTP/1.1\r\n" + LINES + b'Content-Length: 15\r\n\r\n{"city":"Oslo"}'
    )
    assert server.requests[-1] == b"GET /v1/leads?search=x&limit=100 HTTP/1.1\r\n" + LINES + b"\r\n"


async def test_an_answer_that_says_close_is_not_reused() -> None:
    close = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}"
    async with RawServer(close) as server, opened(server.port) as p:
        for _ in range(3):
            assert (await p.request(b"PATCH", b"/v1/leads/a", b"{}")).status == 200
    assert server.connections == 3


async def test_chunked_and_until_close_bodies_are_read_whole() -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n2\r\nef\r\n0\r\n\r\n"
    )
    until_close = b"HTTP/1.0 500 Oops\r\n\r\nthe body ends with the connection"

    def then_close(writer: asyncio.StreamWriter) -> None:
        writer.write(until_close)
        writer.close()

    async with RawServer(chunked, then_close) as server, opened(server.port) as p:
        first = await p.request(b"PATCH", b"/v1/leads/a", b"{}")
        second = await p.request(b"PATCH", b"/v1/leads/a", b"{}")
    assert (first.body, first.complete) == (b"abcdef", True)
    assert (second.status, second.reason, second.complete) == (500, "Oops", True)
    assert second.body == b"the body ends with the connection"


async def test_a_body_past_the_limit_is_cut_and_its_connection_closed() -> None:
    big = b"HTTP/1.1 500 Big\r\nContent-Length: 5000\r\n\r\n" + b"x" * 5000
    async with RawServer(big, OK) as server, opened(server.port, body_limit=1000) as p:
        cut = await p.request(b"PATCH", b"/v1/leads/a", b"{}")
        after = await p.request(b"PATCH", b"/v1/leads/a", b"{}")
    assert (cut.status, len(cut.body), cut.complete) == (500, 1000, False)
    assert after.status == 200
    assert server.connections == 2  # the rest of the big body was never read


@pytest.mark.parametrize("lines", [1, 20, 300])
async def test_headers_past_the_bound_are_an_error_not_memory(lines: int) -> None:
    """One line or many, read at once or over many reads (300 lines: about 1.2 MB)."""
    size = (MAX_HEAD + 100) // lines
    head = b"".join(b"X-More-%d: %s\r\n" % (n, b"z" * size) for n in range(lines))
    answer = b"HTTP/1.1 200 OK\r\n" + head + b"Content-Length: 2\r\n\r\n{}"
    async with RawServer(answer) as server, opened(server.port) as p:
        with pytest.raises(TransportError) as info:
            await p.request(b"PATCH", b"/v1/leads/a", b"{}")
    assert info.value.kind == "connection"
    assert info.value.message == "the server's answer has more than 64 KiB of headers"


async def test_what_is_no_http_is_a_connection_error() -> None:
    async with RawServer(b"SSH-2.0-OpenSSH_9.6\r\n\r\n") as server, opened(server.port) as p:
        with pytest.raises(TransportError) as info:
            await p.request(b"PATCH", b"/v1/leads/a", b"{}")
    assert info.value.kind == "connection"
    assert info.value.message.startswith("the server's answer is not valid HTTP/1.1")


async def test_a_connection_closed_without_an_answer_or_mid_answer() -> None:
    def hang_up(writer: asyncio.StreamWriter) -> None:
        writer.close()

    def half(writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{")
        writer.close()

    async with RawServer(hang_up, half, OK) as server, opened(server.port) as p:
        with pytest.raises(TransportError) as none:
            await p.request(b"PATCH", b"/v1/leads/a", b"{}")
        with pytest.raises(TransportError) as cut:
            await p.request(b"PATCH", b"/v1/leads/a", b"{}")
        assert (await p.request(b"PATCH", b"/v1/leads/a", b"{}")).status == 200
    assert none.value.message == "the server closed the connection without answering"
    assert cut.value.message == "the server closed the connection mid-answer"


async def test_an_interim_answer_is_passed_over() -> None:
    answer = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + OK
    async with RawServer(answer) as server, opened(server.port) as p:
        got = await p.request(b"PATCH", b"/v1/leads/a", b"{}")
        again = await p.request(b"PATCH", b"/v1/leads/a", b"{}")
    assert (got.status, got.body) == (200, b'{"success":true}')
    assert again.status == 200
    assert server.connections == 1


async def test_a_second_answer_to_one_request_ends_the_connection() -> None:
    async with RawServer(OK + OK, OK) as server, opened(server.port) as p:
        assert (await p.request(b"PATCH", b"/v1/leads/a", b"{}")).status == 200
        assert (await p.request(b"PATCH", b"/v1/leads/a", b"{}")).status == 200
    assert server.connections == 2  # the extra answer could have been taken for the next one's


async def test_the_headers_that_matter_are_kept_under_any_spelling() -> None:
    answer = (
        b"HTTP/1.1 429 Too Many Requests\r\nretry-after: 2\r\nX-RATELIMIT-LIMIT: 40\r\n"
        b"X-RateLimit-Limit: 41\r\nSet-Cookie: a=b\r\nContent-Length: 0\r\n\r\n"
    )
    async with RawServer(answer) as server, opened(server.port) as p:
        got = await p.request(b"PATCH", b"/v1/leads/a", b"{}")
    assert got.headers.get("Retry-After") == "2"
    assert got.headers.get("x-ratelimit-limit") == "40"  # the first of a repeated header
    assert got.headers.get("Set-Cookie") is None  # not kept: nothing reads it
    assert (got.status, got.reason) == (429, "Too Many Requests")


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

    async with RawServer(silent, OK) as server, opened(server.port, limit=1) as p:
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

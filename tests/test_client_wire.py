"""The client on real loopback servers, for what a mock cannot show: what is read of an answer is
bounded (headers, 1 MiB of body, the rest never read), dropped connections, a GET sent again once
when a kept-alive connection closes under it (a PATCH is not), no redirects followed, no cookies
kept, TLS verified (a certificate authority of the test's own, from trustme), timeouts, and the
departure hook of a shared budget."""

from __future__ import annotations

import asyncio
import contextvars
import gzip
import ssl
from pathlib import Path

import pytest
import trustme
from aiohttp import web

from bulk_updater import LeadUpdate, SendKitClient, TransportError
from bulk_updater.errors import ConfigError
from bulk_updater.sandbox import FaultPlan, Sandbox
from tests.cli.conftest import KEY, clean_env, cli, job_input
from tests.conftest import make_leads
from tests.http_server import OK, Answers, RawServer

SUCCESS = {"success": True, "data": {}}
UPDATE = LeadUpdate(id="a", city="Oslo")
PAGE = b'HTTP/1.1 200 OK\r\nContent-Length: 27\r\n\r\n{"success":true,"data":[]}\n'


def client(base_url: str, **overrides: object) -> SendKitClient:
    options: dict[str, object] = {
        "api_key": "sk_secret",
        "base_url": base_url,
        "timeout": 5,
        "concurrency": 4,
    }
    options.update(overrides)
    return SendKitClient(**options)  # type: ignore[arg-type]


# --- bounds


async def test_a_body_past_1_mib_is_cut_its_rest_never_read_and_its_connection_closed() -> None:
    """5 MiB announced and sent: the client reads 1 MiB, judges by it, and leaves the connection
    (the next request opens another) instead of draining the rest."""
    big = b"HTTP/1.1 200 OK\r\nContent-Length: 5242880\r\n\r\n" + b'{"success":true,"x":"'
    big += b"x" * (5 * 1024 * 1024 - 21)
    async with RawServer(big, OK, keep_alive=True) as server, client(server.url) as c:
        cut = await c.send(UPDATE)
        after = await c.send(UPDATE)
    assert (cut.status, cut.malformed) == (200, False)  # judged by how it starts
    assert (after.status, after.malformed) == (200, False)
    assert server.connections == 2


@pytest.mark.parametrize(("lines", "size"), [(1, 10_000), (200, 10)])
async def test_headers_past_the_bound_are_an_error_not_memory(lines: int, size: int) -> None:
    """A line longer than 8 KiB, or more than 128 lines: aiohttp's bounds."""
    head = b"".join(b"X-More-%d: %s\r\n" % (n, b"z" * size) for n in range(lines))
    answer = b"HTTP/1.1 200 OK\r\n" + head + b"Content-Length: 16\r\n\r\n" + b'{"success":true}'
    async with RawServer(answer) as server, client(server.url) as c:
        with pytest.raises(TransportError) as info:
            await c.send(UPDATE)
    assert info.value.kind == "connection"
    assert info.value.message.startswith("the server's answer is not valid HTTP (")
    assert info.value.error_code == "CONNECTION"


async def test_what_is_no_http_is_a_connection_error() -> None:
    async with RawServer(b"SSH-2.0-OpenSSH_9.6\r\n\r\n") as server, client(server.url) as c:
        with pytest.raises(TransportError) as info:
            await c.send(UPDATE)
    assert info.value.kind == "connection"
    assert info.value.message.startswith("the server's answer is not valid HTTP (")


# --- dropped connections


async def test_a_connection_closed_without_an_answer_or_mid_answer() -> None:
    def half(writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{")
        writer.close()

    async with RawServer("close", half, OK) as server, client(server.url) as c:
        with pytest.raises(TransportError) as none:
            await c.send(UPDATE)
        with pytest.raises(TransportError) as cut:
            await c.send(UPDATE)
        assert (await c.send(UPDATE)).status == 200
    assert none.value.message == "the server closed the connection without answering"
    assert cut.value.message == "the server closed the connection mid-answer"
    assert (none.value.kind, cut.value.kind) == ("connection", "connection")


@pytest.mark.parametrize("method", ["GET", "PATCH"])
async def test_a_get_is_sent_again_once_when_a_kept_alive_connection_closes_under_it(
    method: str,
) -> None:
    """The server answers, keeps the connection, then closes it on the next request without a
    word: a search goes again on a new connection (aiohttp does so for a GET); a PATCH fails, for
    the engine's rules to retry (a start of its own, paced)."""
    async with (
        RawServer(OK, "close", PAGE, keep_alive=True) as server,
        client(server.url) as c,
    ):
        assert (await c.send(UPDATE)).status == 200
        if method == "GET":
            again = await c.search("ann@x.com", None)
            assert (again.status, again.malformed) == (200, False)
        else:
            with pytest.raises(TransportError) as info:
                await c.send(UPDATE)
            assert info.value.message == "the server closed the connection without answering"
    assert len(server.requests) == (3 if method == "GET" else 2)
    assert server.connections == (2 if method == "GET" else 1)


# --- what is not followed or kept


async def test_redirect_is_reported_not_followed() -> None:
    """Neither elsewhere nor to the same server, where the lead it names would answer 200."""
    async with Answers() as server, client(server.url) as c:
        server.add(
            "PATCH", "/v1/leads/x", status=301, headers={"Location": "https://evil.example/"}
        )
        here = f"{server.url}/v1/leads/y"
        server.add("PATCH", "/v1/leads/x", status=307, headers={"Location": here})
        server.add("PATCH", "/v1/leads/y", payload=SUCCESS)
        reply = await c.send(LeadUpdate(id="x", city="Oslo"))
        same_server = await c.send(LeadUpdate(id="x", city="Oslo"))
    assert reply.status == 301
    assert "redirected to https://evil.example/" in reply.message
    assert same_server.status == 307
    assert f"redirected to {here}" in same_server.message
    assert [request.path for request in server.requests] == ["/v1/leads/x", "/v1/leads/x"]


async def test_no_cookie_is_kept_and_no_compression_asked_for() -> None:
    cookie = {"Set-Cookie": "session=abc123; Path=/"}
    async with Answers() as server, client(server.url) as c:
        server.add("PATCH", "/v1/leads/a", payload=SUCCESS, headers=cookie)
        server.add("PATCH", "/v1/leads/a", payload=SUCCESS)
        await c.send(UPDATE)
        await c.send(UPDATE)
    first, second = server.requests
    assert "Cookie" not in second.headers
    assert first.headers.getall("Accept-Encoding") == ["identity"]  # no coding but none


def chunked(body: bytes) -> bytes:
    return b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)


@pytest.mark.parametrize("status", [b"200 OK", b"500 Oops"])
@pytest.mark.parametrize("coding", ["Content-Encoding", "Transfer-Encoding"])
async def test_no_compression_is_asked_for_and_a_compressed_body_is_said_so(
    status: bytes, coding: str
) -> None:
    """aiohttp undoes neither coding (no compression was asked for): the body is said to be
    compressed, never shown as mojibake."""
    body = gzip.compress(b'{"success":true,"data":{}}')
    if coding == "Content-Encoding":
        head, body = b"Content-Encoding: gzip\r\nContent-Length: %d" % len(body), body
    else:
        head, body = b"Transfer-Encoding: gzip, chunked", chunked(body)
    answer = b"HTTP/1.1 %s\r\n%s\r\n\r\n%s" % (status, head, body)
    async with RawServer(answer) as server, client(server.url) as c:
        reply = await c.send(UPDATE)
    (request,) = server.requests
    assert b"\r\naccept-encoding: identity\r\n" in request.lower()
    assert "(a body compressed as gzip, not asked for)" in reply.message
    assert "\ufffd" not in reply.message


async def test_a_coding_that_echoes_the_key_is_said_without_any_of_it() -> None:
    """The coding is quoted as sent, the key taken out first (lower-cased, it would slip by)."""
    key = "sk_live_AbCdEfGhIjKlMnOpQrStUvWxYz0123"
    answer = b"HTTP/1.1 400 Bad\r\nContent-Encoding: %s\r\nContent-Length: 2\r\n\r\nxx" % (
        key.encode()
    )
    async with RawServer(answer) as server, client(server.url, api_key=key) as c:
        reply = await c.send(UPDATE)
    assert reply.message == "(a body compressed as [redacted], not asked for)"
    for piece in (key, key[8:20], key[8:20].lower()):
        assert piece not in f"{reply.message} {reply.error_code}"


async def test_a_chunked_body_is_no_compressed_one() -> None:
    body = b'{"success":true,"data":{}}'
    answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%s" % chunked(body)
    async with RawServer(answer) as server, client(server.url) as c:
        reply = await c.send(UPDATE)
    assert (reply.status, reply.malformed) == (200, False)


# --- TLS


@pytest.fixture
def tls_server() -> tuple[trustme.CA, ssl.SSLContext]:
    authority = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost").configure_cert(context)
    return authority, context


async def test_tls_is_verified_against_the_system_and_ssl_cert_file(
    tls_server: tuple[trustme.CA, ssl.SSLContext], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    authority, context = tls_server
    async with Answers(tls=context) as server:
        port = server_port(server.url)
        server.add("PATCH", "/v1/leads/a", payload=SUCCESS)
        async with client(server.url) as untrusted:
            with pytest.raises(TransportError) as info:
                await untrusted.send(UPDATE)
        ca_file = tmp_path / "ca.pem"
        authority.cert_pem.write_to_path(str(ca_file))
        monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))  # what OpenSSL trusts by default
        async with client(server.url) as trusted:
            got = await trusted.send(UPDATE)
    assert info.value.kind == "connection"
    assert info.value.message.startswith(f"TLS with localhost:{port} failed (")
    assert "CERTIFICATE_VERIFY_FAILED" in info.value.message
    assert (got.status, got.malformed) == (200, False)
    assert len(server.requests) == 1  # the untrusted one sent nothing


@pytest.mark.parametrize(
    ("variable", "what", "said"),
    [("SSL_CERT_FILE", "missing", "cannot be read (No such file or directory)"),
     ("SSL_CERT_FILE", "garbage", "holds no certificate"),
     ("SSL_CERT_FILE", "folder", "cannot be read (Is a directory)"),
     ("SSL_CERT_DIR", "missing", "is no folder")],
)  # fmt: skip
async def test_a_certificate_variable_that_names_nothing_readable_stops_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, what: str, said: str
) -> None:
    """OpenSSL would pass over it, and every row fail its certificate check."""
    path = {"missing": tmp_path / "nothing.pem", "folder": tmp_path}.get(what, tmp_path / "g.pem")
    (tmp_path / "g.pem").write_text("garbage\n", encoding="utf-8")
    monkeypatch.setenv(variable, str(path))
    with pytest.raises(ConfigError) as info:
        async with client("https://localhost:1"):
            pass
    wanted = "a file of PEM certificates" if variable == "SSL_CERT_FILE" else "folders of them"
    assert str(info.value) == f"{variable}: {path} {said}; name {wanted}, or unset {variable}"
    async with client("http://127.0.0.1:1"):  # plain http reads no certificate
        pass


def test_a_bad_ssl_cert_file_is_exit_2_in_one_line(tmp_path: Path) -> None:
    source, _ = job_input(tmp_path, make_leads(1))
    environment = clean_env(SENDKIT_API_KEY=KEY, SSL_CERT_FILE=str(tmp_path / "ca.pem"))
    code, out, err = cli(source, env=environment, cwd=tmp_path)
    assert code == 2, out + err
    (line,) = err.strip().splitlines()
    assert line.endswith(f"error: SSL_CERT_FILE: {tmp_path / 'ca.pem'} cannot be read (No such "
                         "file or directory); name a file of PEM certificates, or unset "
                         "SSL_CERT_FILE")  # fmt: skip


def server_port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


# --- timeouts (kept by the client's watchdog, not by an aiohttp timer per request)


async def test_a_silent_server_is_a_timeout_with_its_own_code() -> None:
    async with RawServer("silent") as server, client(server.url, timeout=0.2) as c:
        with pytest.raises(TransportError) as caught:
            await c.send(UPDATE)
    assert caught.value.kind == "timeout"
    assert caught.value.error_code == "TIMEOUT"
    assert len(server.requests) == 1  # it was sent; no answer came


async def test_an_answer_later_than_the_timeout_is_a_timeout() -> None:
    """The watchdog cancels a request past its deadline, and `send` says it timed out."""
    leads = make_leads(1)
    slow = FaultPlan(rate=1.0, kinds=("slow",), slow_seconds=0.5)
    async with (
        Sandbox(leads, api_key="sk_secret", faults=slow) as sandbox,
        client(sandbox.url, timeout=0.05) as c,
    ):
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(TransportError) as caught:
            await c.send(LeadUpdate(id=next(iter(leads)), city="Oslo"))
        waited = loop.time() - started
    assert caught.value.kind == "timeout"
    assert waited < 0.5  # the answer would have come after 0.5 s: the timeout ended it first


async def test_a_cancelled_request_is_a_cancellation_not_a_timeout() -> None:
    leads = make_leads(1)
    arrived = asyncio.Event()

    async def note(request: web.Request) -> web.StreamResponse | None:
        arrived.set()
        return None

    slow = FaultPlan(rate=1.0, kinds=("slow",), slow_seconds=0.5)
    async with (
        Sandbox(leads, api_key="sk_secret", faults=slow, intercept=note) as sandbox,
        client(sandbox.url, timeout=30) as c,
    ):
        sending = asyncio.ensure_future(c.send(LeadUpdate(id=next(iter(leads)), city="Oslo")))
        await arrived.wait()
        sending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sending
        assert not c._watchdog.deadlines  # forgotten, whatever ended the request


# --- the departure of each request, for a shared rate budget


async def test_the_departure_hook_runs_once_per_request_in_the_task_that_sends_it() -> None:
    """A PATCH departs with its body, a search with its headers; either way the hook sees the
    context of the task that sent it (a shared budget keeps the start it granted there)."""
    leads = make_leads(1)
    sending: contextvars.ContextVar[str] = contextvars.ContextVar("sending", default="")
    departed: list[tuple[str, bool]] = []
    arrived: list[bool] = []

    async def note(request: web.Request) -> web.StreamResponse | None:
        arrived.append(True)
        return None

    def on_departure() -> None:
        departed.append((sending.get(), bool(arrived)))  # before the server saw the request

    async with (
        Sandbox(leads, api_key="sk_secret", intercept=note) as sandbox,
        client(sandbox.url, on_departure=on_departure) as c,
    ):

        async def send(name: str) -> None:
            sending.set(name)
            arrived.clear()
            if name == "patch":
                reply = await c.send(LeadUpdate(id=next(iter(leads)), city="Oslo"))
            else:
                reply = await c.search("lead0@example.com", None)
            assert reply.status == 200

        await asyncio.create_task(send("patch"))
        await asyncio.create_task(send("search"))
    assert departed == [("patch", False), ("search", False)]


async def test_without_a_departure_hook_requests_are_sent_as_ever() -> None:
    async with Answers() as server, client(server.url) as c:
        server.add("PATCH", "/v1/leads/x", payload=SUCCESS)
        server.add("GET", "/v1/leads", payload={"success": True, "data": []})
        patched = await c.send(LeadUpdate(id="x", city="Oslo"))
        searched = await c.search("ann@x.com", None)
    assert (patched.status, patched.malformed) == (200, False)
    assert searched.page is not None
    assert searched.page.leads == ()
    assert [(r.method, r.path) for r in server.requests] == [
        ("PATCH", "/v1/leads/x"),
        ("GET", "/v1/leads"),
    ]

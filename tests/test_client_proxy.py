"""The client through a proxy of the test's own (`ScriptedProxy`, `tests/proxy_server.py`), for
what tinyproxy cannot show: what a `CONNECT` carries (never the key or the workspace id), what a
hostile proxy may echo back (never the key, the proxy's login or its Base64), and how a proxy
that closes, stays silent or stalls its tunnel is named."""

from __future__ import annotations

import base64
import json
import ssl
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import pytest

from bulk_updater import LeadUpdate, SendKitClient, TransportError
from tests.http_server import Answers
from tests.proxy_server import Action, ScriptedProxy, no_proxy_variables, trusted_tls
from tests.servers import free_port

KEY = "sk_live_SECRETKEY123456789abcdef"
WORKSPACE = "ws_0123456789"
SUCCESS = {"success": True, "data": {}}
UPDATE = LeadUpdate(id="a", city="Oslo")


def client(base_url: str, proxy: str | None = None) -> SendKitClient:
    return SendKitClient(
        api_key=KEY, base_url=base_url, timeout=5, concurrency=2, workspace_id=WORKSPACE,
        proxy=proxy,
    )  # fmt: skip


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    return no_proxy_variables(monkeypatch)


@pytest.fixture
def authority(env: pytest.MonkeyPatch, tmp_path: Path) -> ssl.SSLContext:
    return trusted_tls(env, tmp_path)


def header_names(head: bytes) -> set[str]:
    return {line.split(b":", 1)[0].decode().lower() for line in head.split(b"\r\n")[1:] if line}


# --- what the proxy is sent


async def test_a_connect_carries_neither_the_key_nor_the_workspace_id(
    env: pytest.MonkeyPatch, authority: ssl.SSLContext
) -> None:
    async with ScriptedProxy(lambda head: "tunnel") as proxy:
        env.setenv("HTTPS_PROXY", proxy.url)
        async with Answers(tls=authority) as server, client(server.url) as c:
            server.add("PATCH", "/v1/leads/a", payload=SUCCESS)
            reply = await c.send(UPDATE)
            authority_form = server.url.removeprefix("https://")
    assert reply.status == 200
    (connect,) = proxy.heads
    assert connect.startswith(f"CONNECT {authority_form} HTTP/1.1\r\n".encode())
    assert KEY.encode() not in connect
    assert WORKSPACE.encode() not in connect
    assert header_names(connect) <= {"host", "user-agent", "accept", "accept-encoding"}
    (arrival,) = server.requests  # the API, through the tunnel, gets them
    assert (arrival.headers["X-Api-Key"], arrival.headers["X-Workspace-Id"]) == (KEY, WORKSPACE)


def knowing(login: str) -> Callable[[bytes], Action]:
    """A proxy that knows `login` as curl sends it (UTF-8): a tunnel, or on an `http://` API a
    success of its own, with it; 407 without it."""
    expected = b"Basic " + base64.b64encode(login.encode())

    def answer(head: bytes) -> Action:
        lines = [line.partition(b":") for line in head.split(b"\r\n")[1:]]
        sent = [value.strip() for name, _, value in lines if name.lower() == b"proxy-authorization"]
        if sent != [expected]:
            return b"HTTP/1.1 407 Login\r\nContent-Length: 0\r\n\r\n"
        if head.startswith(b"CONNECT "):
            return "tunnel"
        body = json.dumps(SUCCESS).encode()
        return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)

    return answer


@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize("password", ["p\u00e9ss_w0rd", "pa\u20acss_w0rd"])
async def test_a_login_beyond_ascii_goes_utf8_as_curl_sends_it(
    env: pytest.MonkeyPatch, authority: ssl.SSLContext, scheme: str, password: str
) -> None:
    """aiohttp alone sends a login Latin-1 (a proxy that knows it from curl refuses it), and
    cannot send one beyond Latin-1 at all (a traceback quoting the password)."""
    async with ScriptedProxy(knowing(f"ann:{password}")) as proxy:
        login = f"ann:{quote(password, safe='')}@"
        env.setenv(f"{scheme.upper()}_PROXY", proxy.url.replace("http://", f"http://{login}"))
        tls = authority if scheme == "https" else None
        async with Answers(tls=tls) as server, client(server.url) as c:
            server.add("PATCH", "/v1/leads/a", payload=SUCCESS)
            reply = await c.send(UPDATE)
    assert (reply.status, reply.malformed) == (200, False)
    assert len(proxy.heads) == 1


# --- what a hostile proxy may echo


def echo(status: bytes) -> Callable[[bytes], Action]:
    """A proxy that answers `status` with the login it was sent, encoded and decoded, in its
    reason phrase and a page that quotes the request head (its lines in reverse order)."""

    def answer(head: bytes) -> Action:
        lines = head.rstrip(b"\r\n").split(b"\r\n")
        sent = [line.split(b":", 1)[1].strip() for line in lines if b"auth" in line.lower()]
        encoded = sent[0].removeprefix(b"Basic ") if sent else b""
        user, _, password = base64.b64decode(encoded).partition(b":")
        said = b"%s user=%s password=%s" % (encoded, user, password)
        page = b"<pre>%s %s</pre>" % (b"\n".join(reversed(lines)), said)
        return (
            b"HTTP/1.1 %s %s\r\nProxy-Authenticate: Basic realm=x\r\nContent-Type: text/html\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (status, said, len(page), page)
        )

    return answer


@pytest.mark.parametrize(
    ("scheme", "status"),
    [("https", b"407 Denied"), ("https", b"403 Forbidden"), ("https", b"502 Bad"),
     ("https", b"4x7"), ("http", b"502 Bad Gateway"), ("http", b"407 Denied")],
)  # fmt: skip
@pytest.mark.parametrize(
    ("user", "password"), [("puser", "Pr0xyPassw0rdXYZ"), ("puser", "abc"), ("tok_0a1b2c3d4e", "")]
)
async def test_a_proxy_echoing_the_login_never_gets_it_shown(
    env: pytest.MonkeyPatch, scheme: str, status: bytes, user: str, password: str
) -> None:
    """The user (a token, for some proxies), the password (however short), `user:password` and
    its Base64 (`Proxy-Authorization: Basic ...`) are each taken out of whatever the proxy says;
    a text holding a password too short to be told from a word is not shown at all."""
    async with ScriptedProxy(echo(status)) as proxy:
        login = f"{user}:{password}" if password else user
        address = proxy.url.replace("http://", f"http://{login}@")
        async with client(f"{scheme}://127.0.0.1:{free_port()}", proxy=address) as c:
            try:
                reply = await c.send(UPDATE)
            except TransportError as exc:
                shown = exc.message
            else:
                shown = f"{reply.error_code} {reply.message} {reply.headers}"
    (head,) = proxy.heads
    encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
    assert encoded.encode() in head  # the proxy was sent the login, and echoed it
    for secret in {password or user, user, f"{user}:{password}", encoded, KEY} - {"puser"}:
        assert secret not in shown, shown
    assert encoded[:8] not in shown


def json_echo(status: bytes) -> Callable[[bytes], Action]:
    """A proxy that answers `status` with a JSON page quoting the login it was sent, decoded, as
    a cloud or corporate proxy's policy page may (no `Proxy-Authenticate`)."""

    def answer(head: bytes) -> Action:
        lines = head.rstrip(b"\r\n").split(b"\r\n")
        sent = [line.split(b":", 1)[1].strip() for line in lines if b"auth" in line.lower()]
        login = base64.b64decode(sent[0].removeprefix(b"Basic ")) if sent else b""
        body = b'{"message": "Access denied by policy for %s"}' % login
        return b"HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
            status,
            len(body),
            body,
        )

    return answer


@pytest.mark.parametrize(
    "status", [b"403 Forbidden", b"401 Unauthorized", b"502 Bad Gateway", b"200 OK"]
)
async def test_a_proxys_json_page_quoting_its_login_never_gets_it_shown(
    env: pytest.MonkeyPatch, status: bytes
) -> None:
    """A JSON answer may be a proxy's as well as the API's: its text is redacted of the proxy's
    login all the same, and a 401 or 403 that quotes the login is the proxy's, not the key's."""
    async with ScriptedProxy(json_echo(status)) as proxy:
        address = proxy.url.replace("http://", "http://jsmith:S3curePassw0rd@")
        async with client(f"http://127.0.0.1:{free_port()}", proxy=address) as c:
            try:
                reply = await c.send(UPDATE)
            except TransportError as exc:
                shown, refused = exc.message, exc
            else:
                shown, refused = f"{reply.error_code} {reply.message} {reply.headers}", None
    assert "S3curePassw0rd" not in shown, shown
    assert "Access denied by policy for" in shown or refused is not None, shown
    if status[:1] == b"4":
        assert refused is not None, shown  # not a reply: `deliver` would blame the API key
        assert (refused.kind, refused.final) == ("proxy", True)
        assert refused.message.startswith(f"the proxy {proxy.url} (from --proxy) ")


# --- whose answer


def answer(status: bytes, body: bytes, *headers: bytes) -> Action:
    head = b"".join(h + b"\r\n" for h in headers)
    return b"HTTP/1.1 %s\r\n%sContent-Length: %d\r\n\r\n%s" % (status, head, len(body), body)


@pytest.mark.parametrize(
    ("status", "body", "headers", "proxys"),
    [(b"403 Access denied", b"<html>Generated by tinyproxy</html>", (), True),
     (b"401 Unauthorized", b"", (b"Proxy-Authenticate: Basic realm=x",), True),
     (b"401 Unauthorized", b'{"error": {"code": "UNAUTHORIZED", "message": "bad key"}}', (), False),
     (b"403 Forbidden", b'{"error": "Forbidden", "message": "no", "code": 403}', (), False)],
)  # fmt: skip
async def test_a_401_or_403_of_the_proxy_on_an_http_api_names_the_proxy_not_the_key(
    env: pytest.MonkeyPatch, status: bytes, body: bytes, headers: tuple[bytes, ...], proxys: bool
) -> None:
    """Without a tunnel the proxy's answer comes as the API's would: one that asks for a proxy
    login, or is no JSON error (the API's always is), is the proxy's, and stops the job."""
    async with ScriptedProxy(lambda head: answer(status, body, *headers)) as proxy:
        env.setenv("HTTP_PROXY", proxy.url)
        async with client(f"http://127.0.0.1:{free_port()}") as c:
            if not proxys:
                reply = await c.send(UPDATE)
                assert reply.status == int(status[:3])
                return
            with pytest.raises(TransportError) as info:
                await c.send(UPDATE)
    assert (info.value.kind, info.value.final) == ("proxy", True)
    said = status.decode()
    if said.startswith("401"):
        assert info.value.message == (
            f"the proxy {proxy.url} (from HTTP_PROXY) answered {said}: it wants a login, and "
            "none is in HTTP_PROXY (http://USER:PASSWORD@HOST:PORT); check HTTP_PROXY"
        )
    else:
        assert info.value.message == (
            f"the proxy {proxy.url} (from HTTP_PROXY) refused the request ({said}); "
            "check HTTP_PROXY"
        )


# --- whose failure: the proxy's, or the API's through its tunnel


def quick_client(base_url: str) -> SendKitClient:
    return SendKitClient(api_key=KEY, base_url=base_url, timeout=0.5, concurrency=2)


@pytest.mark.parametrize(
    ("action", "kind", "said"),
    [("close", "connection", "closed the connection without answering the CONNECT"),
     ("reset", "connection", "dropped the connection before answering the CONNECT"),
     ("silent", "timeout", "did not answer the CONNECT within the timeout")],
)  # fmt: skip
async def test_a_proxy_that_fails_its_connect_is_named_and_retried(
    env: pytest.MonkeyPatch, action: Action, kind: str, said: str
) -> None:
    """A proxy that closes or never answers a `CONNECT` is the proxy's failure, not the API's:
    the message names it and where it came from; the row is retried (it may be passing)."""
    async with ScriptedProxy(lambda head: action) as proxy:
        env.setenv("HTTPS_PROXY", proxy.url)
        async with quick_client(f"https://127.0.0.1:{free_port()}") as c:
            with pytest.raises(TransportError) as info:
                await c.send(UPDATE)
    assert proxy.heads[0].startswith(b"CONNECT ")
    assert (info.value.kind, info.value.final) == (kind, False)
    assert info.value.message == f"the proxy {proxy.url} (from HTTPS_PROXY) {said}"


async def test_a_tls_handshake_that_stalls_in_the_tunnel_is_the_apis(
    env: pytest.MonkeyPatch,
) -> None:
    """A proxy that answers `CONNECT` 200 has done its part: a handshake that then never ends
    is the API's (through the tunnel), not a connection to the proxy that timed out."""
    async with ScriptedProxy(lambda head: "stall") as proxy:
        env.setenv("HTTPS_PROXY", proxy.url)
        port = free_port()
        async with quick_client(f"https://127.0.0.1:{port}") as c:
            with pytest.raises(TransportError) as info:
                await c.send(UPDATE)
    assert (info.value.kind, info.value.final) == ("timeout", False)
    assert info.value.message == (
        f"no TLS handshake with 127.0.0.1:{port} through the proxy {proxy.url} (from "
        "HTTPS_PROXY) within the timeout"
    )


async def test_a_proxy_that_closes_on_an_http_request_is_named(env: pytest.MonkeyPatch) -> None:
    """Without a tunnel the proxy is the peer: its silent close is said as its own."""
    async with ScriptedProxy(lambda head: "close") as proxy:
        env.setenv("HTTP_PROXY", proxy.url)
        async with quick_client(f"http://127.0.0.1:{free_port()}") as c:
            with pytest.raises(TransportError) as info:
                await c.send(UPDATE)
    assert (info.value.kind, info.value.final) == ("connection", False)
    assert info.value.message == (
        f"the proxy {proxy.url} (from HTTP_PROXY) closed the connection without answering"
    )


@pytest.mark.parametrize("action", ["hang_up", "drop"])
async def test_a_tunnel_dropped_in_the_tls_handshake_is_the_apis_and_retried(
    env: pytest.MonkeyPatch, action: Action
) -> None:
    """A proxy that answered `CONNECT` 200 was reached: a tunnel that then closes or resets in
    the handshake is a dropped connection to the API (or the proxy's upstream), retried."""
    async with ScriptedProxy(lambda head: action) as proxy:
        env.setenv("HTTPS_PROXY", proxy.url)
        port = free_port()
        async with quick_client(f"https://127.0.0.1:{port}") as c:
            with pytest.raises(TransportError) as info:
                await c.send(UPDATE)
    assert (info.value.kind, info.value.final) == ("connection", False)
    assert info.value.message.startswith(
        f"the connection to 127.0.0.1:{port} through the proxy {proxy.url} (from HTTPS_PROXY) "
        "was dropped during the TLS handshake ("
    )
    assert "cannot be reached" not in info.value.message


# --- a proxy that paces


@pytest.mark.parametrize(
    ("status", "retry_after"), [(b"429 Slow Down", 7.0), (b"408 Request Timeout", None)]
)
async def test_a_proxy_pacing_its_connects_is_answered_like_the_api(
    env: pytest.MonkeyPatch, status: bytes, retry_after: float | None
) -> None:
    """A 429 (or 408) to `CONNECT` is a reply like the API's own, as the proxy's is on an
    `http://` API: waited (its `Retry-After`) and retried, never the end of the job."""
    wait = b"Retry-After: 7" if retry_after is not None else b"X-Nothing: 0"
    async with ScriptedProxy(lambda head: answer(status, b"", wait)) as proxy:
        env.setenv("HTTPS_PROXY", proxy.url)
        async with client(f"https://127.0.0.1:{free_port()}") as c:
            reply = await c.send(UPDATE)
    assert proxy.heads[0].startswith(b"CONNECT ")
    code = int(status[:3])
    assert (reply.status, reply.error_code) == (code, f"HTTP_{code}")
    assert reply.retry_after == retry_after
    assert reply.message == (
        f"the proxy {proxy.url} (from HTTPS_PROXY) answered the CONNECT {status.decode()}"
    )

"""The client through a proxy of the test's own (`ScriptedProxy`, `tests/proxy_server.py`), for
what tinyproxy cannot show: what a `CONNECT` carries (never the key or the workspace id), what a
hostile proxy may echo back (never the key, the proxy's login or its Base64), and how a proxy
that closes, stays silent or stalls its tunnel is named."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from bulk_updater import LeadUpdate, SendKitClient
from tests.http_server import Answers
from tests.proxy_server import ScriptedProxy, no_proxy_variables, trusted_tls

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

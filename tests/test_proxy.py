"""Proxies: jobs through a real one, a tinyproxy of the test's own (`tests/proxy_server.py`): an
`http://` API through `HTTP_PROXY`, an `https://` one through `CONNECT` (trustme's authority),
`NO_PROXY` around it, a proxy that is down or does not resolve, and one that answers 407. The
command's side: exit 3 with one line naming the proxy, `-v` saying which is used, and its
password nowhere. Which proxy a job uses is in test_proxy_choice.py."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

import aiohttp
import pytest
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from bulk_updater import LeadUpdate, SendKitClient, TransportError
from bulk_updater.answers import Redactor
from bulk_updater.failures import (
    TUNNEL_FAILURES_AT_START,
    TUNNEL_STOP_SPAN,
    Tunnels,
    connect_refused,
    transport_error,
)
from bulk_updater.proxy import proxy_for
from bulk_updater.sandbox import SandboxThread
from tests.cli.conftest import KEY, clean_env, cli, job_input, leaks, read_run_report
from tests.conftest import make_leads
from tests.http_server import Answers
from tests.proxy_server import TinyProxy, no_proxy_variables, trusted_tls
from tests.servers import free_port

SUCCESS = {"success": True, "data": {}}
UPDATE = LeadUpdate(id="a", city="Oslo")
PASSWORD = "pr0xy_s3cret_pw"


def client(base_url: str, proxy: str | None = None) -> SendKitClient:
    return SendKitClient(
        api_key="sk_secret", base_url=base_url, timeout=5, concurrency=2, proxy=proxy
    )


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    return no_proxy_variables(monkeypatch)


# --- through tinyproxy


async def test_an_http_api_through_http_proxy(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with TinyProxy(tmp_path) as proxy:
        env.setenv("HTTP_PROXY", proxy.url)
        async with Answers() as server, client(server.url) as c:
            server.add("PATCH", "/v1/leads/a", payload=SUCCESS)
            reply = await c.send(UPDATE)
            target = f"{server.url}/v1/leads/a"
    assert (reply.status, reply.malformed) == (200, False)
    assert proxy.requests == [f"PATCH {target} HTTP/1.1"]
    (arrival,) = server.requests
    assert arrival.headers["X-Api-Key"] == "sk_secret"


@pytest.fixture
def authority(env: pytest.MonkeyPatch, tmp_path: Path) -> ssl.SSLContext:
    return trusted_tls(env, tmp_path)


async def test_an_https_api_through_a_connect_tunnel(
    env: pytest.MonkeyPatch, authority: ssl.SSLContext, tmp_path: Path
) -> None:
    with TinyProxy(tmp_path, login=("ann", PASSWORD)) as proxy:
        env.setenv("HTTPS_PROXY", f"http://ann:{PASSWORD}@127.0.0.1:{proxy.port}")
        async with Answers(tls=authority) as server, client(server.url) as c:
            server.add("PATCH", "/v1/leads/a", payload=SUCCESS)
            reply = await c.send(UPDATE)
            authority_form = server.url.removeprefix("https://")
    assert (reply.status, reply.malformed) == (200, False)
    assert proxy.requests == [f"CONNECT {authority_form} HTTP/1.1"]
    assert len(server.requests) == 1


async def test_no_proxy_goes_around_it(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with TinyProxy(tmp_path) as proxy:
        env.setenv("HTTP_PROXY", proxy.url)
        env.setenv("NO_PROXY", "127.0.0.1")
        async with Answers() as server, client(server.url) as c:
            server.add("PATCH", "/v1/leads/a", payload=SUCCESS)
            reply = await c.send(UPDATE)
    assert reply.status == 200
    assert proxy.requests == []
    assert len(server.requests) == 1


@pytest.mark.parametrize("host", ["127.0.0.1", "proxy.sendkit.invalid"])
async def test_a_proxy_down_or_unknown_is_final_and_named_with_its_variable(
    env: pytest.MonkeyPatch, host: str
) -> None:
    port = free_port()  # nothing listens there
    env.setenv("HTTPS_PROXY", f"http://ann:{PASSWORD}@{host}:{port}")
    async with client("https://api.sendkit.ai") as c:
        with pytest.raises(TransportError) as info:
            await c.send(UPDATE)
    message = info.value.message
    assert (info.value.kind, info.value.final) == ("proxy", True)
    assert message.startswith(
        f"the proxy http://{host}:{port} (from HTTPS_PROXY) cannot be reached"
    )
    assert message.endswith("; check HTTPS_PROXY")
    if host != "127.0.0.1":
        assert f"its host {host} is not known" in message
    assert PASSWORD not in message
    assert "--base-url" not in message


@pytest.mark.parametrize(
    ("scheme", "login"), [("http", None), ("http", "wrong"), ("https", None), ("https", "wrong")]
)
async def test_a_proxy_answering_407_is_final(
    env: pytest.MonkeyPatch, authority: ssl.SSLContext, tmp_path: Path, scheme: str,
    login: str | None,
) -> None:  # fmt: skip
    with TinyProxy(tmp_path, login=("ann", PASSWORD)) as proxy:
        credentials = f"ann:{login}@" if login else ""
        env.setenv(f"{scheme.upper()}_PROXY", f"http://{credentials}127.0.0.1:{proxy.port}")
        tls = authority if scheme == "https" else None
        async with Answers(tls=tls) as server, client(server.url) as c:
            with pytest.raises(TransportError) as info:
                await c.send(UPDATE)
    variable = f"{scheme.upper()}_PROXY"
    what = "refused the login in" if login else "wants a login, and none is in"
    assert (info.value.kind, info.value.final) == ("proxy", True)
    status = 401 if login else 407  # tinyproxy answers a wrong login with 401
    assert info.value.message.startswith(
        f"the proxy http://127.0.0.1:{proxy.port} (from {variable}) answered {status} "
    )
    assert f": it {what} {variable} " in info.value.message
    assert server.requests == []


async def test_a_tunnel_the_proxy_forbids_is_final_one_it_cannot_open_is_retried(
    env: pytest.MonkeyPatch, authority: ssl.SSLContext, tmp_path: Path
) -> None:
    """tinyproxy answers 403 to a `CONNECT` its rules forbid (here: to any port but 443), 500
    when it cannot reach the API (nothing listens there): the API's host and port are named,
    and such answers one after the other are retried (when they stop the job: below)."""
    with TinyProxy(tmp_path, connect_ports=(443,)) as strict, TinyProxy(tmp_path) as plain:
        async with Answers(tls=authority) as server:
            env.setenv("HTTPS_PROXY", strict.url)
            async with client(server.url) as c:
                with pytest.raises(TransportError) as forbidden:
                    await c.send(UPDATE)
        env.setenv("HTTPS_PROXY", plain.url)
        port = free_port()
        async with client(f"https://localhost:{port}") as c:
            unreachable = []
            for _ in range(TUNNEL_FAILURES_AT_START):
                with pytest.raises(TransportError) as info:
                    await c.send(UPDATE)
                unreachable.append(info.value)
    assert (forbidden.value.kind, forbidden.value.final) == ("proxy", True)
    assert forbidden.value.message.startswith(
        f"the proxy {strict.url} (from HTTPS_PROXY) refused a tunnel to the API (403 "
    )
    assert forbidden.value.message.endswith("; check HTTPS_PROXY")
    said = f"the proxy {plain.url} (from HTTPS_PROXY) could not connect to localhost:{port} (5"
    for failure in unreachable:
        assert (failure.kind, failure.final) == ("connection", False)
        assert failure.message.startswith(said)


def connect_answer(status: int, reason: str) -> aiohttp.ClientHttpProxyError:
    url = URL("https://api.sendkit.ai/v1/leads/a")
    request = aiohttp.RequestInfo(url, "CONNECT", CIMultiDictProxy(CIMultiDict()), url)
    return aiohttp.ClientHttpProxyError(request, (), status=status, message=reason)


def test_tunnels_the_proxy_cannot_open_stop_the_job_only_over_seconds() -> None:
    """A few 5xx to `CONNECT` at once (the requests of the job's start) may be a blip of the
    proxy's way to the API: the job stops, no request through the proxy yet, only once such
    answers have gone on for `TUNNEL_STOP_SPAN` seconds (a mistyped host's do)."""
    api = URL("https://api.sendkit.ai")
    proxy = proxy_for(str(api), "http://127.0.0.1:3128")
    assert proxy is not None
    tunnels, refused = Tunnels(), connect_answer(503, "Service Unavailable")
    for now in (100.0, 100.0, 100.0, 100.1, 101.0, 102.9):
        failure = connect_refused(refused, proxy, Redactor(), api, tunnels, now)
        assert (failure.kind, failure.final) == ("connection", False)
    last = connect_refused(refused, proxy, Redactor(), api, tunnels, 100.0 + TUNNEL_STOP_SPAN)
    assert (last.kind, last.final) == ("proxy", True)
    assert last.message == (
        "the proxy http://127.0.0.1:3128 (from --proxy) could not connect to api.sendkit.ai:443 "
        "(503 Service Unavailable), 7 times in 3s and no request through it yet; check "
        "--base-url (or that the proxy may reach api.sendkit.ai)"
    )
    spread = Tunnels()
    for now in (0.0, 60.0):  # too few to tell, however far apart
        assert not connect_refused(refused, proxy, Redactor(), api, spread, now).final


def test_once_a_request_went_through_the_proxy_a_tunnel_it_cannot_open_is_retried() -> None:
    """Mid-job, the API (or the proxy's way to it) may be down for a while: no stop for that
    but the usual one, after `--streak-limit` failures."""
    api = URL("https://api.sendkit.ai")
    proxy = proxy_for(str(api), "http://127.0.0.1:3128")
    assert proxy is not None
    tunnels = Tunnels()
    tunnels.through = True
    refused = connect_answer(502, "Bad Gateway")
    for second in range(TUNNEL_FAILURES_AT_START * 3):
        failure = connect_refused(refused, proxy, Redactor(), api, tunnels, float(second))
        assert (failure.kind, failure.final) == ("connection", False)
    assert failure.message == (
        "the proxy http://127.0.0.1:3128 (from --proxy) could not connect to api.sendkit.ai:443 "
        "(502 Bad Gateway)"
    )


def test_timeouts_say_whether_the_proxy_or_the_server_was_waited_for() -> None:
    api = URL("https://api.sendkit.ai")
    proxy = proxy_for(str(api), "http://127.0.0.1:3128")
    connecting = transport_error(aiohttp.ConnectionTimeoutError("late"), proxy, Redactor(), api)
    direct = transport_error(aiohttp.ConnectionTimeoutError("late"), None, Redactor(), api)
    answer = transport_error(TimeoutError(), proxy, Redactor(), api)
    assert connecting.message == (
        "no connection to the proxy http://127.0.0.1:3128 (from --proxy) within the timeout"
    )
    assert direct.message == "no connection to the server within the timeout"
    assert answer.message == "no answer within the timeout"
    assert {e.kind for e in (connecting, direct, answer)} == {"timeout"}
    assert {e.error_code for e in (connecting, direct, answer)} == {"TIMEOUT"}


@pytest.mark.parametrize("case", ["none", "bypassed", "used", "all", "setting off"])
async def test_the_start_of_a_job_says_which_proxy_and_why(
    env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    variable = "ALL_PROXY" if case == "all" else "HTTP_PROXY"
    if case != "none":
        env.setenv(variable, f"http://ann:{PASSWORD}@127.0.0.1:3128")
    if case == "bypassed":
        env.setenv("no_proxy", "127.0.0.1")
    with caplog.at_level(logging.INFO, logger="bulk_updater"):
        async with client("http://127.0.0.1:8080", "" if case == "setting off" else None):
            pass
    said = {
        "none": "sending directly: no proxy is set",
        "bypassed": "sending directly, not through a proxy: no_proxy names the host",
        "used": "sending through the proxy http://127.0.0.1:3128 (from HTTP_PROXY)",
        "all": "sending through the proxy http://127.0.0.1:3128 (from ALL_PROXY)",
        "setting off": "sending directly: the proxy setting is empty",
    }
    assert caplog.messages == [said[case]]


# --- the command


def test_a_job_through_a_proxy_that_is_down_stops_with_one_line(tmp_path: Path) -> None:
    leads = make_leads(3)
    source, _ = job_input(tmp_path, leads)
    dead = f"http://ann:{PASSWORD}@127.0.0.1:{free_port()}"
    environment = clean_env(SENDKIT_API_KEY=KEY, HTTPS_PROXY=dead, NO_PROXY="", no_proxy="")
    code, out, err = cli(
        source, "--base-url", "https://api.sendkit.ai", env=environment, cwd=tmp_path
    )
    assert code == 3, out + err
    (stopped,) = [line for line in out.splitlines() if line.lstrip().startswith("stopped:")]
    assert "stopped: the proxy http://127.0.0.1:" in stopped
    assert "(from HTTPS_PROXY) cannot be reached" in stopped
    assert "--base-url" not in out + err
    assert not leaks(PASSWORD, out, err, tmp_path)
    rows = read_run_report(tmp_path / "updates.csv.report.csv")
    assert {row["status"] for row in rows} == {"aborted"}


def test_verbose_says_which_proxy_is_used_without_its_password(tmp_path: Path) -> None:
    leads = make_leads(2)
    source, _ = job_input(tmp_path, leads)
    with SandboxThread(leads, api_key=KEY) as sb, TinyProxy(tmp_path) as proxy:
        via = f"http://ann:{PASSWORD}@127.0.0.1:{proxy.port}"
        code, out, err = cli(
            source, "--base-url", sb.url, "--proxy", via, "-v", env=clean_env(SENDKIT_API_KEY=KEY),
            cwd=tmp_path,
        )  # fmt: skip
        assert code == 0, out + err
        assert f"sending through the proxy http://127.0.0.1:{proxy.port} (from --proxy)" in err
        assert not leaks(PASSWORD, out, err, tmp_path, skip=[*tmp_path.glob("tinyproxy-*")])
        assert len(proxy.requests) == 2  # the sandbox's loopback URL too: --proxy is not bypassed


def test_an_unknown_host_stops_the_job_in_seconds_naming_it(tmp_path: Path) -> None:
    leads = make_leads(3)
    source, _ = job_input(tmp_path, leads)
    code, out, err = cli(
        source, "--base-url", "https://api.sendkit-typo.invalid", cwd=tmp_path, timeout=20
    )
    assert code == 3, out + err
    assert "stopped: the host api.sendkit-typo.invalid is not known" in out
    assert "check --base-url" in out
    first = read_run_report(tmp_path / "updates.csv.report.csv")[0]
    assert first["message"].startswith("the host api.sendkit-typo.invalid is not known")
    assert first["message"].count("check --base-url") == 1  # the stop is said once


def test_an_unknown_host_through_a_proxy_stops_the_job_in_seconds_naming_it(tmp_path: Path) -> None:
    """The proxy resolves the API's name: it answers `CONNECT` 500 to a name that does not."""
    leads = make_leads(30)
    source, _ = job_input(tmp_path, leads)
    with TinyProxy(tmp_path) as proxy:
        environment = clean_env(SENDKIT_API_KEY=KEY, HTTPS_PROXY=proxy.url, NO_PROXY="")
        code, out, err = cli(
            source, "--base-url", "https://api.sendkit-typo.invalid", "--concurrency", "1",
            env=environment, cwd=tmp_path, timeout=20,
        )  # fmt: skip
        tried = len(proxy.requests)
    assert code == 3, out + err
    (stopped,) = [line for line in out.splitlines() if line.lstrip().startswith("stopped:")]
    assert f"the proxy {proxy.url} (from HTTPS_PROXY) could not connect to " in stopped
    assert "api.sendkit-typo.invalid:443 (5" in stopped
    assert "check --base-url" in stopped
    assert "looks down" not in stopped
    assert tried >= TUNNEL_FAILURES_AT_START  # over `TUNNEL_STOP_SPAN` seconds of retries


def test_an_http_api_through_a_proxy_elsewhere_is_exit_2(tmp_path: Path) -> None:
    source, _ = job_input(tmp_path, make_leads(1))
    remote = f"http://ann:{PASSWORD}@proxy.corp.invalid:3128"
    environment = clean_env(SENDKIT_API_KEY=KEY, HTTP_PROXY=remote, NO_PROXY="", no_proxy="")
    code, out, err = cli(
        source, "--base-url", "http://127.0.0.1:8080", env=environment, cwd=tmp_path
    )
    assert code == 2, out + err
    (line,) = err.strip().splitlines()
    assert line.startswith(
        "bulk-updater: error: an http:// base URL is not sent through the proxy "
        "http://proxy.corp.invalid:3128 "
        "(from HTTP_PROXY)"
    )
    assert "add 127.0.0.1 to NO_PROXY" in line
    assert not leaks(PASSWORD, out, err, tmp_path)


def test_a_proxy_variable_that_is_no_proxy_url_is_exit_2_without_its_value(tmp_path: Path) -> None:
    source, _ = job_input(tmp_path, make_leads(1))
    socks = f"socks5://ann:{PASSWORD}@127.0.0.1:1080"
    environment = clean_env(SENDKIT_API_KEY=KEY, HTTPS_PROXY=socks, NO_PROXY="", no_proxy="")
    code, out, err = cli(source, env=environment, cwd=tmp_path)
    assert code == 2, out + err
    assert "error: HTTPS_PROXY: a socks5:// proxy is not supported" in err
    assert not leaks(PASSWORD, out, err, tmp_path)

"""Proxies: which one a job uses and where it came from (`bulk_updater/proxy.py`), and jobs through
a real one, a tinyproxy of the test's own (`tests/proxy_server.py`): an `http://` API through
`HTTP_PROXY`, an `https://` one through `CONNECT` (trustme's authority), `NO_PROXY` around it, a
proxy that is down or does not resolve, and one that answers 407. The command's side: exit 3 with
one line naming the proxy, `-v` saying which is used, and its password nowhere."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

import aiohttp
import pytest

from bulk_updater import LeadUpdate, SendKitClient, TransportError
from bulk_updater.answers import Redactor
from bulk_updater.errors import ConfigError
from bulk_updater.failures import transport_error
from bulk_updater.proxy import no_proxy_names, proxy_for
from bulk_updater.sandbox import SandboxThread
from bulk_updater.settings import Settings
from tests.cli.conftest import KEY, clean_env, cli, job_input, leaks, read_run_report
from tests.conftest import make_leads
from tests.http_server import Answers
from tests.proxy_server import TinyProxy, free_port, no_proxy_variables, trusted_tls

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


# --- which proxy, from where


def test_the_variable_of_the_scheme_applies_lowercase_first() -> None:
    environ = {"HTTPS_PROXY": "http://upper:3128", "https_proxy": "http://lower:3128",
               "HTTP_PROXY": "http://plain:3128"}  # fmt: skip
    secure = proxy_for("https://api.sendkit.ai", None, environ)
    plain = proxy_for("http://127.0.0.1:8080", None, environ)
    assert secure is not None
    assert (secure.shown, secure.source) == ("http://lower:3128", "https_proxy")
    assert plain is not None
    assert (plain.shown, plain.source) == ("http://plain:3128", "HTTP_PROXY")


def test_no_proxy_names_the_hosts_reached_directly_loopback_included() -> None:
    environ = {"HTTP_PROXY": "http://proxy:3128", "HTTPS_PROXY": "http://proxy:3128"}
    assert proxy_for("http://127.0.0.1:8080", None, environ) is not None  # no exception for it
    bypass = {**environ, "NO_PROXY": "localhost, .sendkit.ai,127.0.0.1"}
    assert proxy_for("http://127.0.0.1:8080", None, bypass) is None
    assert proxy_for("https://api.sendkit.ai", None, bypass) is None
    assert proxy_for("https://api.other.ai", None, bypass) is not None
    assert proxy_for("https://api.other.ai", None, {**environ, "no_proxy": "*"}) is None


#: (host, NO_PROXY, whether curl 7.88 goes around the proxy), each tried with curl itself.
CURL_NO_PROXY = [
    ("127.0.0.1", "127.0.0.1", True),
    ("127.0.0.1", "localhost,127.0.0.0/8,::1", True),  # a network, as companies write it
    ("127.0.0.1", "127.0.0.1/32", True),
    ("127.0.0.1", "localhost 127.0.0.1", True),  # white space separates, as commas do
    ("127.0.0.1", " 127.0.0.1 ", True),
    ("127.0.0.1", "*", True),
    ("127.0.0.1", "example.com,*", False),  # `*` counts alone only
    ("127.0.0.1", "0.0.1", False),  # an address is no domain: no suffix of it matches
    ("127.0.0.1", ".0.0.1", False),
    ("127.0.0.1", "127.0.0.01", False),
    ("127.0.0.1", "[127.0.0.1]", False),
    ("127.0.0.1", "127.0.0.1:18765", False),  # an entry with a port names nothing
    ("::1", "::1", True),
    ("::1", "::1,example.com", True),
    ("::1", "::1/128", True),  # documented since curl 7.86 (7.88 still missed it)
    ("::1", "::0:1", False),  # addresses compare as written
    ("::1", "[::1]", False),
    ("::1", "1", False),
    ("::1", ":1", False),
    ("localhost", "localhost", True),
    ("localhost", ".localhost", True),
    ("localhost", "LOCALHOST", True),
    ("localhost", "localhost.", True),
    ("localhost.", "localhost", True),
    ("localhost", "calhost", False),
    ("localhost", "localhost:18931", False),
    ("api.sendkit.ai", "sendkit.ai", True),
    ("api.sendkit.ai", ".sendkit.ai", True),
    ("api.sendkit.ai", "ai", True),
    ("api.sendkit.ai", "API.SendKit.AI", True),
    ("api.sendkit.ai", "x.com\tsendkit.ai", True),
    ("api.sendkit.ai", ",,sendkit.ai,,", True),
    ("api.sendkit.ai", "kit.ai", False),  # a suffix on a label's boundary only
    ("api.sendkit.ai", "*.sendkit.ai", False),
    ("api.sendkit.ai", "127.0.0.1", False),
    ("sendkit.ai", ".sendkit.ai", True),
]


@pytest.mark.parametrize(("host", "no_proxy", "around"), CURL_NO_PROXY)
def test_no_proxy_is_read_as_curl_reads_it(host: str, no_proxy: str, around: bool) -> None:
    assert no_proxy_names(host, no_proxy) is around
    base = f"http://{'[' + host + ']' if ':' in host else host}:8080"
    environ = {"HTTP_PROXY": "http://proxy:3128", "NO_PROXY": no_proxy}
    assert (proxy_for(base, None, environ) is None) is around


def test_the_setting_overrides_the_environment_and_no_proxy() -> None:
    environ = {"HTTPS_PROXY": "http://env:3128", "NO_PROXY": "api.sendkit.ai"}
    chosen = proxy_for("https://api.sendkit.ai", "http://ann:pw@mine:8080", environ)
    assert chosen is not None
    assert (chosen.shown, chosen.source, chosen.with_login) == ("http://mine:8080", "--proxy", True)
    assert str(chosen) == "the proxy http://mine:8080 (from --proxy)"
    assert chosen.url.password == "pw"  # kept for aiohttp, never shown
    bare = proxy_for("https://api.sendkit.ai", None, {"HTTPS_PROXY": "proxy.corp:3128"})
    assert bare is not None
    assert bare.shown == "http://proxy.corp:3128"  # host:port, as curl reads it


def test_a_proxy_that_cannot_be_used_is_refused_without_repeating_it() -> None:
    with pytest.raises(ConfigError) as setting:
        Settings.build(proxy=f"https://ann:{PASSWORD}@proxy:3128", names={"proxy": "--proxy"})
    assert str(setting.value).startswith("--proxy: a https:// proxy is not supported")
    with pytest.raises(ConfigError) as path:
        Settings.build(proxy=f"http://ann:{PASSWORD}@proxy:3128/path")
    with pytest.raises(ValueError, match=r"^HTTPS_PROXY: a socks5:// proxy is not supported"):
        proxy_for("https://x.ai", None, {"HTTPS_PROXY": f"socks5://ann:{PASSWORD}@p:1080"})
    assert PASSWORD not in str(setting.value) + str(path.value)
    assert "BULK_UPDATER_PROXY" in repr(Settings.model_fields["proxy"].json_schema_extra)
    assert PASSWORD not in repr(Settings.build(proxy=f"http://ann:{PASSWORD}@p:1"))


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


@pytest.mark.parametrize(("scheme", "login"), [("http", None), ("https", None), ("https", "wrong")])
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
    when it cannot reach the API (nothing listens there)."""
    with TinyProxy(tmp_path, connect_ports=(443,)) as strict, TinyProxy(tmp_path) as plain:
        async with Answers(tls=authority) as server:
            env.setenv("HTTPS_PROXY", strict.url)
            async with client(server.url) as c:
                with pytest.raises(TransportError) as forbidden:
                    await c.send(UPDATE)
        env.setenv("HTTPS_PROXY", plain.url)
        async with client(f"https://localhost:{free_port()}") as c:
            with pytest.raises(TransportError) as unreachable:
                await c.send(UPDATE)
    assert (forbidden.value.kind, forbidden.value.final) == ("proxy", True)
    assert forbidden.value.message.startswith(
        f"the proxy {strict.url} (from HTTPS_PROXY) refused a tunnel to the API (403 "
    )
    assert forbidden.value.message.endswith("; check HTTPS_PROXY")
    assert (unreachable.value.kind, unreachable.value.final) == ("connection", False)
    assert unreachable.value.message.startswith(
        f"the proxy {plain.url} (from HTTPS_PROXY) opened no tunnel to the API (5"
    )


def test_timeouts_say_whether_the_proxy_or_the_server_was_waited_for() -> None:
    proxy = proxy_for("https://api.sendkit.ai", "http://127.0.0.1:3128")
    connecting = transport_error(aiohttp.ConnectionTimeoutError("late"), proxy, Redactor())
    direct = transport_error(aiohttp.ConnectionTimeoutError("late"), None, Redactor())
    answer = transport_error(TimeoutError(), proxy, Redactor())
    assert connecting.message == (
        "no connection to the proxy http://127.0.0.1:3128 (from --proxy) within the timeout"
    )
    assert direct.message == "no connection to the server within the timeout"
    assert answer.message == "no answer within the timeout"
    assert {e.kind for e in (connecting, direct, answer)} == {"timeout"}
    assert {e.error_code for e in (connecting, direct, answer)} == {"TIMEOUT"}


@pytest.mark.parametrize("case", ["none", "bypassed", "used"])
async def test_the_start_of_a_job_says_which_proxy_and_why(
    env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    if case != "none":
        env.setenv("HTTP_PROXY", f"http://ann:{PASSWORD}@127.0.0.1:3128")
    if case == "bypassed":
        env.setenv("no_proxy", "127.0.0.1")
    with caplog.at_level(logging.INFO, logger="bulk_updater"):
        async with client("http://127.0.0.1:8080"):
            pass
    said = {
        "none": "sending directly: no proxy is set",
        "bypassed": "sending directly, not through a proxy: no_proxy names the host",
        "used": "sending through the proxy http://127.0.0.1:3128 (from HTTP_PROXY)",
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


def test_a_proxy_variable_that_is_no_proxy_url_is_exit_2_without_its_value(tmp_path: Path) -> None:
    source, _ = job_input(tmp_path, make_leads(1))
    socks = f"socks5://ann:{PASSWORD}@127.0.0.1:1080"
    environment = clean_env(SENDKIT_API_KEY=KEY, HTTPS_PROXY=socks, NO_PROXY="", no_proxy="")
    code, out, err = cli(source, env=environment, cwd=tmp_path)
    assert code == 2, out + err
    assert "error: HTTPS_PROXY: a socks5:// proxy is not supported" in err
    assert not leaks(PASSWORD, out, err, tmp_path)

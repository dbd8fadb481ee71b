"""Which proxy a job uses and where it came from (`bulk_updater/proxy.py`): the variable of the
scheme, `NO_PROXY` as curl reads it, the `proxy` setting and its variable, an `http://` API never
through a proxy elsewhere, and a proxy URL that cannot be used refused without repeating it."""

from __future__ import annotations

import pytest
from yarl import URL

from bulk_updater import SendKitClient
from bulk_updater.errors import ConfigError
from bulk_updater.proxy import bypassed_by, clear_text_problem, no_proxy_names, proxy_for
from bulk_updater.settings import Settings

PASSWORD = "pr0xy_s3cret_pw"


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
    assert (chosen.url.user, chosen.password) == (None, "pw")  # the login apart, never shown
    bare = proxy_for("https://api.sendkit.ai", None, {"HTTPS_PROXY": "proxy.corp:3128"})
    assert bare is not None
    assert bare.shown == "http://proxy.corp:3128"  # host:port, as curl reads it


def test_the_setting_from_its_variable_is_named_by_it() -> None:
    environ = {"BULK_UPDATER_PROXY": "http://mine:8080"}
    given = proxy_for("https://api.sendkit.ai", "http://mine:8080", environ)
    flag = proxy_for("https://api.sendkit.ai", "http://other:8080", environ)
    assert given is not None
    assert str(given) == "the proxy http://mine:8080 (from BULK_UPDATER_PROXY)"
    assert flag is not None
    assert flag.source == "--proxy"


@pytest.mark.parametrize(
    ("base", "proxy", "refused"),
    [("http://127.0.0.1:8080", "http://proxy.corp:3128", True),
     ("http://[::1]:8080", "http://10.0.0.7:3128", True),
     ("http://127.0.0.1:8080", "http://127.0.0.1:3128", False),
     ("http://localhost:8080", "http://localhost:3128", False),
     ("https://api.sendkit.ai", "http://proxy.corp:3128", False)],
)  # fmt: skip
def test_an_http_api_never_goes_through_a_proxy_elsewhere(
    base: str, proxy: str, refused: bool
) -> None:
    """The key would cross the network in clear text (an `http://` base is loopback only)."""
    chosen = proxy_for(base, None, {"HTTP_PROXY": proxy, "HTTPS_PROXY": proxy})
    assert chosen is not None
    problem = clear_text_problem(base, chosen)
    assert bool(problem) is refused
    host = URL(base).host
    if refused:
        assert problem == (
            f"an http:// base URL is not sent through the proxy {proxy} (from HTTP_PROXY): the "
            f"key would cross the network in clear text; add {host} to NO_PROXY (or give a "
            "proxy on this machine with --proxy)"
        )
    setting = proxy_for(base, proxy, {})
    assert setting is not None
    if refused:
        assert clear_text_problem(base, setting).endswith(
            "; give a proxy on this machine in --proxy, or none"
        )


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


def test_all_proxy_applies_as_curl_reads_it_after_the_variable_of_the_scheme() -> None:
    """curl reads `ALL_PROXY` (either spelling) when the scheme's variable is not set, and
    `NO_PROXY` goes around it too."""
    for name in ("ALL_PROXY", "all_proxy"):
        chosen = proxy_for("https://api.sendkit.ai", None, {name: "http://all:3128"})
        assert chosen is not None
        assert (chosen.shown, chosen.source) == ("http://all:3128", name)
    both = {"ALL_PROXY": "http://all:3128", "HTTPS_PROXY": "http://own:3128"}
    chosen = proxy_for("https://api.sendkit.ai", None, both)
    assert chosen is not None
    assert chosen.source == "HTTPS_PROXY"
    around = {"ALL_PROXY": "http://all:3128", "NO_PROXY": "sendkit.ai"}
    assert proxy_for("https://api.sendkit.ai", None, around) is None
    assert bypassed_by("https://api.sendkit.ai", around) == "NO_PROXY"


def test_an_empty_setting_means_no_proxy_as_curls_empty_proxy() -> None:
    environ = {"HTTPS_PROXY": "http://env:3128", "ALL_PROXY": "http://all:3128"}
    assert proxy_for("https://api.sendkit.ai", "", environ) is None
    assert Settings.build(proxy="").proxy == ""


def test_the_setting_is_checked_as_a_variable_is_a_library_client_included() -> None:
    """`SendKitClient(proxy=...)` is public: a SOCKS proxy is refused, never spoken HTTP to."""
    with pytest.raises(ValueError, match=r"^--proxy: a socks5:// proxy is not supported"):
        proxy_for("https://x.ai", f"socks5://ann:{PASSWORD}@127.0.0.1:1080", {})


async def test_a_library_client_refuses_a_proxy_it_cannot_use() -> None:
    client = SendKitClient(
        api_key="sk_x", base_url="https://x.ai", timeout=5, concurrency=1,
        proxy=f"socks5://ann:{PASSWORD}@127.0.0.1:1080",
    )  # fmt: skip
    with pytest.raises(ConfigError) as info:
        async with client:
            pass
    assert "socks5:// proxy is not supported" in str(info.value)
    assert PASSWORD not in str(info.value)


@pytest.mark.parametrize("value", ['"http://u:pw@proxy:3128"', "'http://proxy:3128'"])
def test_a_value_in_quotes_is_said_to_be_in_quotes(value: str) -> None:
    """Quotes come with values copied from `.env` files; yarl reads `"http` as no scheme."""
    with pytest.raises(ValueError, match=r"^HTTPS_PROXY: is not a URL \(it is in quotes: remove"):
        proxy_for("https://x.ai", None, {"HTTPS_PROXY": value})

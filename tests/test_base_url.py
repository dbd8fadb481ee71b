"""The base URL (`base_url.py`): an http(s) origin, plain http only to loopback, shown safely."""

from __future__ import annotations

import re

import pytest

from bulk_updater import ConfigError
from bulk_updater.base_url import origin
from bulk_updater.proxy import is_loopback
from bulk_updater.settings import Settings


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://api.sendkit.ai", "https://api.sendkit.ai"),
        ("https://api.sendkit.ai/", "https://api.sendkit.ai"),
        ("http://127.0.0.1:8765", "http://127.0.0.1:8765"),
        ("http://localhost:1", "http://localhost:1"),
        ("http://[::1]:8080", "http://[::1]:8080"),
    ],
)
def test_accepted_base_urls(url: str, expected: str) -> None:
    assert origin(url) == expected
    assert Settings.build(base_url=url).base_url == expected


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://api.sendkit.ai", "plain http"),
        ("http://10.0.0.1", "plain http"),
        ("https://api.sendkit.ai/v2", "no path"),
        ("https://api.sendkit.ai/?x=1", "no path"),
        ("https://user:pw@api.sendkit.ai", "no path"),
        ("ftp://api.sendkit.ai", "not an http(s) URL"),
        ("api.sendkit.ai", "not an http(s) URL"),
    ],
)
def test_refused_base_urls(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        origin(url)
    with pytest.raises(ConfigError, match=re.escape(problem)):
        Settings.build(base_url=url)


def test_a_refused_url_is_shown_without_its_password_or_path() -> None:
    with pytest.raises(ValueError, match="no path") as refused:
        origin("https://user:hunter2@api.sendkit.ai/v2?token=t0ps3cret")
    assert "hunter2" not in str(refused.value)
    assert "t0ps3cret" not in str(refused.value)
    assert "api.sendkit.ai" in str(refused.value)


def test_a_key_pasted_into_the_url_is_hidden() -> None:
    key = "sk_live_abcdef123456"
    with pytest.raises(ValueError, match="plain http") as refused:
        origin(f"http://{key}.example.com", key)
    assert key not in str(refused.value)
    with pytest.raises(ConfigError, match="plain http") as configured:
        Settings.build(api_key=key, base_url=f"http://{key}.example.com")
    assert key not in str(configured.value)
    assert "***" in str(configured.value)


def test_loopback_detection() -> None:
    assert is_loopback("127.0.0.2")
    assert is_loopback("::1")
    assert not is_loopback("example.com")
    assert not is_loopback(None)

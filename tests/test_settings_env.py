"""The library reads SENDKIT_API_KEY, SENDKIT_BASE_URL and SENDKIT_WORKSPACE_ID when an argument
is not given, as API SDKs do; an explicit argument wins. `settings=` and keywords combine."""

from __future__ import annotations

from typing import get_type_hints

import pytest

from bulk_updater import BulkUpdater, ConfigError
from bulk_updater.setting_keywords import Options
from bulk_updater.settings import Settings


@pytest.fixture(autouse=True)
def _no_sendkit_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SENDKIT_API_KEY", "SENDKIT_BASE_URL", "SENDKIT_WORKSPACE_ID"):
        monkeypatch.delenv(name, raising=False)


def test_the_key_and_the_rest_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENDKIT_API_KEY", "sk_from_env")
    monkeypatch.setenv("SENDKIT_BASE_URL", "http://127.0.0.1:9999")
    monkeypatch.setenv("SENDKIT_WORKSPACE_ID", "ws_env")
    settings = BulkUpdater().settings
    assert settings.api_key is not None
    assert settings.api_key.get_secret_value() == "sk_from_env"
    assert settings.base_url == "http://127.0.0.1:9999"
    assert settings.workspace_id == "ws_env"


def test_an_explicit_argument_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENDKIT_API_KEY", "sk_from_env")
    monkeypatch.setenv("SENDKIT_BASE_URL", "http://127.0.0.1:9999")
    updater = BulkUpdater(api_key="sk_given", base_url="https://api.sendkit.ai")
    assert updater.settings.api_key is not None
    assert updater.settings.api_key.get_secret_value() == "sk_given"
    assert updater.settings.base_url == "https://api.sendkit.ai"


def test_no_key_anywhere_says_how_to_give_one() -> None:
    with pytest.raises(ConfigError, match="SENDKIT_API_KEY"):
        BulkUpdater()


def test_a_bad_url_in_the_environment_is_named() -> None:
    with pytest.raises(ConfigError, match="base_url"):
        Settings.build(environ={"SENDKIT_BASE_URL": "http://example.com"})


def test_settings_and_keywords_combine() -> None:
    base = Settings.build(api_key="sk_a", rate=5, concurrency=3)
    updater = BulkUpdater(settings=base, concurrency=12)
    assert (updater.settings.rate, updater.settings.concurrency) == (5, 12)
    assert updater.settings.api_key is not None


def test_every_setting_is_a_keyword_of_bulk_updater() -> None:
    """`Options` types the keywords; it must name exactly the fields of `Settings`."""
    assert set(get_type_hints(Options)) == set(Settings.model_fields)


def test_every_setting_has_a_description() -> None:
    for name, field in Settings.model_fields.items():
        assert field.description, name

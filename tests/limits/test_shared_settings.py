"""The shared budget's settings, without a Redis: `limiter_for()` choosing `RedisLimiter` for
the account, the `[redis]` extra missing, the rate it needs, the Redis URL checked, taken from
the environment and shown without its password."""

from __future__ import annotations

import sys

import pytest

from bulk_updater import ConfigError
from bulk_updater.account import account_name
from bulk_updater.limits import AdaptiveLimiter, limiter_for
from bulk_updater.limits.adaptive import START_RATE
from bulk_updater.limits.shared import RedisLimiter
from bulk_updater.settings import Settings
from bulk_updater.urls import hide_password


def test_limiter_for_builds_the_shared_one_for_the_account() -> None:
    settings = Settings.build(
        api_key="sk_live_abc", workspace_id="ws1", rate=60, redis_url="redis://h:1/0"
    )
    chosen = limiter_for(settings)
    assert isinstance(chosen, AdaptiveLimiter)  # the rate adapts, on the shared schedule
    shared = chosen.pacer
    assert isinstance(shared, RedisLimiter)
    assert shared.account == account_name(settings.base_url, "ws1", "sk_live_abc")
    assert shared.rate == 60
    assert shared.clock == "redis"
    assert chosen.controller.measure is not None  # measured on the account


def test_rate_auto_on_a_shared_budget_starts_where_auto_does() -> None:
    settings = Settings.build(api_key="sk_live_abc", redis_url="redis://h:1/0")
    chosen = limiter_for(settings)
    assert isinstance(chosen, AdaptiveLimiter)
    assert isinstance(chosen.pacer, RedisLimiter)
    assert settings.rate == "auto"
    assert chosen.pacer.rate == START_RATE


def test_a_missing_redis_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)  # `import redis` now raises ImportError
    monkeypatch.setitem(sys.modules, "redis.asyncio", None)
    settings = Settings.build(api_key="k", redis_url="redis://localhost:6379/0")
    with pytest.raises(ConfigError, match=r"pip install 'bulk-updater\[redis\]'"):
        limiter_for(settings)


@pytest.mark.parametrize("rate", [0, -1])
def test_a_shared_budget_needs_a_rate(rate: float) -> None:
    with pytest.raises(ValueError, match="more than 0"):
        RedisLimiter("redis://h", rate=rate, account="a")


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("http://localhost:6379", "must be a Redis URL"),
        ("localhost:6379", "must be a Redis URL"),
        ("", "must be a Redis URL"),
        ("redis://h\n", "must be a Redis URL"),
    ],
)
def test_a_redis_url_is_checked_and_never_repeated(value: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem) as caught:
        Settings.build(names={"redis_url": "--redis"}, redis_url=value)
    assert str(caught.value).startswith("--redis: ")


def test_a_rate_of_zero_cannot_be_shared() -> None:
    with pytest.raises(ConfigError, match="cannot be shared"):
        Settings.build(rate=0, redis_url="redis://localhost:6379/0")


def test_the_redis_url_comes_from_the_environment_and_stays_out_of_repr() -> None:
    settings = Settings.build(environ={"BULK_UPDATER_REDIS_URL": "redis://:pw-xyz@h:1/0"})
    assert settings.redis_url == "redis://:pw-xyz@h:1/0"
    assert "pw-xyz" not in repr(settings)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:secret@h:6379/0", "redis://:***@h:6379/0"),
        ("redis://user:p@ss@h/1", "redis://user:***@h/1"),
        ("rediss://h:6380", "rediss://h:6380"),
        ("unix:///run/redis.sock?db=2&password=secret", "unix:///run/redis.sock?db=2&password=***"),
    ],
)
def test_passwords_are_hidden_wherever_a_url_is_shown(url: str, shown: str) -> None:
    assert hide_password(url) == shown

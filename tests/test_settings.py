"""`Settings` are checked at construction, with messages that say how to fix them.

`BulkUpdater`'s own construction checks are `tests/engine/test_updater.py`'s."""

from __future__ import annotations

import re

import pytest

from bulk_updater import ConfigError
from bulk_updater.settings import AUTO_CONCURRENCY_CAP, Settings


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"rate": -1}, "rate: must be 0 or more"),
        ({"rate": "fast"}, "rate: must be a number of requests per second, or auto"),
        ({"rate": True}, "rate: must be a number of requests per second, or auto"),
        ({"rate": [10]}, "rate: must be a number of requests per second, or auto"),
        ({"rate": 1e9}, "rate: must be 100000 or less, or auto"),
        ({"concurrency": 0}, "concurrency: must be 1 or more"),
        ({"max_attempts": 0}, "max_attempts: must be 1 or more"),
        ({"timeout": 0}, "timeout: must be more than 0"),
        ({"grace": -1}, "grace: must be 0 or more"),
        ({"limit": 0}, "limit: must be 1 or more"),
        ({"limit": 2.5}, "limit: must be a whole number"),
        ({"allow_not_found": "maybe"}, "allow_not_found: must be true or false"),
    ],
)
def test_out_of_range_values_name_the_setting(values: dict[str, object], named: str) -> None:
    """In Python a setting is named as Python spells it, in plain words (not pydantic's)."""
    with pytest.raises(ConfigError, match=re.escape(named)):
        Settings.build(**values)


def test_settings_are_frozen() -> None:
    settings = Settings.build()
    with pytest.raises(ValueError, match="frozen"):
        settings.rate = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("given", "rate", "ceiling"),
    [("auto", "auto", None), (" AUTO ", "auto", None), ("40", 40.0, 40.0), (0, 0.0, 0.0)],
)
def test_a_rate_is_a_number_or_auto(given: object, rate: object, ceiling: float | None) -> None:
    settings = Settings.build(rate=given)
    assert settings.rate == rate
    assert settings.ceiling == ceiling


def test_concurrency_unset_follows_latency_up_to_a_cap() -> None:
    assert Settings().concurrency is None
    assert Settings().in_flight_cap == AUTO_CONCURRENCY_CAP
    assert Settings.build(concurrency=12).in_flight_cap == 12

"""The settings of a job, checked once at construction with messages that say how to fix them."""

from __future__ import annotations

import ipaddress
import re
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from yarl import URL

from .errors import ConfigError

DEFAULT_BASE_URL: Final = "https://api.sendkit.ai"
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
_LOOPBACK_NAMES: Final = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Settings(BaseModel):
    """Frozen job settings; see `BulkUpdater` for what each one means."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    api_key: SecretStr | None = None  # never shown: repr and str print '**********'
    base_url: str = DEFAULT_BASE_URL
    rate: float = Field(default=10.0, ge=0, le=100_000)
    concurrency: int = Field(default=8, ge=1, le=1024)
    max_attempts: int = Field(default=5, ge=1, le=100)
    timeout: float = Field(default=30.0, gt=0, le=3600)
    workspace_id: str | None = None
    backoff_base: float = Field(default=0.5, ge=0, le=600)
    backoff_max: float = Field(default=30.0, ge=0, le=3600)
    max_pause: float = Field(default=120.0, ge=0, le=3600)
    streak_limit: int = Field(default=50, ge=1)
    grace: float = Field(default=5.0, ge=0, le=600)

    @field_validator("api_key", "workspace_id")
    @classmethod
    def _header_safe(cls, value: SecretStr | str | None) -> SecretStr | str | None:
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if text is not None and _CONTROL.search(text):
            raise ValueError(
                "holds a line break or control character, which an HTTP header cannot carry "
                "(a key file must hold the key alone, on one line)"
            )
        return value

    @field_validator("base_url")
    @classmethod
    def _safe_base_url(cls, value: str) -> str:
        url = URL(value)
        if url.scheme not in ("https", "http") or not url.host:
            raise ValueError(f"{value!r} is not an http(s) URL like https://api.sendkit.ai")
        if url.scheme == "http" and not is_loopback(url.host):
            raise ValueError(
                f"{value!r} is plain http: the key would cross the network in clear text; "
                "use https (plain http is allowed only for loopback)"
            )
        if url.path not in ("", "/") or url.query_string or url.fragment or url.user:
            raise ValueError(f"{value!r} must be just scheme, host and port, with no path")
        return str(url.origin())

    @classmethod
    def build(cls, **values: object) -> Settings:
        """Construct, turning pydantic's errors into one `ConfigError` line."""
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = []
            for error in exc.errors(include_url=False, include_input=False):
                name = ".".join(str(p) for p in error["loc"]) or "settings"
                msg = str(error["msg"]).removeprefix("Value error, ")
                problems.append(f"{name.replace('_', '-')}: {msg}")
            raise ConfigError("; ".join(problems)) from None

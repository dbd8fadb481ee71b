"""The settings of a job: each one defined once here, with its default, bounds, flag and meaning.

`Settings` is the one definition. The library (`BulkUpdater(**options)`), the command line (one
`--flag` per field that has one) and the README's option table all derive from it, and a test
checks that they agree. Values are checked once, at construction, and an error names the setting
the way the caller wrote it (`--rate: must be 0 or more` on the command line, `rate: ...` in
Python).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic.config import JsonDict

from .base_url import origin
from .errors import ConfigError
from .proxy import SETTING_VARIABLE, proxy_problem
from .setting_errors import explain

DEFAULT_BASE_URL: Final = "https://api.sendkit.ai"
#: Without `--concurrency`, requests in flight follow latency, up to this many.
AUTO_CONCURRENCY_CAP: Final = 64
#: The highest `--rate` accepted.
MAX_RATE: Final = 100_000
#: When this many rows sent in a row from the start are all `not_found`, the job stops.
NOT_FOUND_STOP: Final = 50
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
_REDIS_SCHEMES: Final = ("redis://", "rediss://", "unix://")

RedisClock = Literal["redis", "local"]


_SEPARATOR_NAMES: Final = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}


def tags_separator(value: str) -> str:
    """The character a `--tags-separator` value names (`;`, `comma`, `tab`), or `ValueError`."""
    separator = _SEPARATOR_NAMES.get(value.strip().lower(), value)
    if len(separator) != 1 or separator in '"[]\r\n' or separator.isalnum():
        raise ValueError("give one character that is not a letter, digit or quote, such as , or |")
    return separator


def _setting(
    default: Any,
    description: str,
    *,
    flag: str | None = "",
    env: str | None = None,
    metavar: str | None = None,
    **bounds: Any,
) -> Any:
    """A settings field; `flag` is its command-line option (`""`: from the name, None: none),
    `metavar` how its help shows the value (None: from its type)."""
    extra: JsonDict = {"flag": flag, "env": env, "metavar": metavar}
    return Field(default=default, description=description, json_schema_extra=extra, **bounds)


class Settings(BaseModel):
    """Frozen job settings. Read each field's description for what it means."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    api_key: SecretStr | None = _setting(
        None,
        "the SendKit key, sent as `X-Api-Key` and never shown",
        flag=None,
        env="SENDKIT_API_KEY",
    )
    base_url: str = _setting(
        DEFAULT_BASE_URL,
        "API origin; plain `http://` only for loopback",
        env="SENDKIT_BASE_URL",
    )
    workspace_id: str | None = _setting(
        None,
        "sends `X-Workspace-Id`, needed with platform keys (`sk_user_…`)",
        env="SENDKIT_WORKSPACE_ID",
    )
    rate: float | Literal["auto"] = _setting(
        "auto",
        "at most R request starts in any sliding second, retries included, and below that what "
        "the API accepts (429s, rate-limit headers); `auto` = find the API's limit, starting "
        "at 10/s; `0` = no limit",
        metavar="R|auto",
    )
    concurrency: int | None = _setting(
        None,
        "requests in flight at most, a hard cap; unset, what the rate needs at the latency "
        f"seen (rate * p90 latency * 1.5), from 8 up to {AUTO_CONCURRENCY_CAP}",
        ge=1,
        le=1024,
    )
    max_attempts: int = _setting(
        5, "attempts per row for transient failures; 429s do not count", ge=1, le=100
    )
    timeout: float = _setting(30.0, "seconds to wait for one answer", gt=0, le=3600)
    backoff_base: float = _setting(
        0.5, "seconds before the first retry (doubling, with jitter)", flag=None, ge=0, le=600
    )
    backoff_max: float = _setting(30.0, "the longest retry backoff", flag=None, ge=0, le=3600)
    max_pause: float = _setting(
        120.0, "the longest pause after a 429, whatever `Retry-After` says", ge=0, le=3600
    )
    streak_limit: int = _setting(
        50,
        "stop the job (exit 3) after N transient failures in a row: the API is down",
        flag="--stop-after-failures",
        ge=1,
    )
    give_up_after: float = _setting(
        600.0,
        "stop the job (exit 3) after this many seconds paused by 429s with no other answer",
        gt=0,
    )
    match: Literal["id", "email"] | None = _setting(
        None,
        "match rows to leads by `id` or by `email` (searched through the API); by default by "
        "id, or by email for rows that have an email and no id",
    )
    grace: float = _setting(
        5.0, "after a stop or signal, how long requests in flight may take to finish", ge=0, le=600
    )
    skip_unchanged: bool = _setting(
        False,
        "send only the rows that would change something this tool has not already set "
        "(see Sync mode)",
    )
    state: str | None = _setting(
        None,
        "the state file of `--skip-unchanged`; by default one per API account under "
        "`$XDG_STATE_HOME/bulk-updater/`",
        metavar="PATH",
    )

    redis_url: str | None = _setting(
        None,
        "share the rate budget, the 429 pauses and the learned rate with every job of the same "
        "account on this Redis (`redis://[:PASSWORD@]HOST[:PORT][/DB]`, `rediss://`, `unix://`)",
        flag="--redis",
        env="BULK_UPDATER_REDIS_URL",
        repr=False,  # it may hold a password
    )
    redis_clock: RedisClock = _setting(
        "redis",
        "the clock of the shared schedule: `redis` (the server's `TIME`, one clock for every "
        "host) or `local` (each host's, for a Redis that refuses `TIME` in scripts)",
    )

    proxy: str | None = _setting(
        None,
        "send through this HTTP proxy (`http://[USER:PASSWORD@]HOST:PORT`) instead of the one "
        "`HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY` name, whatever `NO_PROXY` says; empty "
        "(`''`) for none (see Proxies)",
        env=SETTING_VARIABLE,
        metavar="URL",
        repr=False,  # it may hold a password
    )

    limit: int | None = _setting(
        None,
        "send only the first N rows (to try a job); resuming the report later sends the rest",
        metavar="N",
        ge=1,
    )
    allow_not_found: bool = _setting(
        False,
        f"go on when the first {NOT_FOUND_STOP} rows sent are all `not_found` (without it the "
        "job stops, exit 3: ids that no lead of the account has were likely mapped wrongly)",
    )

    tags_separator: str = _setting(
        ";",
        "what separates the tags in a `tags` cell (`;` `,` `|` tab, or one character); a cell "
        "holding another of `,` `;` `|` is invalid rather than sent as one tag (library: "
        "`Source(tags_separator=...)`)",
        metavar="CHAR",
    )
    header_row: int | None = _setting(
        None,
        "the row (line) of a CSV or `.xlsx` that names the columns, below title rows; by "
        "default the first row with anything in it (library: `Source(header_row=...)`)",
        metavar="N",
        ge=1,
        le=1_000_000,
    )

    hidden_rows: Literal["skip", "send"] = _setting(
        "skip",
        "rows an `.xlsx` sheet hides (a filter left them out, or a person hid them): `skip` "
        "leaves them out, each `skipped`; `send` sends them like the others (library: "
        "`Source(hidden_rows=...)`)",
        env="BULK_UPDATER_HIDDEN_ROWS",
        metavar="skip|send",
    )

    @field_validator("tags_separator")
    @classmethod
    def _separator(cls, value: str) -> str:
        return tags_separator(value)

    @field_validator("state", mode="before")
    @classmethod
    def _path_text(cls, value: object) -> object:
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        if isinstance(value, str) and not value.strip():
            raise ValueError("is empty; give the path of a state file")
        return value

    @field_validator("rate", mode="plain")
    @classmethod
    def _rate(cls, value: object) -> float | Literal["auto"]:
        if isinstance(value, str) and value.strip().lower() == "auto":
            return "auto"
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError("must be a number of requests per second, or auto")
        try:
            rate = float(value)
        except ValueError:
            raise ValueError("must be a number of requests per second, or auto") from None
        if not rate >= 0:
            raise ValueError("must be 0 or more (0: no limit), or auto")
        if rate > MAX_RATE:
            raise ValueError(f"must be {MAX_RATE} or less, or auto")
        return rate

    @property
    def ceiling(self) -> float | None:
        """The rate given as a number (None for `auto`); 0 is no limit."""
        return None if self.rate == "auto" else float(self.rate)

    @property
    def in_flight_cap(self) -> int:
        """The most requests in flight: `concurrency`, or the cap of the automatic one."""
        return self.concurrency if self.concurrency is not None else AUTO_CONCURRENCY_CAP

    @field_validator("api_key", "workspace_id")
    @classmethod
    def _header_safe(cls, value: SecretStr | str | None) -> SecretStr | str | None:
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if text is not None and _CONTROL.search(text):
            raise ValueError(
                "holds a line break or control character, which an HTTP header cannot carry "
                "(a key file must hold the key alone, on one line)"
            )
        if text is not None and not text.isascii():
            raise ValueError(
                "holds a character that is not ASCII, which no key or id of the API has (was it "
                "copied whole, without curly quotes or a non-breaking space?)"
            )
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        # The URL is never repeated in a message: it may hold a password.
        if value is None:
            return None
        if not value.startswith(_REDIS_SCHEMES) or _CONTROL.search(value):
            raise ValueError("must be a Redis URL such as redis://localhost:6379/0")
        if info.data.get("rate") == 0:
            raise ValueError(
                "a rate of 0 (no limit) cannot be shared: give the account's rate as well"
            )
        return value

    @field_validator("proxy")
    @classmethod
    def _proxy(cls, value: str | None) -> str | None:
        # The URL is never repeated in a message: it may hold a password.
        if value is None or not value.strip():  # empty: no proxy, as curl's `--proxy ""`
            return value
        problem = proxy_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("base_url")
    @classmethod
    def _safe_base_url(cls, value: str, info: ValidationInfo) -> str:
        key = info.data.get("api_key")
        return origin(value, key.get_secret_value() if isinstance(key, SecretStr) else None)

    @classmethod
    def build(
        cls,
        base: Settings | None = None,
        *,
        names: Mapping[str, str] | None = None,
        environ: Mapping[str, str] | None = None,
        **values: object,
    ) -> Settings:
        """`base` (or the defaults) with `values` on top; unset fields with an `env` variable
        take it from `environ` (`os.environ`). Errors become one `ConfigError` line naming
        each setting as `names` spells it (for the command line: its flag)."""
        merged: dict[str, object] = dict(base) if base is not None else {}
        merged.update({k: v for k, v in values.items() if v is not None})
        env = os.environ if environ is None else environ
        for name, variable in ENV_VARIABLES.items():
            if merged.get(name) is None and env.get(variable, "").strip():
                merged[name] = env[variable].strip()
        try:
            return cls.model_validate(merged)
        except ValidationError as exc:
            spell = names or {}
            problems = [explain(error, spell) for error in exc.errors(include_url=False)]
            raise ConfigError("; ".join(problems)) from None


def _meta(name: str, key: str) -> Any:
    extra = Settings.model_fields[name].json_schema_extra
    return extra.get(key) if isinstance(extra, dict) else None


#: Setting name -> its command-line flag, for the fields that have one.
FLAGS: Final = {
    name: _meta(name, "flag") or "--" + name.replace("_", "-")
    for name in Settings.model_fields
    if _meta(name, "flag") is not None
}
#: Setting name -> the placeholder its flag's help shows for the value, where it is not the type.
METAVARS: Final = {
    name: _meta(name, "metavar") for name in Settings.model_fields if _meta(name, "metavar")
}
#: Setting name -> the environment variable read when it is not given.
ENV_VARIABLES: Final = {
    name: _meta(name, "env") for name in Settings.model_fields if _meta(name, "env")
}

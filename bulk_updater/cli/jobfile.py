"""Job files: every option of `bulk-updater run` kept in one TOML file, so that a recurring
export, the re-feed of its rejects and its cron line each take one flag (`--job FILE.toml`).

A job file's keys are the options of `run`, spelled as their flags without `--` (`rate`,
`ignore-unknown-columns`, `stop-after-failures`), so there is nothing new to learn and nothing
defined twice: each setting's flag comes from its field on `Settings`, the input and output
options from the command. `--map` is a table (`[map]`, `"Lead ID" = "id"`). An option given on
the command line wins over the file (a `--map` over the file's entry for that header, whatever
its case: of two entries for one header, the later wins).
`--save-job FILE.toml` writes the options given, read back from the command line and any
`--job`, never the key (it is no option) nor a password inside a URL.

Not saved, since they say what one invocation does rather than what the job is: `--dry-run` (a
saved dry run would never send) and `--limit` (a try on a few rows is not the job). A job file
may still hold them, as it may hold `resume = true` for a cron line.
"""

from __future__ import annotations

import difflib
import json
import os
import tempfile
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final, TypeVar

import click
from click.core import ParameterSource

from ..errors import ConfigError
from ..urls import hide_password

F = TypeVar("F", bound=Callable[..., Any])

#: Options that say what one run does, not what the job is: read from a job file, never saved.
ONE_RUN: Final = frozenset({"dry_run", "limit"})
#: Options about job files themselves: neither read from one nor saved.
_JOB_FILE: Final = frozenset({"job", "save_job"})
_MAP: Final = "column_map"  # `--map`, a table in the file
#: Options that exclude each other: one given on the command line sets the file's other aside.
_EITHER: Final = {"quiet": "verbose", "verbose": "quiet"}
_GIVEN: Final = (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT, ParameterSource.PROMPT)


def job_options(command: F) -> F:
    """`--job FILE.toml` and `--save-job FILE.toml`."""
    path = click.Path(dir_okay=False, path_type=Path)
    command = click.option(
        "--save-job",
        type=path,
        metavar="FILE.toml",
        help="Write the options given here (and from --job) to a job file, then run as asked "
        "(never the key, nor --dry-run and --limit).",
    )(command)
    return click.option(
        "--job",
        type=path,
        metavar="FILE.toml",
        help="Read options from a job file (keys: the flags without --); flags given here win.",
    )(command)


def _key(param: click.Parameter) -> str:
    """The key of an option in a job file: its long flag without `--` (`stop-after-failures`)."""
    flags = [opt for opt in param.opts if opt.startswith("--")]
    return (flags[0] if flags else param.opts[0]).lstrip("-")


def _options(ctx: click.Context) -> dict[str, click.Option]:
    """The options a job file may hold, by key."""
    return {
        _key(p): p
        for p in ctx.command.params
        if isinstance(p, click.Option) and p.name not in _JOB_FILE
    }


def read_job(ctx: click.Context, params: dict[str, Any]) -> set[str]:
    """Fill `params` from the `--job` file where the command line gave nothing, and return the
    names of the options given either way (what `--save-job` writes)."""
    given = {name for name in params if name and ctx.get_parameter_source(name) in _GIVEN}
    path: Path | None = params.get("job")
    if path is None:
        return given - _JOB_FILE
    options = _options(ctx)
    table = _load(path)
    if table.get("quiet") is True and table.get("verbose") is True:
        raise ConfigError(f"--job {path}: `quiet` and `verbose` cannot both be true; choose one")
    for key, value in table.items():
        param = options.get(key)
        if param is None or param.name is None:
            close = difflib.get_close_matches(key, list(options), n=1)
            hint = f" (did you mean `{close[0]}`?)" if close else ""
            raise ConfigError(
                f"--job {path}: `{key}` is not an option of run{hint}; a job file's keys are "
                "run's flags without -- (bulk-updater run --help lists them)"
            )
        name = param.name
        if name == _MAP:
            params[name] = _map_entries(path, value) + list(params[name] or ())
        elif name in given or _EITHER.get(name) in given:
            continue  # the command line wins
        else:
            params[name] = _cast(ctx, param, path, key, value)
        given.add(name)
    return given - _JOB_FILE


def _load(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as file:
            return tomllib.load(file)
    except FileNotFoundError:
        raise ConfigError(f"--job {path}: no such file; check the path") from None
    except OSError as exc:
        raise ConfigError(f"--job {path}: cannot be read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"--job {path}: not a valid TOML file ({exc})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"--job {path}: not UTF-8 text, as a TOML file must be") from None


def _map_entries(path: Path, value: object) -> list[str]:
    """`[map]` as `HEADER=FIELD` strings, as `--map` gives them (a list of those is read too)."""
    if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
        return [f"{header}={field}" for header, field in value.items()]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ConfigError(
        f'--job {path}: `map` must be a table of HEADER = FIELD lines under [map] ("Lead ID" = '
        '"id")'
    )


def _cast(ctx: click.Context, param: click.Option, path: Path, key: str, value: object) -> Any:
    """A value of the file as the option would have it from the command line."""
    if param.multiple:  # `keep = ["CRM Id", "Owner"]`, or one text
        values = value if isinstance(value, list) else [value]
        if not all(isinstance(v, str) for v in values):
            raise ConfigError(f'--job {path}: `{key}` must be a list of texts (["a", "b"])')
        return tuple(values)
    if param.is_flag:
        if not isinstance(value, bool):
            raise ConfigError(f"--job {path}: `{key}` must be true or false")
        return value or param.default  # false: as if not given, so the default applies
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ConfigError(f"--job {path}: `{key}` must be text or a number")
    try:
        return param.type_cast_value(ctx, value if isinstance(value, str) else str(value))
    except click.BadParameter as exc:
        raise ConfigError(f"--job {path}: `{key}`: {exc.message}") from None


def save_job(ctx: click.Context, params: Mapping[str, Any], given: set[str], path: Path) -> None:
    """Write the options `given` (and their values in `params`) to the job file `path`."""
    if path.suffix.lower() != ".toml":
        raise ConfigError(f"--save-job {path}: name the job file FILE.toml")
    lines: list[str] = []
    table: list[str] = []
    for key, param in _options(ctx).items():
        name = param.name
        if name is None or name not in given or name in ONE_RUN:
            continue
        value = params.get(name)
        if name == _MAP:  # one line per header, the last given winning as it does in the map
            table = [f"{_text(key, h)} = {_text(key, f)}" for h, f in _last_per_header(value)]
        elif value is not None:
            lines.append(f"{key} = {_value(key, value)}")
    if table:
        lines += ["", "[map]", *table]
    _write(path, "\n".join(lines) + "\n")


def _last_per_header(entries: list[str] | tuple[str, ...] | None) -> list[tuple[str, str]]:
    """`HEADER=FIELD` entries, one per header whatever its case: the later wins, as in the map."""
    last: dict[str, tuple[str, str]] = {}
    for entry in entries or ():
        header, _, field = entry.rpartition("=")
        last.pop(header.strip().casefold(), None)
        last[header.strip().casefold()] = (header, field)
    return list(last.values())


def _value(key: str, value: object) -> str:
    if isinstance(value, tuple | list):  # a repeatable option: a TOML array
        return "[" + ", ".join(_text(key, str(item)) for item in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return _text(key, os.fspath(value) if isinstance(value, os.PathLike) else str(value))


def _text(key: str, text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's; DEL must be escaped too)."""
    if hide_password(text) != text:  # a Redis or proxy URL with its password
        raise ConfigError(
            f"--save-job: --{key} holds a password, which a job file never keeps; give it "
            "through its environment variable instead (see --help), then save again"
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(f"--save-job: --{key} is not valid text") from None
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _write(path: Path, text: str) -> None:
    """Replace the job file in one step: a cron line never reads half of one."""
    folder = path.resolve().parent
    try:
        handle, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise ConfigError(f"--save-job {path}: cannot be written ({exc.strerror})") from None
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(tmp, path.resolve())
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ConfigError(f"--save-job {path}: cannot be written ({exc.strerror})") from None

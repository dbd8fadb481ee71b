"""The command line's view of `Settings`: one click option per setting, derived, never restated.

Each option's default is `None` (not given), so `Settings.build` applies the one default (or
the environment variable) defined on the field; the help text shows that default.
"""

from __future__ import annotations

import os
import stat
import types
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final, TypeVar, Union, get_args, get_origin

import click
from click.core import ParameterSource
from pydantic.fields import FieldInfo

from ..errors import ConfigError
from ..settings import ENV_VARIABLES, FLAGS, METAVARS, Settings
from ..urls import hide_password

F = TypeVar("F", bound=Callable[..., Any])

#: The most a key file may hold: a key is some 50 bytes, and the file is read only this far.
MAX_KEY_FILE: Final = 4096
#: How errors name each setting on the command line.
NAMES = {**FLAGS, "api_key": "the key (SENDKIT_API_KEY or --api-key-file)"}


def _click_type(field: FieldInfo) -> Any:
    annotation = field.annotation
    if get_origin(annotation) in (Union, types.UnionType):
        choices = [a for a in get_args(annotation) if a is not type(None)]
        if len(choices) > 1:  # a number or a word (`--rate auto`): `Settings` reads the text
            return str
        annotation = choices[0]
    if annotation is int or annotation is float:
        return annotation
    return str


def _shown(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value)


def settings_options(command: F) -> F:
    """Add one `--flag` per setting that has one, in the order `Settings` defines them."""
    for name, flag in reversed(list(FLAGS.items())):
        field = Settings.model_fields[name]
        description = str(field.description).replace("`", "")
        text = f"{description[0].upper()}{description[1:]}."
        if field.annotation is bool:  # a flag: given or not (None, so the default applies)
            command = click.option(flag, name, is_flag=True, default=None, help=text)(command)
            continue
        default = _shown(field.default)
        env = ENV_VARIABLES.get(name)
        extra = ", ".join(part for part in (f"default: {default}" if default else "", env) if part)
        command = click.option(
            flag,
            name,
            type=_click_type(field),
            metavar=METAVARS.get(name),
            default=None,
            help=text + (f"  [{extra}]" if extra else ""),
        )(command)
    return command


def input_options(command: F) -> F:
    """How to read the input: its format, what its columns mean, its delimiter, encoding, sheet."""
    options = [
        click.option(
            "--format",
            type=click.Choice(["csv", "jsonl", "xlsx"]),
            help="Input format  [default: from the file; needed for '-']",
        ),
        click.option(
            "--map",
            "column_map",
            multiple=True,
            metavar="HEADER=FIELD",
            help="Say what a column is: FIELD is id, email, a lead field, customFields.NAME "
            "(customFields.NAME:number, :integer, :boolean, :date or :text types its values), "
            "or - to drop it (repeatable).",
        ),
        click.option(
            "--keep",
            multiple=True,
            metavar="COLUMN",
            help="Copy an input column into the report, under its own header, to join the report "
            "back to the source (repeatable); one that means no field is not sent.",
        ),
        click.option(
            "--ignore-unknown-columns",
            is_flag=True,
            help="Leave out columns that mean no field, instead of refusing the file.",
        ),
        click.option(
            "--delimiter",
            help="CSV delimiter (; , tab |)  [default: found from the first lines]",
        ),
        click.option(
            "--encoding",
            help="Text encoding, e.g. cp1252  [default: UTF-8, or UTF-16/32 by their BOM]",
        ),
        click.option("--sheet", help="The sheet of an .xlsx to read  [default: the first]"),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def read_key(key_file: Path | None) -> str:
    """The key from `--api-key-file`, else `SENDKIT_API_KEY`."""
    if key_file is not None:
        return read_key_file(key_file)
    key = os.environ.get("SENDKIT_API_KEY", "").strip()
    if not key:
        raise ConfigError("no API key: set SENDKIT_API_KEY or pass --api-key-file FILE")
    return key


def read_key_file(path: Path) -> str:
    """The key a file holds, read at most `MAX_KEY_FILE` bytes (and one more to tell a longer
    file), so that `/dev/zero` or a log file given by mistake is refused at once.

    Only a regular file or a pipe (`<(pass show sendkit)`, `/dev/stdin`) is read.
    """
    try:
        data = _read_bounded(path)
        if len(data) > MAX_KEY_FILE:
            raise ConfigError(
                f"--api-key-file {path}: holds more than {MAX_KEY_FILE // 1024} KiB, so it is "
                "not a key file; give a file that holds the key alone"
            )
        key = data.decode("utf-8-sig").strip()  # "-sig": without the BOM Notepad writes
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--api-key-file {path}: cannot be read ({exc})") from None
    if not key:
        raise ConfigError(f"--api-key-file {path}: is empty")
    return key


def _read_bounded(path: Path) -> bytes:
    # Opened without blocking: a named pipe that no program writes to reads as empty at once.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        mode = os.fstat(fd).st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode)):
            raise ConfigError(
                f"--api-key-file {path}: is a directory or a device, not a file; give the file "
                "that holds the key"
            )
        os.set_blocking(fd, True)  # a pipe's writer may take its time to write the key
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_KEY_FILE and (chunk := os.read(fd, MAX_KEY_FILE + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def build_settings(values: dict[str, Any], key: str | None) -> Settings:
    """Settings from the options given (None: not given), errors naming the flags."""
    return Settings.build(names=NAMES, api_key=key, **values)


def dry_run_key(params: dict[str, Any], api_key_file: Path | None) -> str | None:
    """A dry run needs no key, unless `--skip-unchanged` must find the account's state file."""
    if not params.get("skip_unchanged") or params.get("state") is not None:
        return None
    try:
        return read_key(api_key_file)
    except ConfigError as exc:
        raise ConfigError(
            f"--dry-run --skip-unchanged reads the account's state file, named after the key: "
            f"{exc} (or pass --state PATH)"
        ) from None


#: The settings whose URL may hold a password, and where it stays out of `ps`.
_SECRET_URLS: Final = {"redis_url": "BULK_UPDATER_REDIS_URL", "proxy": "HTTPS_PROXY"}


def passwords_in_argv(ctx: click.Context, params: Mapping[str, Any]) -> str | None:
    """The warning for a URL given on the command line with its password: any local user reads
    a command line (`ps`, `/proc/PID/cmdline`) for as long as the run lasts."""
    given = [
        name
        for name in _SECRET_URLS
        if isinstance(url := params.get(name), str)
        and hide_password(url) != url
        and ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE
    ]
    if not given:
        return None
    flags = " and ".join(FLAGS[name] for name in given)
    holds = "holds a password" if len(given) == 1 else "hold passwords"
    instead = " / ".join(_SECRET_URLS[name] for name in given)
    return f"{flags} {holds}, visible to other users in ps; use {instead} instead"


#: The reading options that mean nothing for an input format, and how a message names it.
_NOT_FOR: Final = {
    "jsonl": ("JSON lines", ("delimiter", "header_row", "tags_separator", "sheet")),
    "csv": ("CSV", ("sheet",)),
    "xlsx": ("an .xlsx workbook", ("delimiter", "encoding")),
}


def unused_options(given: Mapping[str, Any], format: str) -> str | None:
    """The warning for reading options given that do not apply to the input's `format`."""
    what, names = _NOT_FOR.get(format, ("", ()))
    unused = ["--" + name.replace("_", "-") for name in names if given.get(name) is not None]
    if not unused:
        return None
    verb = "does" if len(unused) == 1 else "do"
    return f"{', '.join(unused)} {verb} not apply to {what}; ignored"

"""The command line's view of `Settings`: one click option per setting, derived, never restated.

Each option's default is `None` (not given), so `Settings.build` applies the one default (or
the environment variable) defined on the field; the help text shows that default.
"""

from __future__ import annotations

import os
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin

import click
from pydantic.fields import FieldInfo

from ..errors import ConfigError
from ..settings import ENV_VARIABLES, FLAGS, METAVARS, Settings

F = TypeVar("F", bound=Callable[..., Any])

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
            "--ignore-unknown-columns",
            is_flag=True,
            help="Leave out columns that mean no field, instead of refusing the file.",
        ),
        click.option(
            "--delimiter",
            help="CSV delimiter (; , tab |)  [default: found from the header line]",
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
        try:
            key = key_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"--api-key-file {key_file}: cannot be read ({exc})") from None
        if not key:
            raise ConfigError(f"--api-key-file {key_file}: is empty")
        return key
    key = os.environ.get("SENDKIT_API_KEY", "").strip()
    if not key:
        raise ConfigError("no API key: set SENDKIT_API_KEY or pass --api-key-file FILE")
    return key


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

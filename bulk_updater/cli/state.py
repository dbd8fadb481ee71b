"""`bulk-updater state info|forget`: look at or clear what `--skip-unchanged` remembers.

The state file is `--state PATH`, else the account's default file, named from the base URL, the
workspace id and a hash of the key (so without `--state` the key is read as `run` reads it).
`state info` with neither shows every state file of the user's state directory.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from ..errors import BulkUpdaterError, ConfigError, StateLockedError
from ..settings import ENV_VARIABLES
from ..state import StateFile, StateInfo, state_dir, state_files, state_path
from .job import log_warnings
from .options import build_settings, read_key
from .run import fail
from .summary import EXIT_LOCKED, EXIT_OK, EXIT_USAGE

F = TypeVar("F", bound=Callable[..., Any])


def _where(command: F) -> F:
    """The options that find the state file, on both commands."""
    for decorator in reversed(
        (
            click.option(
                "--state",
                type=click.Path(dir_okay=False, path_type=Path),
                help="The state file  [default: the account's, named from the key]",
            ),
            click.option("--base-url", help=f"API origin  [{ENV_VARIABLES['base_url']}]"),
            click.option(
                "--workspace-id",
                help=f"Workspace of a platform key  [{ENV_VARIABLES['workspace_id']}]",
            ),
            click.option(
                "--api-key-file",
                type=click.Path(dir_okay=False, path_type=Path),
                help="Read the key from this file instead of SENDKIT_API_KEY.",
            ),
        )
    ):
        command = decorator(command)
    return command


def _path(
    state: Path | None, base_url: str | None, workspace_id: str | None, key_file: Path | None
) -> Path:
    if state is not None:
        return state
    try:
        key = read_key(key_file)
    except ConfigError as exc:
        raise ConfigError(
            f"{exc} (it names the account's state file), or pass --state PATH"
        ) from None
    return state_path(build_settings({"base_url": base_url, "workspace_id": workspace_id}, key))


@click.group()
def state() -> None:
    """Look at or clear what --skip-unchanged remembers (the state file)."""
    log_warnings()


@state.command()
@_where
def info(
    state: Path | None, base_url: str | None, workspace_id: str | None, api_key_file: Path | None
) -> None:
    """Where the state file is, whose, how many leads it remembers, its size and the last run.

    Without --state or an account option: every state file of the user's state directory.
    """
    if (state, base_url, workspace_id, api_key_file) == (None, None, None, None):
        sys.exit(_info_of_all())
    try:
        path = _path(state, base_url, workspace_id, api_key_file)
        if not path.exists():
            click.echo(f"state: {path}\n  nothing remembered yet (no such file)")
            sys.exit(EXIT_OK)
        found = _info(path)
    except StateLockedError as exc:
        fail(str(exc), EXIT_LOCKED)
    except BulkUpdaterError as exc:
        fail(str(exc))
    click.echo(describe(found))


def _info(path: Path) -> StateInfo:
    store = StateFile(path, readonly=True)
    try:
        return store.info()
    finally:
        store.close()


def _info_of_all() -> int:
    """`state info` of every file in the state directory; exit 2 if one could not be read."""
    files = state_files()
    if not files:
        click.echo(f"state folder: {state_dir()}\n  nothing remembered yet (no state file)")
        return EXIT_OK
    code = EXIT_OK
    click.echo(f"state folder: {state_dir()}")
    for path in files:
        try:
            click.echo(describe(_info(path)))
        except BulkUpdaterError as exc:
            click.echo(f"bulk-updater: error: {exc}", err=True)
            code = EXIT_USAGE
    return code


def describe(found: StateInfo) -> str:
    """The text of `state info`."""
    per_lead = f", {found.size / found.leads:,.0f} bytes per lead" if found.leads else ""
    lines = [f"state: {found.path}"]
    if found.account is not None:
        lines.append(f"  account: {found.account}")
    lines += [
        f"  leads remembered: {found.leads:,}",
        f"  size: {found.size / 1e6:,.1f} MB{per_lead}",
    ]
    if found.damaged:
        lines.append(
            f"  damaged entries: {found.damaged:,} (unknown: their rows are sent next time, "
            "and the entries rewritten)"
        )
    run = found.last_run
    if run is None:
        lines.append("  last run: none")
        return "\n".join(lines)
    started = _when(run["started_at"])
    end = f"finished {_when(run['finished_at'])}" if run["finished_at"] else "did not finish"
    if found.in_use and not run["finished_at"]:
        end = "running now"
    lines.append(f"  last run: {run['input']}, started {started}, {end}")
    if run["finished_at"]:
        lines.append(
            f"    {run['rows']:,} rows: {run['sent']:,} sent, {run['unchanged']:,} unchanged, "
            f"{run['accepted']:,} accepted"
        )
    return "\n".join(lines)


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@state.command()
@click.argument("ids", nargs=-1, metavar="[ID ...]")
@_where
def forget(
    ids: tuple[str, ...],
    state: Path | None,
    base_url: str | None,
    workspace_id: str | None,
    api_key_file: Path | None,
) -> None:
    """Forget every lead (or the leads ID ...), so that their rows are sent next time."""
    try:
        path = _path(state, base_url, workspace_id, api_key_file)
        if not path.exists():
            click.echo(f"state: {path}\n  nothing to forget (no such file)")
            sys.exit(EXIT_OK)
        store = StateFile(path)
        try:
            count = store.forget(ids or None)
        finally:
            store.close()
    except StateLockedError as exc:
        fail(str(exc), EXIT_LOCKED)
    except BulkUpdaterError as exc:
        fail(str(exc))
    what = f"{count:,} of the {len(set(ids)):,} leads given" if ids else f"every lead ({count:,})"
    click.echo(f"state: {path}\n  forgot {what}; their rows are sent next time")

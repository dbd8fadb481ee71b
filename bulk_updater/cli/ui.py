"""`bulk-updater ui`: serve the guided page on 127.0.0.1 and open it in the browser."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import webbrowser
from pathlib import Path

import click
from pydantic import SecretStr

from ..errors import ConfigError, StateLockedError
from ..settings import Settings
from ..ui import Connection, UiServer
from ..ui.browser import browser_target
from .job import run_async
from .options import NAMES, read_key
from .summary import EXIT_LOCKED

#: The sample leads "try it on the local sandbox" serves, in a checkout of the project.
SAMPLE_LEADS = Path(__file__).resolve().parents[2] / "samples" / "leads.json"


@click.command()
@click.option(
    "--port", type=click.IntRange(0, 65535), default=0, help="Port  [default: a free one]"
)
@click.option("--no-browser", is_flag=True, help="Print the page's address instead of opening it.")
@click.option(
    "--api-key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Read the key from this file instead of SENDKIT_API_KEY (else the page asks for it).",
)
@click.option("--base-url", help="API origin  [default: https://api.sendkit.ai, SENDKIT_BASE_URL]")
@click.option("--workspace-id", help="Sends X-Workspace-Id  [SENDKIT_WORKSPACE_ID]")
@click.option(
    "--sandbox-leads",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=SAMPLE_LEADS if SAMPLE_LEADS.exists() else None,
    help="The leads the local sandbox serves  [default: samples/leads.json]",
)
def ui(
    port: int,
    no_browser: bool,
    api_key_file: Path | None,
    base_url: str | None,
    workspace_id: str | None,
    sandbox_leads: Path | None,
) -> None:
    """Open a guided page to send a file: choose it, check its columns and rows, run, fix."""
    try:
        settings = Settings.build(names=NAMES, base_url=base_url, workspace_id=workspace_id)
        connection = _connection(settings, api_key_file)
    except ConfigError as exc:
        click.echo(f"bulk-updater: error: {exc}", err=True)
        sys.exit(2)
    server = UiServer(
        connection=connection, base_url=settings.base_url, sandbox_leads=sandbox_leads, port=port
    )
    run_async(_serve(server, no_browser))


def _connection(settings: Settings, api_key_file: Path | None) -> Connection | None:
    """The key as for `run`; None when there is none: the page then asks for it."""
    try:
        key = read_key(api_key_file)
    except ConfigError:
        if api_key_file is not None:  # a file given but unreadable is an error, not a question
            raise
        return None
    settings = Settings.build(settings, names=NAMES, api_key=key)
    return Connection(SecretStr(key), settings.base_url, settings.workspace_id)


async def _serve(server: UiServer, no_browser: bool) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    # SIGHUP comes when the terminal closes: the private folder goes then too.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with server:
            click.echo(f"bulk-updater ui: the page is at {server.url}")
            click.echo("  open that address in your browser if the page does not open by itself")
            click.echo("  it works once, in one browser; Ctrl+C stops it (a job stops gracefully)")
            if not no_browser:  # a file that leads there, unless the browser cannot read it
                opened = await asyncio.to_thread(browser_target, server)
                await asyncio.to_thread(webbrowser.open, opened)
            await stop.wait()
    except StateLockedError as exc:
        click.echo(f"bulk-updater: error: {exc}", err=True)
        sys.exit(EXIT_LOCKED)
    except OSError as exc:
        why = os.strerror(exc.errno).lower() if exc.errno else str(exc)
        click.echo(
            f"bulk-updater: error: cannot listen on 127.0.0.1:{server.requested_port} ({why}); "
            "choose another --port, or leave it out for a free one",
            err=True,
        )
        sys.exit(2)

"""The `bulk-updater` command: parse arguments, build settings, call the library, set the exit code.

run      send a CSV / JSONL file (or standard input) through `BulkUpdater.run`   (`run.py`)
state    look at or clear what `--skip-unchanged` remembers                    (`state.py`)
sandbox  serve the local SendKit-compatible API                        (`sandbox/command.py`)
ui       the guided local page in front of the same engine                       (`ui.py`)
"""

from __future__ import annotations

import click

from .. import __version__
from ..sandbox.command import sandbox
from .run import run
from .state import state
from .ui import ui


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bulk-updater")
def cli() -> None:
    """Update SendKit leads in bulk: one PATCH /v1/leads/{id} per input row."""


cli.add_command(run)
cli.add_command(state)
cli.add_command(sandbox)
cli.add_command(ui)


def main() -> None:
    cli(prog_name="bulk-updater")

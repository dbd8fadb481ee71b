"""The `bulk-updater` command: parse arguments, build settings, call the library, set the exit code.

run      send a CSV / JSONL file (or standard input) through `BulkUpdater.run`   (`run.py`)
state    look at or clear what `--skip-unchanged` remembers                    (`state.py`)
sandbox  serve the local SendKit-compatible API                        (`sandbox/command.py`)
ui       the guided local page in front of the same engine                       (`ui.py`)
"""

from __future__ import annotations

from importlib import import_module

import click

#: Where each command is defined, imported when it is called: `run` of a CSV then leaves the
#: page, the sandbox and openpyxl alone, which a nightly job of a few rows paid for at each start.
COMMANDS = {
    "run": (".run", "run"),
    "state": (".state", "state"),
    "sandbox": ("..sandbox.command", "sandbox"),
    "ui": (".ui", "ui"),
}


class _Commands(click.Group):
    """A group that imports a command's module only when the command is asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, name = COMMANDS[cmd_name]
        command: click.Command = getattr(import_module(module, __name__), name)
        return command


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bulk-updater", prog_name="bulk-updater")
def cli() -> None:
    """Update SendKit leads in bulk: one PATCH /v1/leads/{id} per input row."""


def main() -> None:
    cli(prog_name="bulk-updater")

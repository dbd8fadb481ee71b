"""`--dry-run`: read and validate every row, show what would be sent; send nothing."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..inputs import Invalid, Source
from ..state.preview import Preview
from .summary import EXIT_OK, EXIT_ROWS


def show_dry_run(
    source: Source,
    *,
    quiet: bool,
    state: Path | None = None,
    examples: int = 3,
    problems: int = 10,
) -> int:
    """Validate every row, show a few bodies and the first problems; exit 0 if all are valid.

    With a `state` file (`--skip-unchanged`), also count the rows that would be sent; the file
    is read, never written.
    """
    valid = invalid = 0
    shown: list[str] = []
    bad: list[str] = []
    preview = Preview(state) if state is not None else None
    try:
        for record in source:
            row, item = record.number, record.item
            if isinstance(item, Invalid):
                invalid += 1
                if len(bad) < problems:
                    bad.append(f"  row {row}: {item.message}")
                continue
            valid += 1
            if preview is not None:
                preview.add(item)
            if len(shown) < examples:
                body = json.dumps(item.body(), ensure_ascii=False)
                shown.append(f"  row {row}: PATCH /v1/leads/{item.id} {body}")
    finally:
        if preview is not None:
            preview.close()
    if not quiet:
        click.echo(f"bulk-updater: dry run of {source.name}: {valid} rows valid, {invalid} invalid")
        if shown:
            click.echo("would send, for example:\n" + "\n".join(shown))
        if bad:
            more = f" (and {invalid - len(bad)} more)" if invalid > len(bad) else ""
            click.echo(f"invalid rows{more}:\n" + "\n".join(bad))
        if preview is not None:
            click.echo(_sync_line(preview))
        click.echo("nothing was sent")
    return EXIT_OK if invalid == 0 else EXIT_ROWS


def _sync_line(preview: Preview) -> str:
    where = f"state: {preview.path}" if preview.exists else f"no state file yet at {preview.path}"
    return (
        f"with --skip-unchanged: {preview.send} rows would be sent, {preview.unchanged} "
        f"unchanged ({where})"
    )

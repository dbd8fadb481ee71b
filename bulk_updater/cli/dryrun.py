"""`--dry-run`: read and validate every row, show what would be sent; send nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final

import click

from ..engine.diskmap import LeadSet
from ..engine.emails import Match, keyed, normal_email
from ..inputs import Hidden, Invalid, Source
from ..inputs.columns import ByEmail
from ..printable import escape
from ..state.preview import Preview
from ..words import counted
from .summary import EXIT_OK, EXIT_ROWS


def show_dry_run(
    source: Source,
    *,
    match: Match,
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
    tags = False  # whether an example sets tags: then say once what that does
    shown: list[str] = []
    bad: list[str] = []
    emails = LeadSet()  # the distinct emails a real run would search for
    searches = 0
    preview = Preview(state) if state is not None else None
    try:
        for record in source:
            row, item = record.number, keyed(record.item, match)
            if isinstance(item, Hidden):
                continue  # left out as the sheet hides it: a note says how many
            if isinstance(item, Invalid):
                invalid += 1
                if len(bad) < problems:
                    bad.append(f"  row {row}: {item.message}")
                continue
            valid += 1
            target = item.id
            if isinstance(item, ByEmail):
                email = normal_email(item.email)
                searches += email not in emails
                emails.add(email)
                target, item = f"<the lead with the email {item.email}>", item.update
                if preview is not None:
                    preview.by_email += 1
            elif preview is not None:
                preview.add(item)
            if valid <= examples:
                body = json.dumps(item.body(), ensure_ascii=False)
                shown.append(f"  row {row}: PATCH /v1/leads/{target} {body}")
                if item.tags is not None:
                    tags = True
                    shown.append("    tags: " + _tag_list(item.tags))
    finally:
        emails.close()
        if preview is not None:
            preview.close()
    if not quiet:
        _describe(source)
        valid_rows = counted(valid, "row")
        _echo(f"bulk-updater: dry run of {source.name}: {valid_rows} valid, {invalid} invalid")
        if searches:
            _echo(f"would search for {counted(searches, 'distinct email')}, one search each")
        if shown:
            _echo("would send, for example:", shown)
        if tags:
            _echo(_TAGS_REPLACE)
        if bad:
            more = f" (and {invalid - len(bad)} more)" if invalid > len(bad) else ""
            _echo(f"invalid rows{more}:", bad)
        for note in source.notes():
            _echo(f"note: {note}")
        if preview is not None:
            _echo(_sync_line(preview))
        _echo("nothing was sent")
    return EXIT_OK if invalid == 0 else EXIT_ROWS


_TAGS_REPLACE: Final = (
    "`tags` replaces a lead's whole tag list: tags it has that the row does not list are removed"
)


def _tag_list(tags: tuple[str, ...]) -> str:
    if not tags:
        return "none (the lead's tags are cleared)"
    return f"{len(tags)}: " + ", ".join(f"`{tag}`" for tag in tags)


def _describe(source: Source) -> None:
    """How the input is read: its format and encoding, then what each column means."""
    how: list[str] = [source.format]
    if source.encoding is not None:
        how.append(f"encoding {source.encoding}")
    if source.delimiter is not None:
        how.append("delimiter " + ("TAB" if source.delimiter == "\t" else repr(source.delimiter)))
    if source.sheet is not None:
        how.append(f"sheet {source.sheet!r}")
    _echo(f"reading {source.name}: {', '.join(how)}")
    plan = source.plan()
    if plan:
        _echo("columns:", [f"  {line}" for line in plan])


def _echo(text: str, lines: list[str] | None = None) -> None:
    """A line, and the `lines` under it, of the input's text (an email, a column's name, a
    value) on the terminal: nothing in them may act there, a line break in a value neither."""
    click.echo("\n".join(escape(line) for line in [text, *(lines or ())]))


def _sync_line(preview: Preview) -> str:
    where = f"state: {preview.path}" if preview.exists else f"no state file yet at {preview.path}"
    sent = counted(preview.send + preview.by_email, "row would", "rows would")
    line = f"with --skip-unchanged: {sent} be sent, {preview.unchanged} unchanged ({where})"
    if preview.by_email:
        by_email = counted(preview.by_email, "row matched by email is", "rows matched by email are")
        line += f"; the {by_email} counted as sent"
    return line

"""What a run tells at its end: the summary on stdout, `--summary-json`, and the exit code."""

from __future__ import annotations

import json
import os
import signal
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import click

from .. import __version__
from ..engine.sink import rejected_rows
from ..launch import SIGNAL_EXIT
from ..limits.adaptive import CLIMBING
from ..models import Outcome, Status, StopReason, Summary
from ..printable import escape
from ..words import counted

EXIT_OK: Final = 0
EXIT_ROWS: Final = 1
EXIT_USAGE: Final = 2
EXIT_ABORTED: Final = 3
EXIT_LOCKED: Final = 75
#: The paths of `--summary-json`, made absolute: a reader elsewhere (a monitor) can find them.
_PATHS: Final = ("input", "report", "rejects", "state_file")
_STDIN: Final = "standard input"  # the `input` of a job reading `-`: no path


def exit_code(summary: Summary, signum: int | None) -> int:
    """The exit code: a signal counts only if it stopped the job before its end."""
    if summary.stopped is StopReason.INTERRUPTED and signum is not None:
        return SIGNAL_EXIT.get(signal.Signals(signum), 128 + signum)
    if summary.stopped is not None:
        return EXIT_ABORTED
    return EXIT_OK if summary.all_updated else EXIT_ROWS


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def write_json_atomically(path: Path, data: dict[str, Any]) -> None:
    """Replace `path` in one step: a reader sees the old file or the new one, never half."""
    data = {k: _absolute(v) if k in _PATHS else v for k, v in data.items()}
    folder = path.resolve().parent
    handle, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, path.resolve())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_summary(path: Path, data: dict[str, Any], *, final: bool = False) -> bool:
    """Whether `--summary-json` was written; if not, one line says so (the report has every
    row's outcome either way). `final`: the run's last word, which a monitor reads."""
    try:
        write_json_atomically(path, data)
    except OSError as exc:
        stale = "; the file there is out of date" if final and path.exists() else ""
        click.echo(
            f"bulk-updater: error: cannot write the summary {path}: {exc.strerror}{stale}",
            err=True,
        )
        return False
    return True


def _absolute(value: Any) -> Any:
    return os.path.abspath(value) if isinstance(value, str) and value != _STDIN else value


def summary_data(
    summary: Summary,
    *,
    code: int,
    source: str,
    started_at: str,
    not_read: int | None,
    rejects: Path | None = None,
) -> dict[str, Any]:
    data = summary.model_dump(mode="json")
    data.update(
        state="finished",
        exit_code=code,
        input=source,
        rejects=None if rejects is None else str(rejects),
        version=__version__,
        started_at=started_at,
        finished_at=now_iso(),
        not_read=not_read,
    )
    return data


class Problems:
    """The first few rows that did not end `updated` (or `unchanged`), as the summary lists them."""

    def __init__(self, keep: int = 5) -> None:
        self.keep = keep
        self.lines: list[str] = []

    def take(self, outcome: Outcome) -> None:
        if outcome.status in _FINE or len(self.lines) >= self.keep:
            return
        # What came from the input or the server, shown as one line of plain text.
        who = escape(outcome.id or outcome.email or "?")[:_SHOWN]
        message = f": {escape(outcome.message)[:_SHOWN]}" if outcome.message else ""
        self.lines.append(f"row {outcome.row} ({who}): {outcome.status.value}{message}")


_FINE: Final = frozenset({Status.UPDATED, Status.UNCHANGED, Status.SKIPPED})
_SHOWN: Final = 200  # characters of an id or a message: the report has them whole


def worth_telling(summary: Summary, code: int, *, quiet: bool) -> bool:
    """Whether the summary is printed: always, or with `-q` (cron) only when there is something
    to act on (an exit code other than 0, a warning)."""
    return not quiet or code != EXIT_OK or bool(summary.warnings)


def next_step(summary: Summary, *, rereadable: bool, rejects: Path | None) -> str | None:
    """What to run next, when something is left to do."""
    if not rereadable:
        return None
    resume = "rerun the same command with --resume: it sends only the rows not finished"
    if summary.stopped is StopReason.UNKNOWN_IDS:  # --resume would refuse a changed map
        nothing = "" if summary.counts[Status.UPDATED] else " (nothing was updated)"
        return (
            "map the column of SendKit lead ids to id (or match by email), then run the command "
            f"again without --resume, from the start{nothing}"
        )
    if summary.stopped is StopReason.INPUT_CHANGED:  # the stop says whether --resume takes it
        return None
    if summary.stopped not in (None, StopReason.INTERRUPTED):
        return f"fix what stopped the run (above), then {resume}"
    if (
        summary.stopped is not None
        or summary.counts[Status.FAILED] + summary.counts[Status.ABORTED]
    ):
        return resume
    if summary.all_updated:
        return None
    if rejects is not None and rejected_rows(summary.counts, summary.earlier):
        return f"fix the rows in {rejects} and run it as the input"
    return "the report says why each row was not updated; --rejects PATH writes them to fix"


def format_summary(
    summary: Summary,
    *,
    not_read: int | None = None,
    rejects: Path | None = None,
    problems: list[str] | None = None,
    next_step: str | None = None,
) -> str:
    counts = ", ".join(f"{s.value} {n}" for s, n in summary.counts.items() if n) or "no rows"
    lines = [
        f"bulk-updater: {counted(summary.rows, 'row')} in {summary.duration_s:.1f}s: {counts}",
        f"  requests {summary.requests}{_searches(summary)}, retries {summary.retries}, "
        f"429s {summary.rate_limited}, {summary.achieved_rate:.1f} requests/s",
    ]
    if summary.settled_why is not None and summary.requests:  # nothing sent: no rate to tell
        climbing = summary.settled_why.startswith(CLIMBING)  # nothing bounded it: no rate settled
        settled = (
            ""
            if summary.settled_rate is None or climbing
            else f"settled at {summary.settled_rate:.1f}/s: "
        )
        lines.append(f"  rate: {settled}{summary.settled_why}")
    if summary.rate_hint:
        lines.append(f"  hint: {summary.rate_hint}")
    if summary.earlier:
        earlier = ", ".join(f"{s.value} {n}" for s, n in summary.earlier.items())
        lines.append(f"  skipped rows, as the earlier run left them: {earlier}")
    if summary.stopped is not None:
        lines.append(f"  stopped: {summary.stop_message}")
    if not_read:
        more = counted(not_read, "more row was", "more rows were")
        lines.append(f"  {more} not read; --resume continues from here")
    if summary.dropped_columns:
        lines.append(f"  columns left out: {', '.join(summary.dropped_columns)}")
    if problems:
        lines.append("  first rows not updated:")
        lines.extend(f"    {line}" for line in problems)
    if summary.report:
        lines.append(f"  report: {summary.report}")
    if rejects is not None and rejected_rows(summary.counts, summary.earlier):
        lines.append(f"  rows to fix and feed back: {rejects}")
    if summary.state_file:
        lines.append(f"  state: {summary.state_file}")
    lines.extend(f"  warning: {warning}" for warning in summary.warnings)
    if next_step:
        lines.append(f"  next: {next_step}")
    return escape("\n".join(lines), keep="\n")


def _searches(summary: Summary) -> str:
    if not summary.searches:
        return ""
    updates = counted(summary.requests - summary.searches, "update")
    return f" ({counted(summary.searches, 'search', 'searches')}, {updates})"

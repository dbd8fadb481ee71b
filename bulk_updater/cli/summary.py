"""What a run tells at its end: the summary on stdout, `--summary-json`, and the exit code."""

from __future__ import annotations

import json
import os
import signal
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from .. import __version__
from ..models import StopReason, Summary
from ..printable import escape

EXIT_OK: Final = 0
EXIT_ROWS: Final = 1
EXIT_USAGE: Final = 2
EXIT_ABORTED: Final = 3
EXIT_LOCKED: Final = 75
SIGNAL_EXIT: Final = {signal.SIGINT: 130, signal.SIGTERM: 143}
#: The paths of `--summary-json`, made absolute: a reader elsewhere (a monitor) can find them.
_PATHS: Final = ("input", "report", "state_file")
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


def _absolute(value: Any) -> Any:
    return os.path.abspath(value) if isinstance(value, str) and value != _STDIN else value


def summary_data(
    summary: Summary, *, code: int, source: str, started_at: str, not_read: int | None
) -> dict[str, Any]:
    data = summary.model_dump(mode="json")
    data.update(
        state="finished",
        exit_code=code,
        input=source,
        version=__version__,
        started_at=started_at,
        finished_at=now_iso(),
        not_read=not_read,
    )
    return data


def format_summary(
    summary: Summary, *, not_read: int | None = None, rejects: Path | None = None
) -> str:
    counts = ", ".join(f"{s.value} {n}" for s, n in summary.counts.items() if n) or "no rows"
    lines = [
        f"bulk-updater: {summary.rows} rows in {summary.duration_s:.1f}s: {counts}",
        f"  requests {summary.requests}{_searches(summary)}, retries {summary.retries}, "
        f"429s {summary.rate_limited}, {summary.achieved_rate:.1f} requests/s",
    ]
    if summary.settled_why is not None:
        settled = (
            "" if summary.settled_rate is None else f"settled at {summary.settled_rate:.1f}/s: "
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
        lines.append(f"  {not_read} more rows were not read; --resume continues from here")
    if summary.dropped_columns:
        lines.append(f"  columns left out: {', '.join(summary.dropped_columns)}")
    if summary.report:
        lines.append(f"  report: {summary.report}")
    if rejects is not None:
        lines.append(f"  rows to fix and feed back: {rejects}")
    if summary.state_file:
        lines.append(f"  state: {summary.state_file}")
    lines.extend(f"  warning: {warning}" for warning in summary.warnings)
    return escape("\n".join(lines), keep="\n")


def _searches(summary: Summary) -> str:
    if not summary.searches:
        return ""
    return f" ({summary.searches} searches, {summary.requests - summary.searches} updates)"

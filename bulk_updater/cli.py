"""The `bulk-updater` command: parse arguments, build settings, call the library, set the exit code.

run      send a CSV / JSONL file (or standard input) through `BulkUpdater.run`
sandbox  serve the local SendKit-compatible API from `sandbox.py`
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Final, NoReturn, TypeVar

import click

from . import __version__
from .engine import BulkUpdater
from .errors import BulkUpdaterError, ConfigError, ReportLockedError
from .models import StopReason, Summary
from .progress import Progress
from .report import default_report_path
from .sandbox.command import sandbox
from .settings import DEFAULT_BASE_URL
from .sources import Format, Invalid, Source

EXIT_OK: Final = 0
EXIT_ROWS: Final = 1
EXIT_USAGE: Final = 2
EXIT_ABORTED: Final = 3
EXIT_LOCKED: Final = 75
_SIGNAL_EXIT: Final = {signal.SIGINT: 130, signal.SIGTERM: 143}
_T = TypeVar("_T")


def _fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    click.echo(f"bulk-updater: error: {message}", err=True)
    sys.exit(code)


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed (extra `[speed]`), unless BULK_UPDATER_NO_UVLOOP is set."""
    if os.environ.get("BULK_UPDATER_NO_UVLOOP"):
        return None
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def _run_async(coro: Coroutine[Any, Any, _T]) -> _T:
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(coro)


class _RedactKey(logging.Filter):
    """Belt and braces: no log record may carry the key, whatever a library logs."""

    def __init__(self, key: str) -> None:
        super().__init__()
        self._key = key

    def filter(self, record: logging.LogRecord) -> bool:
        if self._key and self._key in record.getMessage():
            record.msg = record.getMessage().replace(self._key, "[redacted]")
            record.args = None
        return True


def _read_key(key_file: Path | None) -> str:
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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bulk-updater")
def cli() -> None:
    """Update SendKit leads in bulk: one PATCH /v1/leads/{id} per input row."""


@cli.command()
@click.argument("input_path", metavar="INPUT", type=str)
@click.option(
    "--report",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Report file, .csv or .jsonl  [default: INPUT.report.csv]",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "jsonl"]),
    help="Input format  [default: from the file extension; needed for '-']",
)
@click.option(
    "--rate",
    type=float,
    default=10.0,
    show_default=True,
    help="At most R request starts per second (any sliding second); 0 = no limit.",
)
@click.option(
    "--concurrency", type=int, default=8, show_default=True, help="Requests in flight at most."
)
@click.option(
    "--max-attempts",
    type=int,
    default=5,
    show_default=True,
    help="Attempts per row for transient failures (429s do not count).",
)
@click.option(
    "--timeout", type=float, default=30.0, show_default=True, help="Seconds to wait for one answer."
)
@click.option(
    "--base-url",
    envvar="SENDKIT_BASE_URL",
    default=DEFAULT_BASE_URL,
    show_default=True,
    help="API origin (env SENDKIT_BASE_URL).",
)
@click.option(
    "--api-key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Read the key from this file instead of SENDKIT_API_KEY.",
)
@click.option(
    "--workspace-id",
    envvar="SENDKIT_WORKSPACE_ID",
    help="X-Workspace-Id for platform keys (env SENDKIT_WORKSPACE_ID).",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue the report: rows it holds as finished are not sent again.",
)
@click.option("--dry-run", is_flag=True, help="Validate every row and show what would be sent.")
@click.option(
    "--summary-json",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the summary as JSON here.",
)
@click.option(
    "--stop-after-failures",
    type=int,
    default=50,
    show_default=True,
    help="Stop the job (exit 3) after this many transient failures in a row.",
)
@click.option(
    "--max-pause",
    type=float,
    default=120.0,
    show_default=True,
    help="Longest pause after a 429, whatever Retry-After says.",
)
@click.option(
    "--grace",
    type=float,
    default=5.0,
    show_default=True,
    help="Seconds requests in flight may take to finish after a stop or signal.",
)
@click.option("-q", "--quiet", is_flag=True, help="Print only errors.")
@click.option("-v", "--verbose", is_flag=True, help="Log every request (the key is never shown).")
def run(
    input_path: str,
    report: Path | None,
    fmt: Format | None,
    rate: float,
    concurrency: int,
    max_attempts: int,
    timeout: float,
    base_url: str,
    api_key_file: Path | None,
    workspace_id: str | None,
    resume: bool,
    dry_run: bool,
    summary_json: Path | None,
    stop_after_failures: int,
    max_pause: float,
    grace: float,
    quiet: bool,
    verbose: bool,
) -> None:
    """Send one PATCH per row of INPUT (CSV or JSON lines; '-' reads standard input)."""
    try:
        source = Source(input_path, format=fmt)
        if dry_run:
            sys.exit(_dry_run(source, quiet=quiet))
        key = _read_key(api_key_file)
        updater = BulkUpdater(
            api_key=key,
            base_url=base_url,
            rate=rate,
            concurrency=concurrency,
            max_attempts=max_attempts,
            timeout=timeout,
            workspace_id=workspace_id,
            max_pause=max_pause,
            streak_limit=stop_after_failures,
            grace=grace,
        )
        if resume and not source.rereadable:
            raise ConfigError(
                f"--resume needs an input file that can be read again; {source.name} cannot"
            )
        report_path = report or default_report_path(input_path if source.rereadable else "-")
        _check_outputs(source, report_path, summary_json)
    except ReportLockedError as exc:
        _fail(str(exc), EXIT_LOCKED)
    except BulkUpdaterError as exc:
        _fail(str(exc))
    if verbose:
        handler = logging.StreamHandler(sys.stderr)
        handler.addFilter(_RedactKey(key))
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logging.getLogger("bulk_updater").addHandler(handler)
        logging.getLogger("bulk_updater").setLevel(logging.DEBUG)
    progress = None
    if not quiet:
        live = sys.stderr.isatty() and not verbose
        total = source.count() if live else None
        progress = Progress(sys.stderr, total=total, live=live, interval=0.2 if live else 5.0)
    try:
        summary, signum = _run_async(_job(updater, source, report_path, resume, progress))
    except ReportLockedError as exc:
        _fail(str(exc), EXIT_LOCKED)
    except BulkUpdaterError as exc:
        _fail(str(exc))
    except OSError as exc:  # a full disk, a vanished input: what is done stays in the report
        where = exc.filename or report_path
        _fail(f"{where}: {exc.strerror or exc}; fix it and rerun with --resume", EXIT_ABORTED)
    code = _exit_code(summary, signum)
    if summary_json is not None:
        data = summary.model_dump(mode="json")
        data.update(exit_code=code, input=source.name, version=__version__)
        try:
            summary_json.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:  # the job is done and reported; say so, keep its exit code
            click.echo(f"bulk-updater: cannot write {summary_json}: {exc.strerror}", err=True)
    if not quiet:
        click.echo(format_summary(summary))
    elif summary.stopped is not None and summary.stopped is not StopReason.INTERRUPTED:
        click.echo(f"bulk-updater: stopped: {summary.stop_message}", err=True)
    sys.exit(code)


async def _job(
    updater: BulkUpdater,
    source: Source,
    report: Path,
    resume: bool,
    progress: Progress | None,
) -> tuple[Summary, int | None]:
    """Run the job with signal handling: the first signal stops it, a second exits at once."""
    loop = asyncio.get_running_loop()
    received: list[int] = []

    def on_signal(signum: int) -> None:
        if received:
            os._exit(_SIGNAL_EXIT.get(signal.Signals(signum), 128 + signum))
        received.append(signum)
        hint = "; rerun with --resume" if source.rereadable else ""
        updater.stop(f"interrupted by {signal.Signals(signum).name}{hint}")

    for signum in _SIGNAL_EXIT:
        loop.add_signal_handler(signum, on_signal, signum)
    ticker = asyncio.create_task(progress.run()) if progress is not None else None
    try:
        async with updater:
            summary = await updater.run(
                source,
                report=report,
                resume=resume,
                on_outcome=progress.update if progress is not None else None,
            )
    finally:
        if ticker is not None:
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)
        for signum in _SIGNAL_EXIT:
            loop.remove_signal_handler(signum)
    return summary, received[0] if received else None


def _check_outputs(source: Source, report: Path, summary_json: Path | None) -> None:
    """Refuse, before any request, outputs that would destroy the input or cannot be written."""
    if source.rereadable and report.exists() and os.path.samefile(report, source.path):
        raise ConfigError(f"{report}: is the input file; choose another --report")
    for path in (report, summary_json):
        if path is not None and not path.resolve().parent.is_dir():
            raise ConfigError(f"{path}: the folder {path.parent} does not exist; create it first")


def _exit_code(summary: Summary, signum: int | None) -> int:
    if signum is not None:
        return _SIGNAL_EXIT.get(signal.Signals(signum), 128 + signum)
    if summary.stopped is not None:
        return EXIT_ABORTED
    return EXIT_OK if summary.all_updated else EXIT_ROWS


def format_summary(summary: Summary) -> str:
    counts = ", ".join(f"{s.value} {n}" for s, n in summary.counts.items() if n) or "no rows"
    lines = [
        f"bulk-updater: {summary.rows} rows in {summary.duration_s:.1f}s: {counts}",
        f"  requests {summary.requests}, retries {summary.retries}, "
        f"429s {summary.rate_limited}, {summary.achieved_rate:.1f} requests/s",
    ]
    if summary.earlier:
        earlier = ", ".join(f"{s.value} {n}" for s, n in summary.earlier.items())
        lines.append(f"  skipped rows, as the earlier run left them: {earlier}")
    if summary.stopped is not None:
        lines.append(f"  stopped: {summary.stop_message}")
    if summary.report:
        lines.append(f"  report: {summary.report}")
    return "\n".join(lines)


def _dry_run(source: Source, *, quiet: bool, examples: int = 3, problems: int = 10) -> int:
    """Validate every row, show a few bodies and the first problems; send nothing."""
    valid = invalid = 0
    shown: list[str] = []
    bad: list[str] = []
    for row, item in source:
        if isinstance(item, Invalid):
            invalid += 1
            if len(bad) < problems:
                bad.append(f"  row {row}: {item.message}")
            continue
        valid += 1
        if len(shown) < examples:
            body = json.dumps(item.body(), ensure_ascii=False)
            shown.append(f"  row {row}: PATCH /v1/leads/{item.id} {body}")
    if not quiet:
        click.echo(f"bulk-updater: dry run of {source.name}: {valid} rows valid, {invalid} invalid")
        if shown:
            click.echo("would send, for example:\n" + "\n".join(shown))
        if bad:
            more = f" (and {invalid - len(bad)} more)" if invalid > len(bad) else ""
            click.echo(f"invalid rows{more}:\n" + "\n".join(bad))
        click.echo("nothing was sent")
    return EXIT_OK if invalid == 0 else EXIT_ROWS


cli.add_command(sandbox)


def main() -> None:
    cli(prog_name="bulk-updater")

"""`bulk-updater run`: arguments → settings → `BulkUpdater.run` → summary and exit code."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn, TypeVar

import click

from ..engine import BulkUpdater
from ..errors import BulkUpdaterError, ConfigError, ReportLockedError, StateLockedError
from ..inputs import Format, Source
from ..models import Summary
from ..progress import Progress
from ..report import default_report_path
from ..settings import Settings
from ..state import state_path
from .dryrun import show_dry_run
from .options import build_settings, read_key, settings_options
from .outputs import check_outputs
from .summary import (
    EXIT_ABORTED,
    EXIT_LOCKED,
    EXIT_USAGE,
    SIGNAL_EXIT,
    exit_code,
    format_summary,
    now_iso,
    summary_data,
    write_json_atomically,
)

_T = TypeVar("_T")


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    click.echo(f"bulk-updater: error: {message}", err=True)
    sys.exit(code)


def _exit_before_start(signum: int, frame: FrameType | None) -> None:
    """A signal before the job started: nothing is read or written yet, so exit at once.

    Raising from the handler instead could land anywhere (a log write swallows it, and the
    blocking read it interrupted would then go on waiting).
    """
    name = signal.Signals(signum).name
    os.write(2, f"bulk-updater: interrupted by {name} before any row was read\n".encode())
    os._exit(SIGNAL_EXIT.get(signal.Signals(signum), 128 + signum))


@contextmanager
def _signals_exit() -> Iterator[None]:
    """While the input is opened (reading a pipe's header may block), a signal ends the run."""
    previous = {signum: signal.signal(signum, _exit_before_start) for signum in SIGNAL_EXIT}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed, unless BULK_UPDATER_NO_UVLOOP is set."""
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


class RedactKey(logging.Filter):
    """Belt and braces: no log record may carry the key, whatever a library logs."""

    def __init__(self) -> None:
        super().__init__()
        self.key = ""  # set once it is read

    def filter(self, record: logging.LogRecord) -> bool:
        if self.key and self.key in record.getMessage():
            record.msg = record.getMessage().replace(self.key, "[redacted]")
            record.args = None
        return True


@click.command()
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
    "--api-key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Read the key from this file instead of SENDKIT_API_KEY.",
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
@settings_options
@click.option("-q", "--quiet", is_flag=True, help="Print only errors.")
@click.option("-v", "--verbose", is_flag=True, help="Log every request (the key is never shown).")
def run(
    input_path: str,
    report: Path | None,
    fmt: Format | None,
    api_key_file: Path | None,
    resume: bool,
    dry_run: bool,
    summary_json: Path | None,
    quiet: bool,
    verbose: bool,
    **values: Any,
) -> None:
    """Send one PATCH per row of INPUT (CSV or JSON lines; '-' reads standard input)."""
    if quiet and verbose:
        fail("-q and -v cannot be used together; choose one")
    redact = _log_requests() if verbose else None
    if not verbose:
        log_warnings()
    try:
        with _signals_exit():
            source = Source(input_path, format=fmt)
            if dry_run:
                settings = build_settings(values, _dry_run_key(values, api_key_file))
                sys.exit(dry_run_checked(source, settings, report, summary_json, quiet=quiet))
            key = read_key(api_key_file)
            if redact is not None:
                redact.key = key
            settings = build_settings(values, key)
            updater = BulkUpdater(settings=settings)
            if resume and not source.rereadable:
                raise ConfigError(
                    f"--resume needs an input file that can be read again; {source.name} cannot"
                )
            report_path = report or default_report_path(input_path if source.rereadable else "-")
            check_outputs(source, report_path, summary_json)
    except ReportLockedError as exc:
        fail(str(exc), EXIT_LOCKED)
    except BulkUpdaterError as exc:
        fail(str(exc))
    progress = None
    if not quiet:
        live = sys.stderr.isatty() and not verbose
        total = source.count()  # None for a pipe: progress then counts without a total
        progress = Progress(sys.stderr, total=total, live=live, interval=0.2 if live else 5.0)
    started_at = now_iso()
    if summary_json is not None:
        _write_summary(
            summary_json, {"state": "running", "started_at": started_at, "input": source.name}
        )
    try:
        summary, signum = _run_async(_job(updater, source, report_path, resume, progress))
    except (ReportLockedError, StateLockedError) as exc:
        fail(str(exc), EXIT_LOCKED)
    except BulkUpdaterError as exc:
        fail(str(exc))
    except OSError as exc:  # a full disk, a vanished input: what is done stays in the report
        where = exc.filename or report_path
        message = f"{where}: {exc.strerror or exc}; fix it and rerun with --resume"
        if summary_json is not None:
            _write_summary(
                summary_json,
                {"state": "failed", "exit_code": EXIT_ABORTED, "stop_message": message,
                 "started_at": started_at, "finished_at": now_iso(), "input": source.name,
                 "report": str(report_path)},
            )  # fmt: skip
        fail(message, EXIT_ABORTED)
    _finish(summary, signum, source, summary_json, started_at, quiet=quiet)


def _finish(
    summary: Summary,
    signum: int | None,
    source: Source,
    summary_json: Path | None,
    started_at: str,
    *,
    quiet: bool,
) -> NoReturn:
    code = exit_code(summary, signum)
    not_read = None
    if summary.stopped is not None and source.rereadable:
        total = source.count()
        not_read = max(0, total - summary.rows) if total is not None else None
    if summary_json is not None:
        data = summary_data(
            summary, code=code, source=source.name, started_at=started_at, not_read=not_read
        )
        _write_summary(summary_json, data)
    if not quiet:
        click.echo(format_summary(summary, not_read=not_read))
    else:
        if summary.stopped is not None and code == EXIT_ABORTED:
            click.echo(f"bulk-updater: stopped: {summary.stop_message}", err=True)
        for warning in summary.warnings:
            click.echo(f"bulk-updater: warning: {warning}", err=True)
    sys.exit(code)


def _write_summary(path: Path, data: dict[str, Any]) -> None:
    try:
        write_json_atomically(path, data)
    except OSError as exc:  # the job is done and reported; say so, keep its exit code
        click.echo(f"bulk-updater: cannot write {path}: {exc.strerror}", err=True)


def dry_run_checked(
    source: Source,
    settings: Settings,
    report: Path | None,
    summary_json: Path | None,
    *,
    quiet: bool,
) -> int:
    """A dry run checks the outputs a real run would write, too, then reads every row."""
    report_path = report or default_report_path(source.path if source.rereadable else "-")
    check_outputs(source, report_path, summary_json)
    state = state_path(settings) if settings.skip_unchanged else None
    return show_dry_run(source, quiet=quiet, state=state)


def _dry_run_key(values: dict[str, Any], api_key_file: Path | None) -> str | None:
    """A dry run needs no key, unless `--skip-unchanged` must find the account's state file."""
    if not values.get("skip_unchanged") or values.get("state") is not None:
        return None
    try:
        return read_key(api_key_file)
    except ConfigError as exc:
        raise ConfigError(
            f"--dry-run --skip-unchanged reads the account's state file, named after the key: "
            f"{exc} (or pass --state PATH)"
        ) from None


def log_warnings() -> None:
    """What the library warns about while it runs (a state file another run is writing), on
    stderr as one plain line."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("bulk-updater: warning: %(message)s"))
    logging.getLogger("bulk_updater").addHandler(handler)


def _log_requests() -> RedactKey:
    """`-v`: every request (and what the run waits for) on stderr, the key never shown."""
    handler = logging.StreamHandler(sys.stderr)
    redact = RedactKey()
    handler.addFilter(redact)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logging.getLogger("bulk_updater").addHandler(handler)
    logging.getLogger("bulk_updater").setLevel(logging.DEBUG)
    return redact


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
            os._exit(SIGNAL_EXIT.get(signal.Signals(signum), 128 + signum))
        received.append(signum)
        hint = "; rerun with --resume" if source.rereadable else ""
        updater.stop(f"interrupted by {signal.Signals(signum).name}{hint}")

    for signum in SIGNAL_EXIT:
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
        for signum in SIGNAL_EXIT:
            loop.remove_signal_handler(signum)
            signal.signal(signum, _note_late if not received else _exit_now)
    return summary, received[0] if received else None


def _note_late(signum: int, frame: FrameType | None) -> None:
    """After the last outcome a first signal changes nothing: the result is already known."""
    signal.signal(signum, _exit_now)


def _exit_now(signum: int, frame: FrameType | None) -> None:
    os._exit(SIGNAL_EXIT.get(signal.Signals(signum), 128 + signum))

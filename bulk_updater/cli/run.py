"""`bulk-updater run`: arguments → settings and input → `BulkUpdater.run` → summary, exit code."""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import click
from click.core import ParameterSource

from ..engine import BulkUpdater
from ..errors import (
    BulkUpdaterError,
    ConfigError,
    InputLockedError,
    InputModifiedError,
    ReportLockedError,
    StateLockedError,
)
from ..inputs import ColumnMap, Source
from ..inputs.encoding import DROP_ENCODING
from ..models import StopReason, Summary
from ..printable import escape
from ..progress import Progress
from ..report import default_report_path
from ..settings import ENV_VARIABLES
from ..state import state_path
from .dryrun import show_dry_run
from .job import (
    counted_rows,
    exit_before_start,
    job,
    log_requests,
    log_warnings,
    run_async,
    signals_held,
)
from .jobfile import job_options, read_job, save_job
from .options import (
    build_settings,
    dry_run_key,
    input_options,
    passwords_in_argv,
    read_key,
    settings_options,
    unused_options,
)
from .outputs import check_outputs
from .summary import (
    EXIT_ABORTED,
    EXIT_LOCKED,
    EXIT_ROWS,
    EXIT_USAGE,
    Problems,
    exit_code,
    format_summary,
    next_step,
    now_iso,
    summary_data,
    worth_telling,
    write_summary,
)


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    click.echo(f"bulk-updater: error: {escape(message)}", err=True)
    sys.exit(code)


@dataclass(frozen=True)
class RunOptions:
    """What the command line gives beyond the settings: where to read and write, and how."""

    input_path: str
    report: Path | None
    api_key_file: Path | None
    resume: bool
    dry_run: bool
    summary_json: Path | None
    rejects: Path | None
    quiet: bool
    verbose: bool

    def report_for(self, source: Source) -> Path:
        return self.report or default_report_path(self.input_path if source.rereadable else "-")


def open_source(inputs: dict[str, Any], input_path: str) -> Source:
    """The input, checked as a whole: its header, then its encoding in the fingerprint pass."""
    mapping = ColumnMap.parse(inputs.pop("column_map") or ())
    source = Source(input_path, columns=mapping, **inputs)
    try:
        source.check()
    except BaseException:
        source.close()
        raise
    return source


@click.command()
@click.argument("input_path", metavar="INPUT", type=str)
@click.option(
    "--report",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Report file, .csv or .jsonl  [default: INPUT.report.csv]",
)
@input_options
@click.option(
    "--rejects",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the rows not updated, as read, with _status and _message, to fix and reload.",
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
@job_options
@click.option(
    "-q",
    "--quiet",
    is_flag=True,
    help="Print nothing when every row was updated; else errors and the summary (for cron).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log every request (the key is never shown).")
def run(**params: Any) -> None:
    """Send one PATCH per row of INPUT (CSV, JSON lines or .xlsx; '-' reads standard input)."""
    exit_before_start()  # opening the input may block (a pipe), and nothing is read yet
    job_file = _job_file(params)
    options = RunOptions(**{name: params.pop(name) for name in RunOptions.__dataclass_fields__})
    inputs = {name: params.pop(name) for name in list(params) if name in _INPUT_NAMES}
    inputs.update({name: params[name] for name in _READING if params.get(name) is not None})
    hidden_rows = os.environ.get(ENV_VARIABLES["hidden_rows"], "").strip()
    inputs.setdefault("hidden_rows", hidden_rows or "skip")  # as `Settings` reads it
    if options.quiet and options.verbose:
        fail("-q and -v cannot be used together; choose one")
    redact = log_requests() if options.verbose else None
    if redact is None:
        log_warnings()
    if (exposed := passwords_in_argv(click.get_current_context(), params)) is not None:
        logging.getLogger("bulk_updater").warning("%s", exposed)
    try:
        source = open_source(inputs, options.input_path)
        if (unused := unused_options(inputs, source.format)) is not None:
            logging.getLogger("bulk_updater").warning("%s", unused)
        if options.dry_run:  # refused as the real run would be; a key only if it must
            settings = build_settings(params, dry_run_key(params, options.api_key_file))
            check_outputs(source, options.report_for(source), *_extra_outputs(options))
            state = state_path(settings) if settings.skip_unchanged else None
            job_file.save(source)
            sys.exit(show_dry_run(source, match=settings.match, quiet=options.quiet, state=state))
        key = read_key(options.api_key_file)
        if redact is not None:
            redact.key = key
        updater = BulkUpdater(settings=build_settings(params, key))
        if options.resume and not source.rereadable:
            raise ConfigError(
                f"--resume needs an input file that can be read again; {source.name} cannot"
            )
        check_outputs(source, options.report_for(source), *_extra_outputs(options))
        job_file.save(source)
    except ReportLockedError as exc:
        fail(str(exc), EXIT_LOCKED)
    except InputModifiedError as exc:  # still being written: nothing was sent
        fail(str(exc), EXIT_ABORTED)
    except BulkUpdaterError as exc:
        fail(job_file.words(str(exc)))
    _execute(updater, source, options)


@dataclass(frozen=True)
class _JobFile:
    """The options as given (the command line over `--job`), to save with `--save-job`."""

    params: dict[str, Any]
    given: set[str]
    save_to: Path | None
    encoding_from: Path | None  # the job file that gave the encoding, if one did

    def words(self, message: str) -> str:
        """`message`, saying to change the job file where the encoding it gave is wrong."""
        if self.encoding_from is None:
            return message
        drop = DROP_ENCODING.format(self.params["encoding"])
        return message.replace(drop, f'set encoding = "utf-8" in the job file {self.encoding_from}')

    def save(self, source: Source) -> None:
        """Once the options proved good: the job file never keeps options that fail."""
        if self.save_to is None:
            return
        if not source.is_stdin and Path(source.path).resolve() == self.save_to.resolve():
            raise ConfigError(f"--save-job {self.save_to}: is the input file; choose another name")
        save_job(click.get_current_context(), self.params, self.given, self.save_to)


def _job_file(params: dict[str, Any]) -> _JobFile:
    """`--job` read into `params` (flags given win), `--save-job` kept for later."""
    try:
        given = read_job(click.get_current_context(), params)
    except BulkUpdaterError as exc:
        fail(str(exc))
    path = params.pop("job")
    save_to = params.pop("save_job")
    ctx = click.get_current_context()
    given_here = ctx.get_parameter_source("encoding") is not ParameterSource.DEFAULT
    from_job = params.get("encoding") is not None and not given_here
    return _JobFile(dict(params), given, save_to, path if from_job else None)


_INPUT_NAMES = frozenset(
    {"format", "column_map", "keep", "ignore_unknown_columns", "delimiter", "encoding", "sheet"}
)
#: Settings that also say how to read the input: given to `Source` as well.
_READING = ("tags_separator", "header_row", "hidden_rows")


def _extra_outputs(options: RunOptions) -> tuple[Path | None, Path | None]:
    return options.summary_json, options.rejects


def _execute(updater: BulkUpdater, source: Source, options: RunOptions) -> NoReturn:
    problems = Problems()
    started_at = now_iso()
    report = options.report_for(source)

    def interrupted(code: int, message: str) -> None:
        _write_failed(options, source, report, started_at, message, code, "interrupted")

    exit_before_start("before any row was sent", interrupted)
    started: list[bool] = []
    progress = None if options.quiet else _progress(updater, options)

    def on_start() -> None:
        """Every lock held: `--summary-json` is this run's now (else the running job's)."""
        started.append(True)
        if options.summary_json is not None:
            running = {"state": "running", "started_at": started_at, "input": source.name}
            with signals_held():  # a signal's `interrupted` must not meet a half-written `running`
                write_summary(options.summary_json, running)
        if progress is not None:
            progress.total = counted_rows(source, interrupted)

    try:
        summary, signum = run_async(
            job(updater, source, progress, problems, report=report, resume=options.resume,
                rejects=options.rejects, on_start=on_start)
        )  # fmt: skip
    except (ReportLockedError, StateLockedError, InputLockedError) as exc:
        if started:  # refused before it started, it leaves the holder's summary alone
            _write_failed(options, source, report, started_at, str(exc), EXIT_LOCKED)
        fail(str(exc), EXIT_LOCKED)
    except InputModifiedError as exc:  # changed as the job hashed it: nothing was sent
        _write_failed(options, source, report, started_at, str(exc), EXIT_ABORTED)
        fail(str(exc), EXIT_ABORTED)
    except BulkUpdaterError as exc:  # before any request: a changed input, an unreachable Redis
        _write_failed(options, source, report, started_at, str(exc), EXIT_USAGE)
        fail(str(exc))
    except OSError as exc:  # a full disk, a vanished input: what is done stays in the report
        where = exc.filename or report
        message = f"{where}: {exc.strerror or exc}; fix it and rerun with --resume"
        _write_failed(options, source, report, started_at, message, EXIT_ABORTED)
        fail(message, EXIT_ABORTED)
    _finish(summary, signum, source, options, started_at, problems)


def _progress(updater: BulkUpdater, options: RunOptions) -> Progress:
    live = sys.stderr.isatty() and not options.verbose
    return Progress(
        sys.stderr,
        total=None,  # counted once the run holds its locks (`counted_rows`)
        live=live,
        interval=0.2 if live else 5.0,
        rate=updater.rate_now,
        later=None if live else 60.0,  # a log read later: a line a minute after the first
    )


def _write_failed(
    options: RunOptions,
    source: Source,
    report: Path,
    started_at: str,
    message: str,
    code: int,
    state: str = "failed",
) -> None:
    """`--summary-json` of a run that ended without a summary: it must not stay `running`."""
    if options.summary_json is not None:
        write_summary(
            options.summary_json,
            {"state": state, "exit_code": code, "stop_message": message,
             "started_at": started_at, "finished_at": now_iso(), "input": source.name,
             "report": str(report)},
        )  # fmt: skip


def _finish(
    summary: Summary,
    signum: int | None,
    source: Source,
    options: RunOptions,
    started_at: str,
    problems: Problems,
) -> NoReturn:
    code = exit_code(summary, signum)
    not_read = None
    # A changed input's rows are not counted: they are another export's, or not all written.
    if summary.stopped not in (None, StopReason.INPUT_CHANGED) and source.rereadable:
        total = source.count()
        not_read = max(0, total - summary.rows) if total is not None else None
    if options.summary_json is not None:
        data = summary_data(
            summary,
            code=code,
            source=source.name,
            started_at=started_at,
            not_read=not_read,
            rejects=options.rejects,
        )
        if not write_summary(options.summary_json, data, final=True) and code <= EXIT_ROWS:
            code = EXIT_ABORTED  # a monitor reads a stale file there: cron must hear of it
    if worth_telling(summary, code, quiet=options.quiet):
        step = next_step(summary, rereadable=source.rereadable, rejects=options.rejects)
        text = format_summary(
            summary,
            not_read=not_read,
            rejects=options.rejects,
            problems=problems.lines,
            next_step=step,
        )
        click.echo(text)
    sys.exit(code)

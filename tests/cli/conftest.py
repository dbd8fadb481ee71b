"""Helpers for the CLI tests: `bulk-updater run` in a child process against a `SandboxThread`.

Every run is `python -m bulk_updater run ...` with pipes (not a terminal) for its output, so its
output must be plain text (`assert_plain`). Waiting is always on an event: the sandbox's
notification after each request (`wait_until`), or `proc.wait(timeout=...)`.
"""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from bulk_updater import Status
from bulk_updater.sandbox import SandboxThread
from tests.conftest import read_report, unmeasured, write_csv

KEY = "sk_live_7fQ2mX9pLr4TzW8cKj3N"
WRONG_KEY = "sk_live_WRONGwrong0Hq5Yv1Ue6Ds"
PLATFORM_KEY = "sk_user_4bN8cD2eF6gH0jK3"
STATUSES = frozenset(status.value for status in Status)
HEADER = ("id", "email", "jobTitle", "tags", "customFields.tier")
#: Anything but printable text and newlines: carriage returns, escapes, other C0/C1 controls.
CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")
#: How long `running()` waits for a child to end after SIGTERM before it kills it.
STOP_TIMEOUT = 20.0


# ---------------------------------------------------------------------------------------------
# running the command


def clean_env(**extra: str) -> dict[str, str]:
    """The parent's environment without any SENDKIT_* setting, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENDKIT_")}
    env.update(extra)
    return env


def command(*args: str | os.PathLike[str], subcommand: str = "run") -> list[str]:
    return [sys.executable, "-m", "bulk_updater", *subcommand.split(), *map(str, args)]


class Result(NamedTuple):
    code: int
    out: str
    err: str


def cli(
    *args: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    cwd: Path,
    timeout: float = 30.0,
    subcommand: str = "run",
) -> Result:
    """Run the CLI to the end (`bulk-updater run`, or `subcommand`); its output, off a terminal,
    must be plain text."""
    done = subprocess.run(
        command(*args, subcommand=subcommand),
        env=clean_env(SENDKIT_API_KEY=KEY) if env is None else dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert_plain(done.stdout, done.stderr)
    return Result(done.returncode, done.stdout, done.stderr)


def start(
    *args: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    cwd: Path,
    killed: bool = False,
) -> subprocess.Popen[str]:
    """Start the CLI; `killed`: the test will SIGKILL it, so it runs unmeasured (`unmeasured`)."""
    environ = clean_env(SENDKIT_API_KEY=KEY) if env is None else dict(env)
    return subprocess.Popen(
        command(*args),
        env=unmeasured(environ) if killed else environ,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@contextmanager
def running(proc: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    """Never leave a child behind, whatever the test does: SIGTERM first, so that a child ends
    as it should (and saves its coverage data whole); SIGKILL only for one that does not."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
        proc.communicate(timeout=10)


def finish(proc: subprocess.Popen[str], timeout: float) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate(timeout=10)
        pytest.fail(f"the run did not exit within {timeout}s; stderr: {err[-2000:]}")
    assert_plain(out, err)
    return proc.returncode, out, err


# ---------------------------------------------------------------------------------------------
# checks


def assert_plain(*texts: str) -> None:
    for text in texts:
        bad = CONTROL.search(text)
        assert bad is None, f"control character {bad.group()!r} in output: {text[-500:]!r}"


def wait_until(sb: SandboxThread, condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Wait on the sandbox's own notifications (after every request) until `condition` holds."""
    if not sb.wait_until(condition, timeout):
        pytest.fail(f"timed out after {timeout}s waiting for {what}")


def wait_for_line(proc: subprocess.Popen[str], text: str, timeout: float) -> None:
    """Read the run's stderr as it comes until a line holds `text`."""
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    seen = ""
    while text not in seen:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([proc.stderr], [], [], left)[0]:
            pytest.fail(f"no {text!r} on stderr within {timeout}s; got {seen!r}")
        line = proc.stderr.readline()
        if not line:
            pytest.fail(f"stderr closed before {text!r}; got {seen!r}")
        seen += line


def applied(sb: SandboxThread) -> int:
    return sum(sb.state.applied_by_lead.values())


# ---------------------------------------------------------------------------------------------
# input files and reports


def update_row(index: int, lead_id: str) -> dict[str, str]:
    return {
        "id": lead_id,
        "email": f"lead{index}@example.com",
        "jobTitle": f"Title {index}",
        "tags": "vip;q3",
        "customFields.tier": f"t{index}",
    }


def job_input(
    tmp_path: Path, leads: Mapping[str, Any], name: str = "updates.csv"
) -> tuple[Path, list[str]]:
    """One update row per lead, in lead order; returns the file and the ids in row order."""
    ids = list(leads)
    write_csv(tmp_path / name, HEADER, [update_row(i, lead_id) for i, lead_id in enumerate(ids)])
    return tmp_path / name, ids


def mixed_input(tmp_path: Path, leads: Mapping[str, Any]) -> Path:
    ids = list(leads)
    rows = [update_row(i, lead_id) for i, lead_id in enumerate(ids)]
    rows.append(update_row(90, "ffffffffffffffffffffffff"))  # no such lead
    rows.append(update_row(91, "not/a/plain/id"))  # invalid, never sent
    return write_csv(tmp_path / "mixed.csv", HEADER, rows)


def expected_lead(original: Mapping[str, Any], index: int) -> dict[str, Any]:
    lead = dict(original)
    lead["jobTitle"] = f"Title {index}"
    lead["tags"] = ["vip", "q3"]
    lead["customFields"] = {**original["customFields"], "tier": f"t{index}"}
    return lead


def read_run_report(path: Path) -> list[dict[str, str]]:
    """The report's records whose status is known (a killed run may leave a partial line)."""
    return [r for r in read_report(path) if r.get("status") in STATUSES]


def leaks(secret: str, out: str, err: str, folder: Path, skip: Sequence[Path] = ()) -> list[str]:
    """Where `secret` shows up: the output streams and every file under `folder`."""
    found = [name for name, text in (("stdout", out), ("stderr", err)) if secret in text]
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path not in skip and secret.encode() in path.read_bytes():
            found.append(str(path))
    return found

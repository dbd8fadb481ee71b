"""What the command line says: errors in its own words naming the flag, a dry run that checks
what a real run checks, an interrupted run that says what is left, and honest durations."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from bulk_updater.sandbox import SandboxThread
from tests.cli.conftest import (
    KEY,
    clean_env,
    cli,
    finish,
    job_input,
    read_run_report,
    running,
    start,
    wait_until,
)
from tests.conftest import make_leads


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--rate", "-1"), "--rate: must be 0 or more"),
        (("--rate", "fast"), "--rate: must be a number of requests per second, or auto"),
        (("--concurrency", "0"), "--concurrency: must be 1 or more"),
        (("--timeout", "0"), "--timeout: must be more than 0"),
        (("--stop-after-failures", "0"), "--stop-after-failures: must be 1 or more"),
        (("--base-url", "http://api.sendkit.ai"), "--base-url: 'http://api.sendkit.ai' is plain"),
        (("-q", "-v"), "-q and -v cannot be used together"),
    ],
)
def test_a_bad_setting_is_named_by_its_flag(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    source, _ = job_input(tmp_path, make_leads(1))
    code, out, err = cli(source, *args, cwd=tmp_path)
    assert code == 2, out + err
    assert message in err
    assert "Input should be" not in err  # pydantic's words stay inside
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--base-url", "https://api.sendkit.ai/v1"), "--base-url"),
        (("--rate", "-3"), "--rate: must be 0 or more"),
        (("--report", "out.txt"), "out.txt"),
    ],
)
def test_a_dry_run_refuses_what_the_real_run_would(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    source, _ = job_input(tmp_path, make_leads(2))
    code, out, err = cli(source, "--dry-run", *args, cwd=tmp_path)
    assert code == 2, out + err
    assert message in err
    assert "nothing was sent" not in out


def test_an_interrupted_run_says_how_many_rows_were_not_read(tmp_path: Path) -> None:
    leads = make_leads(600)
    source, _ = job_input(tmp_path, leads)
    summary = tmp_path / "s.json"
    with SandboxThread(leads, api_key=KEY) as sb:
        args = ("--base-url", sb.url, "--rate", "20", "--summary-json", summary)
        with running(start(source, *args, cwd=tmp_path)) as proc:
            wait_until(sb, lambda: sb.state.requests >= 5, 15, "the run's first requests")
            proc.send_signal(signal.SIGINT)
            code, out, err = finish(proc, timeout=20)
    assert code == 130, out + err
    data = json.loads(summary.read_text())
    not_read = data["not_read"]
    assert not_read == 600 - data["rows"]
    assert not_read > 0
    assert f"{not_read} more rows were not read; --resume continues" in out


def test_duration_counts_from_the_first_request_and_is_empty_when_nothing_was_sent(
    tmp_path: Path,
) -> None:
    leads = make_leads(6)
    source, _ = job_input(tmp_path, leads)
    with source.open("a") as file:
        file.write("not/a/valid/id,x,CTO,,\n")
    with SandboxThread(leads, api_key=KEY, latency_ms=20) as sb:
        code, out, err = cli(source, "--base-url", sb.url, "--rate", "2", cwd=tmp_path)
    assert code == 1, out + err
    lines = read_run_report(tmp_path / "updates.csv.report.csv")
    sent = [line for line in lines if line["status"] == "updated"]
    assert len(sent) == 6
    # at --rate 2 the later rows wait seconds for their slot; that wait is not their duration
    assert all(10 <= int(line["duration_ms"]) < 400 for line in sent), [
        line["duration_ms"] for line in sent
    ]
    (invalid,) = [line for line in lines if line["status"] == "invalid"]
    assert invalid["duration_ms"] == ""


REDIS_PASSWORD = "S3cretPw!"
PROXY_PASSWORD = "Pr0xyPw"


@pytest.mark.parametrize(
    ("flags", "env", "warning"),
    [
        (("--redis", f"redis://:{REDIS_PASSWORD}@127.0.0.1:1/0"), {},
         "--redis holds a password, visible to other users in ps; use BULK_UPDATER_REDIS_URL "
         "instead"),
        (("--redis", f"redis://:{REDIS_PASSWORD}@127.0.0.1:1/0",
          "--proxy", f"http://me:{PROXY_PASSWORD}@127.0.0.1:3128"), {},
         "--redis and --proxy hold passwords, visible to other users in ps; use "
         "BULK_UPDATER_REDIS_URL / HTTPS_PROXY instead"),
        (("--redis", "redis://127.0.0.1:1/0"), {}, None),
        ((), {"BULK_UPDATER_REDIS_URL": f"redis://:{REDIS_PASSWORD}@127.0.0.1:1/0"}, None),
    ],
)  # fmt: skip
def test_a_password_on_the_command_line_is_warned_about_once_and_never_shown(
    tmp_path: Path, flags: tuple[str, ...], env: dict[str, str], warning: str | None
) -> None:
    """`ps` shows any local user the command line for the whole run: the key has no flag for
    that reason, and a URL with a password on it is warned about (S11)."""
    source, _ = job_input(tmp_path, make_leads(2))
    code, out, err = cli(source, "--dry-run", *flags, env=clean_env(**env), cwd=tmp_path)
    assert code == 0, out + err
    warnings = [line for line in err.splitlines() if "ps;" in line]
    assert warnings == ([f"bulk-updater: warning: {warning}"] if warning else [])
    assert REDIS_PASSWORD not in out + err
    assert PROXY_PASSWORD not in out + err

"""The key, the base URL and the workspace: where the key comes from, that it is never written
anywhere, a refused key (exit 3), plain http to a remote host, header values that cannot be sent."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bulk_updater import ConfigError
from bulk_updater.cli.options import MAX_KEY_FILE, read_key_file
from bulk_updater.report.meta import read_meta
from bulk_updater.sandbox import SandboxThread
from tests.cli.conftest import (
    KEY,
    PLATFORM_KEY,
    WRONG_KEY,
    clean_env,
    cli,
    finish,
    job_input,
    leaks,
    mixed_input,
    read_run_report,
    running,
    start,
)
from tests.conftest import make_leads


def test_no_key_exits_2_with_a_clear_message(tmp_path: Path) -> None:
    leads = make_leads(2)
    source, _ = job_input(tmp_path, leads)
    (tmp_path / "empty.key").write_text("\n")
    with SandboxThread(leads, api_key=KEY) as sb:
        code, out, err = cli(source, "--base-url", sb.url, env=clean_env(), cwd=tmp_path)
        assert code == 2, out + err
        assert "SENDKIT_API_KEY" in err
        code, out, err = cli(
            source,
            "--base-url",
            sb.url,
            "--api-key-file",
            tmp_path / "empty.key",
            env=clean_env(),
            cwd=tmp_path,
        )
        assert code == 2, out + err
        assert "empty.key" in err
        assert sb.state.requests == 0


def test_key_from_a_file(tmp_path: Path) -> None:
    leads = make_leads(3)
    source, _ = job_input(tmp_path, leads)
    key_file = tmp_path / "sendkit.key"
    key_file.write_text(KEY + "\n")
    with SandboxThread(leads, api_key=KEY) as sb:
        code, out, err = cli(
            source,
            "--base-url",
            sb.url,
            "--rate",
            "0",
            "--api-key-file",
            key_file,
            env=clean_env(),
            cwd=tmp_path,
        )
        assert sum(sb.state.applied_by_lead.values()) == 3
    assert code == 0, out + err


@pytest.mark.parametrize("scenario", ["accepted", "refused", "from_file"])
def test_key_appears_in_nothing_the_program_writes(tmp_path: Path, scenario: str) -> None:
    leads = make_leads(20)
    source = mixed_input(tmp_path, leads)
    key = WRONG_KEY if scenario == "refused" else KEY
    env = clean_env(SENDKIT_API_KEY=key)
    extra: tuple[str | Path, ...] = ()
    key_file = tmp_path / "secret" / "key.txt"
    if scenario == "from_file":
        key_file.parent.mkdir()
        key_file.write_text(key)
        env = clean_env()
        extra = ("--api-key-file", key_file)
    with SandboxThread(leads, api_key=KEY) as sb:
        code, out, err = cli(
            source,
            "--base-url",
            sb.url,
            "--rate",
            "0",
            "-v",
            "--summary-json",
            tmp_path / "summary.json",
            *extra,
            env=env,
            cwd=tmp_path,
        )
    assert code == (3 if scenario == "refused" else 1), out + err
    assert read_meta((tmp_path / "mixed.csv.report.csv").resolve()) is not None
    assert (tmp_path / "summary.json").is_file()
    assert leaks(key, out, err, tmp_path, skip=[key_file]) == []


def test_refused_key_stops_the_job_with_exit_3(tmp_path: Path) -> None:
    leads = make_leads(200)
    source, ids = job_input(tmp_path, leads)
    report = tmp_path / "report.csv"
    env = clean_env(SENDKIT_API_KEY=WRONG_KEY)
    with SandboxThread(leads, api_key=KEY) as sb:
        args = ("--base-url", sb.url, "--report", report, "--rate", "0", "--concurrency", "4")
        code, out, err = cli(source, *args, env=env, cwd=tmp_path)
        assert sb.state.requests <= 4  # at most the requests already in flight
        assert sum(sb.state.applied_by_lead.values()) == 0
        quiet = cli(source, *args, "-q", env=env, cwd=tmp_path)
    assert code == 3, out + err
    assert "refused" in out + err
    rows = read_run_report(report)
    assert [r["id"] for r in rows] == ids
    assert {r["status"] for r in rows} == {"aborted"}
    assert quiet.code == 3
    assert "refused" in quiet.out + quiet.err


@pytest.mark.parametrize(
    ("flag", "env_url"),
    [
        (("--base-url", "http://api.sendkit.ai"), None),
        ((), "http://10.1.2.3:8080"),
    ],
)
def test_plain_http_to_a_remote_host_is_refused(
    tmp_path: Path, flag: tuple[str, ...], env_url: str | None
) -> None:
    source, _ = job_input(tmp_path, make_leads(2))
    env = clean_env(SENDKIT_API_KEY=KEY)
    if env_url is not None:
        env["SENDKIT_BASE_URL"] = env_url
    code, out, err = cli(source, *flag, env=env, cwd=tmp_path, timeout=15)
    assert code == 2, out + err
    assert "http" in err
    assert "Traceback" not in err
    assert not (tmp_path / "updates.csv.report.csv").exists()


@pytest.mark.parametrize("how", ["none", "flag", "env"])
def test_workspace_id_is_sent_for_a_platform_key(tmp_path: Path, how: str) -> None:
    leads = make_leads(4)
    source, _ = job_input(tmp_path, leads)
    env = clean_env(SENDKIT_API_KEY=PLATFORM_KEY)
    extra: tuple[str, ...] = ()
    if how == "flag":
        extra = ("--workspace-id", "ws_123")
    elif how == "env":
        env["SENDKIT_WORKSPACE_ID"] = "ws_123"
    with SandboxThread(leads, api_key=PLATFORM_KEY) as sb:
        code, out, err = cli(
            source, "--base-url", sb.url, "--rate", "0", *extra, env=env, cwd=tmp_path
        )
        applied = sum(sb.state.applied_by_lead.values())
        refused = sb.state.auth_failures
    if how == "none":
        assert code == 3, out + err
        assert "refused" in out + err
        assert (applied, refused > 0) == (0, True)
    else:
        assert code == 0, out + err
        assert (applied, refused) == (4, 0)


@pytest.mark.parametrize(
    "what", ["key_file_with_two_lines", "key_with_control_char", "key_not_ascii", "workspace_id"]
)
def test_header_values_that_cannot_be_sent_are_a_usage_error(tmp_path: Path, what: str) -> None:
    """A key file with a second line, a control character or a non-ASCII one in the key, or a
    line break in the workspace id cannot go into an HTTP header: exit 2 with a message, no
    crash, no hang."""
    leads = make_leads(3)
    source, _ = job_input(tmp_path, leads)
    key_file = tmp_path / "sendkit.key"
    key_file.write_text(KEY + "\n# production key, rotated 2026-01\n")
    env = clean_env(SENDKIT_API_KEY=KEY)
    extra: tuple[str | Path, ...] = ()
    if what == "key_file_with_two_lines":
        env, extra = clean_env(), ("--api-key-file", key_file)
    elif what == "key_with_control_char":
        env = clean_env(SENDKIT_API_KEY=KEY[:8] + "\x01" + KEY[8:])
    elif what == "key_not_ascii":  # a non-breaking space pasted in
        env = clean_env(SENDKIT_API_KEY=KEY[:8] + "\u00a0" + KEY[8:])
    else:
        extra = ("--workspace-id", "ws_1\nX-Injected: 1")
    with SandboxThread(leads, api_key=KEY) as sb:
        with running(start(source, "--base-url", sb.url, *extra, env=env, cwd=tmp_path)) as proc:
            code, out, err = finish(proc, timeout=15)
        assert sum(sb.state.applied_by_lead.values()) == 0
    assert code == 2, out + err
    assert "Traceback" not in err
    assert ("workspace" if what == "workspace_id" else "key") in err.lower()
    assert KEY[8:] not in out + err


# --- a key file that is not one: refused at once, whatever it is


@pytest.mark.parametrize(
    ("what", "problem"),
    [
        ("huge", "holds more than 4 KiB"),  # a 50 MB file (sparse: its zeros cost no disk)
        ("one_byte_too_many", "holds more than 4 KiB"),
        ("dev_zero", "is a directory or a device"),
        ("dev_urandom", "is a directory or a device"),
        ("directory", "is a directory or a device"),
        ("fifo_without_writer", "is empty"),  # opening it would wait for a writer forever
    ],
)
def test_a_key_file_that_is_no_key_is_refused_at_once(
    tmp_path: Path, what: str, problem: str
) -> None:
    path = tmp_path / "key"
    if what == "huge":
        path.write_bytes(b"sk_live_abc")
        os.truncate(path, 50 << 20)
    elif what == "one_byte_too_many":
        path.write_bytes(b"k" * (MAX_KEY_FILE + 1))
    elif what == "directory":
        path.mkdir()
    elif what == "fifo_without_writer":
        os.mkfifo(path)
    else:
        path = Path("/dev/" + what.removeprefix("dev_"))
    with pytest.raises(ConfigError, match=problem) as caught:
        read_key_file(path)
    assert str(caught.value).startswith(f"--api-key-file {path}: ")


def test_a_key_file_of_the_most_bytes_is_read(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_bytes(b"k" * (MAX_KEY_FILE - 1) + b"\n")
    assert read_key_file(path) == "k" * (MAX_KEY_FILE - 1)


def test_a_key_file_saved_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    """Notepad saves UTF-8 with a BOM: it is no part of the key (it was refused as not ASCII,
    with a hint about curly quotes that pointed the wrong way)."""
    path = tmp_path / "key"
    path.write_bytes(b"\xef\xbb\xbf" + KEY.encode() + b"\r\n")
    assert read_key_file(path) == KEY


@pytest.fixture
def pipe() -> Iterator[tuple[Path, int]]:
    """A pipe as a shell's `<(command)` gives it: a `/dev/fd/N` path, and its writing end."""
    read_end, write_end = os.pipe()
    try:
        yield Path(f"/dev/fd/{read_end}"), write_end
    finally:
        os.close(read_end)


def test_a_key_from_a_pipe_is_read_when_its_writer_is_slow(pipe: tuple[Path, int]) -> None:
    path, write_end = pipe

    def write() -> None:
        os.write(write_end, KEY[:10].encode())
        os.write(write_end, KEY[10:].encode() + b"\n")
        os.close(write_end)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert read_key_file(path) == KEY
    finally:
        writer.join()


def test_an_endless_pipe_is_refused_once_it_gave_more_than_a_key(pipe: tuple[Path, int]) -> None:
    path, write_end = pipe
    os.write(write_end, b"y" * (MAX_KEY_FILE + 1))  # within a pipe's buffer; never closed
    try:
        with pytest.raises(ConfigError, match="holds more than 4 KiB"):
            read_key_file(path)
    finally:
        os.close(write_end)


@pytest.mark.parametrize("subcommand", ["run", "state info"])
def test_dev_zero_as_the_key_file_exits_2_at_once(tmp_path: Path, subcommand: str) -> None:
    source, _ = job_input(tmp_path, make_leads(2))
    args = (source,) if subcommand == "run" else ()
    code, out, err = cli(
        *args, "--api-key-file", "/dev/zero", env=clean_env(), cwd=tmp_path,
        subcommand=subcommand, timeout=20,
    )  # fmt: skip
    assert code == 2, out + err
    assert err.count("\n") == 1
    assert "--api-key-file /dev/zero: is a directory or a device, not a file" in err

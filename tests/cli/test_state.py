"""`--skip-unchanged` on the command line: the default state file, `state info` / `state forget`,
and `--dry-run --skip-unchanged`, which reads the state and never writes it."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bulk_updater.sandbox import SandboxThread
from bulk_updater.state import Account, StateFile
from tests.cli.conftest import KEY, WRONG_KEY, Result, clean_env, cli, command, job_input
from tests.conftest import make_leads, remembered, write_csv


def test_nights_with_the_accounts_default_state_file(tmp_path: Path) -> None:
    leads = make_leads(20)
    source, ids = job_input(tmp_path, leads)
    env = clean_env(SENDKIT_API_KEY=KEY, XDG_STATE_HOME=str(tmp_path / "xdg"))
    with SandboxThread(leads, api_key=KEY) as sb:
        base = ("--base-url", sb.url, "--rate", "0", "--skip-unchanged")
        code, out, err = cli(source, *base, env=env, cwd=tmp_path)
        assert code == 0, out + err
        state = next((tmp_path / "xdg" / "bulk-updater").glob("*.sqlite3"))
        assert f"state: {state}" in out
        assert KEY not in state.name
        assert len(remembered(state)) == 20

        sb.state.patches_by_lead.clear()
        summary = tmp_path / "summary.json"
        code, out, err = cli(source, *base, "--summary-json", summary, env=env, cwd=tmp_path)
        assert code == 0, out + err  # unchanged counts as done
        assert "unchanged 20" in out
        data = json.loads(summary.read_text())
        assert (data["state"], data["state_file"]) == ("finished", str(state))
        assert data["counts"]["unchanged"] == 20
        assert sum(sb.state.patches_by_lead.values()) == 0

        code, out, err = cli("--base-url", sb.url, env=env, cwd=tmp_path, subcommand="state info")
        assert code == 0, err
        assert f"state: {state}" in out
        assert "leads remembered: 20" in out
        assert "bytes per lead" in out
        assert "updates.csv, started" in out
        assert "20 rows: 0 sent, 20 unchanged, 0 accepted" in out

        forget = ("--base-url", sb.url, ids[0], ids[1], "nope")
        code, out, err = cli(*forget, env=env, cwd=tmp_path, subcommand="state forget")
        assert code == 0, err
        assert "forgot 2 of the 3 leads given" in out
        code, out, err = cli(source, *base, env=env, cwd=tmp_path)
        assert code == 0, out + err
        assert set(sb.state.patches_by_lead) == {ids[0], ids[1]}

        code, out, err = cli("--state", state, env=env, cwd=tmp_path, subcommand="state forget")
        assert code == 0, err
        assert "forgot every lead (20)" in out
        assert remembered(state) == {}


def test_state_commands_find_the_file_or_say_how(tmp_path: Path) -> None:
    env = clean_env(XDG_STATE_HOME=str(tmp_path / "xdg"))
    for sub in ("state forget", "state info --workspace-id ws1"):  # an account needs a key
        code, out, err = cli(env=env, cwd=tmp_path, subcommand=sub)
        assert code == 2
        assert "SENDKIT_API_KEY" in err
        assert "--state PATH" in err
    missing = tmp_path / "none.sqlite3"
    code, out, err = cli("--state", missing, env=env, cwd=tmp_path, subcommand="state info")
    assert (code, "nothing remembered yet" in out) == (0, True)
    code, out, err = cli("--state", missing, env=env, cwd=tmp_path, subcommand="state forget")
    assert (code, "nothing to forget" in out) == (0, True)
    assert not missing.exists()
    junk = tmp_path / "junk.sqlite3"
    junk.write_text("not a database, just text " * 200)
    for sub in ("state info", "state forget"):
        code, out, err = cli("--state", junk, env=env, cwd=tmp_path, subcommand=sub)
        assert code == 2
        assert err.count("\n") == 1
        assert "not a bulk-updater state file" in err


def test_dry_run_says_how_many_rows_would_be_sent_and_writes_nothing(tmp_path: Path) -> None:
    leads = make_leads(10)
    ids = list(leads)
    state = tmp_path / "state.sqlite3"
    rows = [(lead, "Title") for lead in ids] + [(ids[0], "Other"), (ids[0], "Title")]
    source = write_csv(tmp_path / "in.csv", ("id", "jobTitle"), rows)
    dry = (source, "--dry-run", "--skip-unchanged", "--state", state)
    code, out, err = cli(*dry, env=clean_env(), cwd=tmp_path)
    assert code == 0, err
    assert "12 rows would be sent, 0 unchanged (no state file yet" in out
    assert not state.exists()
    with SandboxThread(leads, api_key=KEY) as sb:
        first = write_csv(
            tmp_path / "first.csv", ("id", "jobTitle"), [(i, "Title") for i in ids[:6]]
        )
        code, out, err = cli(
            first, "--base-url", sb.url, "--skip-unchanged", "--state", state, cwd=tmp_path
        )
        assert code == 0, out + err
    before = state.read_bytes()
    code, out, err = cli(*dry, env=clean_env(), cwd=tmp_path)
    assert code == 0, err
    # rows of ids[0..5] are held; ids[0] is set to Other and back, so both of those go
    assert f"6 rows would be sent, 6 unchanged (state: {state})" in out
    assert state.read_bytes() == before

    code, out, err = cli(source, "--dry-run", "--skip-unchanged", env=clean_env(), cwd=tmp_path)
    assert code == 2
    assert "--state PATH" in err

    by_email = write_csv(tmp_path / "emails.csv", ("email", "jobTitle"), [("a@x.com", "T")] * 2)
    code, out, err = cli(by_email, *dry[1:], env=clean_env(), cwd=tmp_path)
    assert code == 0, err
    assert "2 rows would be sent, 0 unchanged" in out
    assert "the 2 rows matched by email are counted as sent" in out


def test_a_state_file_that_is_not_ours_stops_before_any_request(tmp_path: Path) -> None:
    leads = make_leads(3)
    source, _ = job_input(tmp_path, leads)
    state = tmp_path / "state.sqlite3"
    with contextlib.closing(sqlite3.connect(state)) as db:
        db.execute("CREATE TABLE something (x)")
        db.commit()
    with SandboxThread(leads, api_key=KEY) as sb:
        code, _, err = cli(
            source, "--base-url", sb.url, "--skip-unchanged", "--state", state, cwd=tmp_path
        )
        assert code == 2
        assert "not a bulk-updater state file" in err
        assert sb.state.requests == 0


def test_paths_are_written_absolute(tmp_path: Path) -> None:
    """A cron job runs in its own folder: `--summary-json` and `state info` name the input, the
    report and the state file so that they are found from anywhere."""
    leads = make_leads(3)
    job_input(tmp_path, leads)
    with SandboxThread(leads, api_key=KEY) as sb:
        relative = ("--skip-unchanged", "--state", "state.sqlite3", "--summary-json", "s.json")
        code, out, err = cli("updates.csv", "--base-url", sb.url, *relative, cwd=tmp_path)
        assert code == 0, out + err
    data = json.loads((tmp_path / "s.json").read_text())
    assert data["input"] == str(tmp_path / "updates.csv")
    assert data["report"] == str(tmp_path / "updates.csv.report.csv")
    assert data["state_file"] == str(tmp_path / "state.sqlite3")
    code, out, err = cli("--state", "state.sqlite3", cwd=tmp_path, subcommand="state info")
    assert code == 0, err
    assert f"last run: {tmp_path / 'updates.csv'}, started" in out


def test_state_info_without_an_account_lists_every_state_file(tmp_path: Path) -> None:
    leads = make_leads(4)
    source, _ = job_input(tmp_path, leads)
    xdg = {"XDG_STATE_HOME": str(tmp_path / "xdg")}
    folder = tmp_path / "xdg" / "bulk-updater"
    code, out, err = cli(env=clean_env(**xdg), cwd=tmp_path, subcommand="state info")
    nothing = f"state folder: {folder}\n  nothing remembered yet (no state file)\n"
    assert (code, out) == (0, nothing)
    with SandboxThread(leads, api_key=KEY) as sb:
        env = clean_env(SENDKIT_API_KEY=KEY, **xdg)
        code, out, err = cli(
            source, "--base-url", sb.url, "--skip-unchanged", env=env, cwd=tmp_path
        )
        assert code == 0, out + err
        ours, url = next(folder.glob("*.sqlite3")), sb.url
        other = folder / "api.sendkit.ai.k0123456789abcdef.sqlite3"
        StateFile(other, account=Account("https://api.sendkit.ai", "0123456789abcdef")).close()
        code, out, err = cli(env=env, cwd=tmp_path, subcommand="state info")
    assert code == 0, err
    assert out.startswith(f"state folder: {folder}\n")
    first, second = out.split("state: ")[1:]  # by file name
    assert first.startswith(f"{ours}\n  account: {url}, key sha256 ")
    assert "leads remembered: 4" in first
    assert second.startswith(f"{other}\n  account: https://api.sendkit.ai, key sha256 0123")
    assert "leads remembered: 0" in second
    assert KEY not in out
    junk = folder / "junk.sqlite3"
    junk.write_text("not a database, just text " * 200)
    code, out, err = cli(env=env, cwd=tmp_path, subcommand="state info")
    assert code == 2  # said, and the others shown all the same
    assert (
        err
        == f"bulk-updater: error: {junk}: not a bulk-updater state file (file is not a database)\n"
    )
    assert out.count("\nstate: ") == 2


def test_a_state_file_of_another_account_stops_before_any_request(tmp_path: Path) -> None:
    leads = make_leads(3)
    source, _ = job_input(tmp_path, leads)
    state = tmp_path / "state.sqlite3"
    with SandboxThread(leads, api_key=KEY) as sb:
        base = ("--base-url", sb.url, "--skip-unchanged", "--state", state)
        code, out, err = cli(source, *base, cwd=tmp_path)
        assert code == 0, out + err
        sb.state.requests = 0
        code, out, err = cli(source, *base, env=clean_env(SENDKIT_API_KEY=WRONG_KEY), cwd=tmp_path)
        assert code == 2
        assert sb.state.requests == 0
        assert f"{state}: the state file of another account ({sb.url}, key sha256 " in err
        assert f"; this run: {sb.url}, key sha256 " in err
    assert err.count("\n") == 1
    assert KEY not in err
    assert WRONG_KEY not in err


def test_state_commands_while_a_run_holds_the_file(tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite3"
    run = StateFile(state)  # as a run holds it, in this process
    run.begin("/srv/sync/nightly.csv")
    try:
        code, out, err = cli("--state", state, cwd=tmp_path, subcommand="state info")
        assert code == 0, err
        assert "last run: /srv/sync/nightly.csv, started " in out
        assert out.endswith(", running now\n")
        code, out, err = cli("--state", state, cwd=tmp_path, subcommand="state forget")
        assert code == 75
        assert err == (
            f"bulk-updater: error: {state}: another run is using this state file (pid "
            f"{os.getpid()}); try again once it is done\n"
        )
    finally:
        run.close()
    code, out, err = cli("--state", state, cwd=tmp_path, subcommand="state info")
    assert "running now" not in out
    assert "0 rows: 0 sent" in out
    code, out, err = cli("--state", state, cwd=tmp_path, subcommand="state forget")
    assert code == 0, err


def test_state_info_counts_damaged_entries(tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite3"
    store = StateFile(state)
    store.begin("in.csv")
    for n in range(3):
        store.change(f"l{n}", {"city": "x"})
    store.close()
    with contextlib.closing(sqlite3.connect(state)) as db:
        db.execute("UPDATE leads SET fields = 'oops' WHERE id = 'l1'")
        db.commit()
    code, out, err = cli("--state", state, cwd=tmp_path, subcommand="state info")
    assert code == 0, err
    assert "  leads remembered: 3\n" in out
    assert (
        "  damaged entries: 1 (unknown: their rows are sent next time, and the entries "
        "rewritten)\n" in out
    )


@contextmanager
def read_only(folder: Path) -> Iterator[list[str]]:
    """What to put before a command so that it sees `folder` read-only: its mode, or for root
    (whom modes do not stop) a read-only bind mount in a mount namespace of its own."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield []
        finally:
            folder.chmod(0o755)
        return
    wrap = ["unshare", "-m", "sh", "-c", 'mount -o bind,ro "$0" "$0" && exec "$@"', str(folder)]
    try:
        probe = subprocess.run([*wrap, "true"], capture_output=True, check=False)
    except FileNotFoundError:
        pytest.skip("root needs unshare(1) to see a folder read-only")
    if probe.returncode != 0:
        pytest.skip(f"root cannot mount a folder read-only here: {probe.stderr!r}")
    yield wrap


def cli_wrapped(wrap: list[str], *args: str | os.PathLike[str], cwd: Path, sub: str) -> Result:
    done = subprocess.run(
        [*wrap, *command(*args, subcommand=sub)],
        env=clean_env(),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def test_a_state_file_on_read_only_storage_is_read(tmp_path: Path) -> None:
    """WAL wants to create an index beside the file: where it cannot, the file is read as it
    is, by `state info` and by `--dry-run --skip-unchanged`."""
    folder = tmp_path / "media"
    folder.mkdir()
    state = folder / "state.sqlite3"
    store = StateFile(state)
    store.begin("in.csv")
    store.wait_committed(store.change("l1", {"jobTitle": "Title"}), timeout=10)
    store.close()
    assert sorted(p.name for p in folder.iterdir()) == ["state.sqlite3"]  # no -wal, no -shm
    source = write_csv(tmp_path / "in.csv", ("id", "jobTitle"), [("l1", "Title"), ("l2", "T")])
    with read_only(folder) as wrap:
        info = cli_wrapped(wrap, "--state", state, cwd=tmp_path, sub="state info")
        dry = (source, "--dry-run", "--skip-unchanged", "--state", state)
        preview = cli_wrapped(wrap, *dry, cwd=tmp_path, sub="run")
    assert info.code == 0, info.err
    assert "  leads remembered: 1\n" in info.out
    assert preview.code == 0, preview.err
    assert f"1 row would be sent, 1 unchanged (state: {state})" in preview.out
    assert sorted(p.name for p in folder.iterdir()) == ["state.sqlite3"]

"""A command imports only what it uses: `run` of a CSV leaves the page, the sandbox, openpyxl and
redis alone, so that a nightly job of a few rows does not pay for them at every start.

The child is `python -m bulk_updater` as `runpy` runs it, with one addition for the test: as it
exits it writes the names in `sys.modules` to a file.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from bulk_updater.sandbox import SandboxThread
from tests.cli.conftest import KEY, Result, assert_plain, clean_env, cli, job_input
from tests.conftest import make_leads

#: What only another command or input needs: the page, the sandbox, .xlsx, `--redis`.
NOT_FOR_A_CSV = ("bulk_updater.ui", "bulk_updater.sandbox", "openpyxl", "redis")

#: `python -m bulk_updater ARGS...` that writes its `sys.modules` to the file its first argument
#: names, at exit (after the command's own `sys.exit`).
_CHILD = """
import atexit, runpy, sys
listing = sys.argv.pop(1)
def save():
    with open(listing, "w", encoding="utf-8") as file:
        file.write("\\n".join(sorted(sys.modules)))
atexit.register(save)
runpy.run_module("bulk_updater", run_name="__main__", alter_sys=True)
"""


def run_listing_modules(
    *args: str | os.PathLike[str], env: Mapping[str, str], cwd: Path
) -> tuple[Result, set[str]]:
    """`bulk-updater run ARGS...` to the end, and the modules it had imported when it exited."""
    listing = cwd / "modules.txt"
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, listing, "run", *args],
        env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert_plain(done.stdout, done.stderr)
    modules = set(listing.read_text(encoding="utf-8").splitlines())
    return Result(done.returncode, done.stdout, done.stderr), modules


def unused(modules: set[str]) -> list[str]:
    """The modules of `NOT_FOR_A_CSV` (or under them) among `modules`."""
    return sorted(
        name for name in modules for top in NOT_FOR_A_CSV if f"{name}.".startswith(f"{top}.")
    )


def test_a_dry_run_of_a_csv_imports_neither_the_page_the_sandbox_openpyxl_nor_redis(
    tmp_path: Path,
) -> None:
    source, _ = job_input(tmp_path, make_leads(2))
    (code, out, err), modules = run_listing_modules(source, "--dry-run", env=clean_env(),
                                                    cwd=tmp_path)  # fmt: skip
    assert code == 0, out + err
    assert "bulk_updater.cli.run" in modules  # the listing is the command's
    assert unused(modules) == []


def test_a_run_of_a_csv_imports_neither_the_page_the_sandbox_openpyxl_nor_redis(
    tmp_path: Path,
) -> None:
    leads = make_leads(2)
    source, _ = job_input(tmp_path, leads)
    with SandboxThread(leads, api_key=KEY) as sb:
        env = clean_env(SENDKIT_API_KEY=KEY)
        (code, out, err), modules = run_listing_modules(source, "--base-url", sb.url, env=env,
                                                        cwd=tmp_path)  # fmt: skip
        assert sb.state.requests == 2
    assert code == 0, out + err
    assert {"bulk_updater.cli.run", "bulk_updater.client", "aiohttp"} <= modules
    assert unused(modules) == []


def test_the_command_lists_every_command_it_imports_only_when_called(tmp_path: Path) -> None:
    code, out, err = cli("--help", subcommand="", env=clean_env(), cwd=tmp_path)
    assert code == 0, out + err
    commands = re.findall(r"^  (\w+)  +\S", out.split("Commands:\n")[1], re.MULTILINE)
    assert commands == ["run", "sandbox", "state", "ui"]
    assert "  ui       Open a guided page to send a file" in out


def test_the_command_says_its_version(tmp_path: Path) -> None:
    code, out, err = cli("--version", subcommand="", env=clean_env(), cwd=tmp_path)
    assert (code, err) == (0, "")
    assert re.fullmatch(r"bulk-updater, version \d+\.\d+\.\d+\S*\n", out)

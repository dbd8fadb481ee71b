"""`bulk-updater sandbox` as a person starts it: a child process, its first lines, its errors.

Output is read by one thread per pipe into a queue, so every wait is on a line arriving (with a
deadline), never on a timer.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import pytest
from click.testing import CliRunner

from bulk_updater.cli import cli
from bulk_updater.sandbox import load_leads

from .conftest import ROOT, SAMPLES

FIRST_LINE = re.compile(r"sandbox: serving (\d+) leads? at (http://127\.0\.0\.1:\d+)")
SECRET = "sk_live_7fQ2mX9pLr4TzW8cKj3N"


def env(**extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SENDKIT_")}
    return {**clean, **extra}


class Child:
    """A running `python -m bulk_updater sandbox ...` whose output arrives line by line."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self._readers: list[threading.Thread] = []
        assert proc.stdout is not None
        assert proc.stderr is not None
        self.out = self._pump(proc.stdout)
        self.err = self._pump(proc.stderr)

    def _pump(self, stream: IO[str]) -> queue.Queue[str | None]:
        lines: queue.Queue[str | None] = queue.Queue()

        def read() -> None:
            for line in stream:
                lines.put(line.rstrip("\n"))
            lines.put(None)  # end of output

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        self._readers.append(reader)
        return lines

    def close(self) -> None:
        """Once the child is gone: let the readers reach the end, then close the pipes."""
        for reader in self._readers:
            reader.join(timeout=20)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

    def line(self, lines: queue.Queue[str | None], timeout: float = 20) -> str | None:
        try:
            return lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no output line within {timeout}s")

    def rest(self, lines: queue.Queue[str | None]) -> list[str]:
        found = []
        while (line := self.line(lines)) is not None:
            found.append(line)
        return found

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=20)


@contextmanager
def sandbox(*args: str, environ: dict[str, str] | None = None) -> Iterator[Child]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bulk_updater", "sandbox", "--port", "0", *args],
        cwd=ROOT,
        env=env() if environ is None else environ,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    child = Child(proc)
    try:
        yield child
    finally:
        if proc.poll() is None:  # SIGTERM first: the child saves its coverage data whole
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        proc.wait(timeout=20)
        child.close()


def fetch(url: str) -> tuple[int, dict[str, str], object]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, dict(response.headers), json.load(response)


def test_without_leads_it_warns_that_every_update_will_be_404() -> None:
    with sandbox() as child:
        first = child.line(child.out)
        assert first is not None
        match = FIRST_LINE.fullmatch(first)
        assert match, first
        url = match[2]
        assert match[1] == "0"
        assert child.line(child.out) == "  key: sk_sandbox_demo"
        assert child.line(child.out) == (
            f"  try: SENDKIT_API_KEY=sk_sandbox_demo bulk-updater run samples/updates.csv"
            f" --base-url {url}"
        )
        assert child.line(child.out) == f"  inspect: curl {url}/_sandbox/leads/<id>"
        warning = child.line(child.err)
        assert warning is not None
        assert warning.startswith("bulk-updater: warning: ")
        for part in ("0 leads", "no --leads", "404", "--leads samples/leads.json"):
            assert part in warning
        assert fetch(f"{url}/_sandbox/leads")[2] == []
        assert child.stop() == 0
        assert child.rest(child.out) == []
        assert child.rest(child.err) == []


def test_a_key_from_the_environment_is_never_printed() -> None:
    leads = load_leads(SAMPLES / "leads.json")
    first_id = next(iter(leads))
    with sandbox("--leads", "samples/leads.json", environ=env(SENDKIT_API_KEY=SECRET)) as child:
        first = child.line(child.out)
        assert first is not None
        match = FIRST_LINE.fullmatch(first)
        assert match, first
        url = match[2]
        assert match[1] == str(len(leads))
        lines = [child.line(child.out) for _ in range(3)]
        assert lines == [
            "  key: from SENDKIT_API_KEY",
            f"  try: bulk-updater run samples/updates.csv --base-url {url}",
            f"  inspect: curl {url}/_sandbox/leads/{first_id}",
        ]
        # The line to copy works as printed: the inspection page needs no key.
        status, _, lead = fetch(f"{url}/_sandbox/leads/{first_id}")
        assert status == 200
        assert lead == leads[first_id]
        assert child.stop() == 0
        rest = child.rest(child.out) + child.rest(child.err)
    assert rest == []  # no warning: it serves leads
    assert SECRET not in "\n".join([first, *map(str, lines), *rest])


def test_a_platform_key_gets_a_workspace_in_the_line_to_copy() -> None:
    environ = env(SENDKIT_API_KEY="sk_user_4bN8cD2eF6gH0jK3")
    with sandbox("--leads", "samples/leads.json", environ=environ) as child:
        child.line(child.out)
        child.line(child.out)
        run = child.line(child.out)
        assert run is not None
        assert run.endswith(" --workspace-id ws_sandbox")
        assert "sk_user_" not in run
        assert child.stop() == 0


def test_an_empty_leads_file_is_warned_about(tmp_path: Path) -> None:
    empty = tmp_path / "none.json"
    empty.write_text("[]", encoding="utf-8")
    with sandbox("--leads", str(empty)) as child:
        first = child.line(child.out)
        assert first is not None
        assert first.startswith("sandbox: serving 0 leads at ")
        warning = child.line(child.err)
        assert warning is not None
        assert f"{empty} holds none" in warning
        assert child.stop() == 0


def test_one_lead_is_said_in_the_singular(tmp_path: Path) -> None:
    one = tmp_path / "one.json"
    one.write_text('[{"_id": "3c1f33c9df3f71ffa532a3df", "email": "a@b.io"}]', encoding="utf-8")
    with sandbox("--leads", str(one)) as child:
        first = child.line(child.out)
        assert first is not None
        assert first.startswith("sandbox: serving 1 lead at ")
        assert child.stop() == 0


def test_options_reach_the_server() -> None:
    args = ("--leads", "samples/leads.json", "--rate", "5", "--headers", "ietf", "--shape", "fixed")
    with sandbox(*args, "--latency-ms", "20", "--seed", "1") as child:
        first = child.line(child.out)
        assert first is not None
        match = FIRST_LINE.fullmatch(first)
        assert match, first
        request = urllib.request.Request(
            f"{match[2]}/v1/leads?search=ava&limit=1", headers={"X-Api-Key": "sk_sandbox_demo"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.headers["RateLimit"] == '"default";r=4;t=1'
            assert response.headers["RateLimit-Policy"] == '"default";q=5;w=1'
            body = json.load(response)
        assert body["pagination"]["limit"] == 1
        assert "ava" in body["data"][0]["email"]
        assert child.stop() == 0


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--headers", "xrl"], "--headers needs a rate limit"),
        (["--headers", "ietf", "--rate", "0"], "--rate"),
        (["--latency-ms", "-5"], "--latency-ms must be >= 0"),
        (["--fault-rate", "2"], "between 0 and 1"),
        (["--faults", "503,boom"], "boom"),
        (["--rate", "-1"], "rate must be >= 0"),
        (["--burst", "-1"], "burst must be >= 0"),
        (["--rate", "4", "--restore-after", "3"], "restore_after needs halve_after"),
        (["--rate", "4", "--halve-after", "-1"], "halve_after must be >= 0"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(
    args: list[str], named: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # In process: each of these fails before the sandbox would start.
    monkeypatch.delenv("SENDKIT_API_KEY", raising=False)
    result = CliRunner().invoke(cli, ["sandbox", "--port", "0", *args])

    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("bulk-updater: error: ")
    assert named in lines[0]


def test_a_bad_leads_file_is_a_usage_error(tmp_path: Path) -> None:
    bad = tmp_path / "leads.json"
    bad.write_text('{"_id": "x"}', encoding="utf-8")
    result = CliRunner().invoke(cli, ["sandbox", "--port", "0", "--leads", str(bad)])

    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"bulk-updater: error: {bad}: a JSON dict, not a list; --leads takes ")


def test_a_leads_file_that_is_not_json_names_the_file_and_the_formats(tmp_path: Path) -> None:
    """`--leads l3.csv` once printed only `error: Expecting value: line 1 column 1 (char 0)`."""
    bad = tmp_path / "l3.json"
    bad.write_text("_id,email\nabc,a@b.io\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["sandbox", "--port", "0", "--leads", str(bad)])

    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"bulk-updater: error: {bad}: not valid JSON (line 1 column 1); ")
    assert "a JSON list of lead objects" in line
    assert "a CSV whose header names lead fields (_id or id, email" in line


def test_a_csv_of_leads_is_served(tmp_path: Path) -> None:
    leads = tmp_path / "l3.csv"
    leads.write_text(
        "id;email;firstName;tags;customFields.tier\r\n"
        "3c1f33c9df3f71ffa532a3df;ava@northwind.io;Ava;trial;gold\r\n"
        '4d2f33c9df3f71ffa532a3df;bo@northwind.io;Bo;"[""a"", ""b""]";\r\n'
        "5e3f33c9df3f71ffa532a3df;cy@northwind.io;Cy;;\r\n",
        encoding="utf-8-sig",
    )
    with sandbox("--leads", str(leads)) as child:
        first = child.line(child.out)
        assert first is not None
        match = FIRST_LINE.fullmatch(first)
        assert match, first
        assert match[1] == "3"
        url = f"{match[2]}/_sandbox/leads/4d2f33c9df3f71ffa532a3df"
        with urllib.request.urlopen(url, timeout=10) as response:
            lead = json.load(response)
        assert child.stop() == 0
    assert lead["_id"] == "4d2f33c9df3f71ffa532a3df"
    assert (lead["email"], lead["firstName"], lead["tags"]) == ("bo@northwind.io", "Bo", ["a", "b"])
    assert "customFields" not in lead  # an empty cell is a field left out


def test_csv_leads_read_as_the_json_ones(tmp_path: Path) -> None:
    leads = tmp_path / "l.csv"
    leads.write_text(
        "_id,email,tags,customFields.tier,customFields.seats\na1,a@b.io,x;y,gold,12\n\na2,,,,\n",
        encoding="utf-8",
    )
    assert load_leads(leads) == {
        "a1": {"_id": "a1", "email": "a@b.io", "tags": ["x", "y"],
               "customFields": {"tier": "gold", "seats": "12"}},
        "a2": {"_id": "a2", "tags": []},
    }  # fmt: skip


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("email\na@b.io\n", "the CSV header has no _id or id column"),
        ("id,email\na1,a@b.io\na1,c@d.io\n", "line 3: duplicate lead id 'a1'"),
        ("id,email\n,a@b.io\n", "line 2 is not a lead with an _id"),
        ('id,tags\na1,"[1, 2]"\n', "line 2: tags must be a;b or a JSON list of strings"),
        ("id,email\na1,a@b.io,extra\n", "line 2 has 3 cells, the header 2"),
    ],
)
def test_a_bad_csv_of_leads_says_where(tmp_path: Path, text: str, says: str) -> None:
    leads = tmp_path / "l.csv"
    leads.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(f"{leads}: {says}")):
        load_leads(leads)


def test_the_installed_command_reports_a_usage_error_the_same_way() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bulk_updater", "sandbox", "--port", "0", "--headers", "xrl"],
        cwd=ROOT,
        env=env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == (
        "bulk-updater: error: --headers needs a rate limit to describe; add --rate R (R > 0)\n"
    )


def test_help_lists_every_option() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bulk_updater", "sandbox", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )

    for option in (
        "--port",
        "--host",
        "--leads",
        "--rate",
        "--burst",
        "--retry-after",
        "--headers [xrl|ietf|exhausted]",
        "--latency-ms MS",
        "--fault-rate",
        "--faults",
        "--slow-seconds",
        "--seed",
    ):
        assert option in done.stdout

"""The sandbox as the bench runs it: `bulk-updater sandbox` in a process of its own, with the
leads of a bench input, its limits, headers, latency and faults given as on the command line.

`stats()` reads `GET /_sandbox/stats`: requests, 429s sent, faults, the first and last arrival
(loop seconds) and the most arrivals in any sliding second, as the sandbox counted them.
"""

from __future__ import annotations

import csv
import http.client
import json
import select
import subprocess
from pathlib import Path
from typing import Any

from harness import PY, ROOT, BenchError, _env, stop, track


def write_leads(csv_path: Path) -> Path:
    """The leads a bench input updates, as a JSON list the sandbox's `--leads` reads."""
    path = csv_path.with_suffix(".leads.json")
    if path.exists():
        return path
    with open(csv_path, encoding="utf-8", newline="") as file:
        leads = [
            {"_id": row["id"], "email": row["email"], "firstName": "Old", "tags": []}
            for row in csv.DictReader(file)
        ]
    path.write_text(json.dumps(leads), encoding="utf-8")
    return path


class SandboxProcess:
    """`python -m bulk_updater sandbox --port 0 --leads ... ARGS` until the block ends."""

    name = "sandbox"

    def __init__(self, leads: Path, *args: str) -> None:
        self.argv = [PY, "-m", "bulk_updater", "sandbox", "--port", "0", "--leads", str(leads)]
        self.argv += list(args)
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def __enter__(self) -> SandboxProcess:
        self.proc = track(
            subprocess.Popen(
                self.argv, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                text=True, cwd=ROOT,
            )
        )  # fmt: skip
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 20)
        line = self.proc.stdout.readline() if ready else ""
        if not line.startswith("sandbox: serving"):
            stop(self.proc)
            raise BenchError(f"the sandbox did not start (said {line.strip()!r})")
        self.url = line.rsplit(" ", 1)[1].strip()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            stop(self.proc)

    def stats(self) -> dict[str, Any]:
        if self.proc is None or self.proc.poll() is not None:
            raise BenchError("the sandbox died")
        host, port = self.url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            conn.request("GET", "/_sandbox/stats")
            data: dict[str, Any] = json.loads(conn.getresponse().read())
        finally:
            conn.close()
        return data

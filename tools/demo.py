"""`make demo`: a real job against the bundled sandbox, no key needed.

Starts `bulk-updater sandbox` on a free loopback port with samples/leads.json, runs
`bulk-updater run samples/updates.csv` against it, shows the summary and where the report is, and
stops the sandbox. The sample holds three ids that do not exist, so the job itself exits 1
(some rows `not_found`); the demo still succeeds because that is the expected outcome.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SANDBOX_KEY = "sk_sandbox_demo"


def main() -> int:
    env = {**os.environ, "SENDKIT_API_KEY": SANDBOX_KEY}
    env.pop("SENDKIT_BASE_URL", None)
    command = [sys.executable, "-m", "bulk_updater"]
    sandbox = subprocess.Popen(
        [*command, "sandbox", "--port", "0", "--leads", str(ROOT / "samples" / "leads.json")],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert sandbox.stdout is not None
        first = sandbox.stdout.readline().strip()
        print(first)
        if " at " not in first:
            print("demo: the sandbox did not start", file=sys.stderr)
            return 1
        url = first.rsplit(" at ", 1)[1]
        report = ROOT / "samples" / "updates.csv.report.csv"
        job = subprocess.run(
            [
                *command,
                "run",
                str(ROOT / "samples" / "updates.csv"),
                "--base-url",
                url,
                "--rate",
                "20",
                "--concurrency",
                "4",
                "--report",
                str(report),
            ],
            env=env,
            check=False,
        )
        print(f"demo: the job exited {job.returncode}", end="")
        print(" (1 = some rows not_found, as the sample intends)" if job.returncode == 1 else "")
        print(f"demo: per-row outcomes are in {report.relative_to(ROOT)}; rows not updated:")
        with open(report, newline="", encoding="utf-8-sig") as file:
            for line in csv.DictReader(file):
                if line["status"] != "updated":
                    print(f"  row {line['row']}: {line['id']} {line['status']} ({line['message']})")
        return 0 if job.returncode in (0, 1) else job.returncode
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())

"""`make demo`: real jobs against the bundled sandbox, no key needed.

Starts `bulk-updater sandbox` on a free loopback port with samples/leads.json, then runs:

1. `samples/updates.csv`, a file written for the tool: three of its ids do not exist, so that
   job exits 1 (some rows `not_found`), as the sample intends;
2. `samples/excel-export.csv`, a European Excel export as a CRM gives it: `;`-separated,
   Windows-1252, human headers (`Lead ID`, `First Name`), extra columns (`Owner`), spaces around
   an id and an empty row at the end. It goes in with `--encoding cp1252 --map "Lead ID=id"
   --ignore-unknown-columns`, and the rows that did not go through land in a rejects file,
   ready to fix in a spreadsheet and feed back.

Then it shows what landed in the sandbox and stops it. The demo succeeds when both jobs ran.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
SANDBOX_KEY = "sk_sandbox_demo"
COMMAND = [sys.executable, "-m", "bulk_updater"]
LOOPBACK_HOSTS = "127.0.0.1,localhost,::1"


def run_job(url: str, env: dict[str, str], source: Path, *options: str) -> int:
    report = source.with_name(source.name + ".report.csv")
    print(f"\ndemo: bulk-updater run {source.relative_to(ROOT)} {' '.join(options)}".rstrip())
    job = subprocess.run(
        [*COMMAND, "run", str(source), "--base-url", url, "--rate", "20", "--concurrency", "4",
         "--report", str(report), *options],
        env=env, check=False,
    )  # fmt: skip
    print(f"demo: the job exited {job.returncode}", end="")
    print(" (1 = some rows not updated, as the sample intends)" if job.returncode == 1 else "")
    with open(report, newline="", encoding="utf-8-sig") as file:
        missed = [line for line in csv.DictReader(file) if line["status"] != "updated"]
    for line in missed:
        print(f"  row {line['row']} (line {line['line']}): {line['id']} {line['status']}"
              f" ({line['message']})")  # fmt: skip
    return job.returncode


def main() -> int:
    # The sandbox is on loopback: reached directly even where HTTPS_PROXY / HTTP_PROXY are set
    # (this process's own look at it, through urllib, too). Where both spellings are set, the
    # lowercase one is read.
    for name in ("NO_PROXY", "no_proxy"):
        os.environ[name] = ",".join(filter(None, (os.environ.get(name, ""), LOOPBACK_HOSTS)))
    env = {**os.environ, "SENDKIT_API_KEY": SANDBOX_KEY}
    env.pop("SENDKIT_BASE_URL", None)
    sandbox = subprocess.Popen(
        [*COMMAND, "sandbox", "--port", "0", "--leads", str(SAMPLES / "leads.json")],
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
        codes = [run_job(url, env, SAMPLES / "updates.csv")]
        rejects = SAMPLES / "excel-export.rejects.csv"
        codes.append(run_job(
            url, env, SAMPLES / "excel-export.csv", "--encoding", "cp1252", "--map", "Lead ID=id",
            "--ignore-unknown-columns", "--rejects", str(rejects),
        ))  # fmt: skip
        print(f"demo: rows to fix and feed back are in {rejects.relative_to(ROOT)}")
        with urllib.request.urlopen(f"{url}/_sandbox/leads/066091adcd648f9dab09032e") as answer:
            lead = json.load(answer)
        print(f"demo: the sandbox now holds {lead['firstName']} {lead['lastName']}: "
              f"{lead['jobTitle']}, {lead.get('city')}, tags {lead['tags']}")  # fmt: skip
        return 0 if all(code in (0, 1) for code in codes) else max(codes)
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())

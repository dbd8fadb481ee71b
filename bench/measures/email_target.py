"""Issue 13's target job, by email, each side in a process of its own: the sandbox at a strict
100 requests per sliding second, `bulk-updater run --rate 100` against it.

450 known emails, each with decoys that contain it (`x…`, `….au`), in mixed case, 30 of them
repeated later in the file, 20 unknown emails: exactly 480 `updated` and 20 `not_found`, each
lead holding its last row, no decoy touched, one search per distinct email, no 429. The 429s are
the client's count (`rate_limited` in `--summary-json`): every one the sandbox sends arrives.
"""

from __future__ import annotations

import csv
import json
import os
import random
import select
import subprocess
import urllib.request
from pathlib import Path
from typing import Any, Final

from harness import PY, ROOT, BenchError, progress, run_child, stop, track
from results import Context, Result, Section, Table, Target, verdict

RATE: Final = 100
KEY: Final = "sk_bench_emails"


def _lead(lead_id: str, email: str) -> dict[str, Any]:
    return {
        "_id": lead_id,
        "email": email,
        "firstName": "First",
        "lastName": "Last",
        "companyName": "Acme",
        "jobTitle": "Engineer",
        "tags": [],
        "customFields": {},
        "createdAt": "2026-01-01T00:00:00.000Z",
    }


def target_job(rnd: random.Random) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """The leads (known ones, then decoys) and the rows (email, jobTitle) of the target."""
    known = [f"person{n}@corp{n % 7}.example" for n in range(450)]
    leads = [_lead(f"{n:024x}", email) for n, email in enumerate(known)]
    for n, email in enumerate(known):
        for m, decoy in enumerate((f"x{email}", f"{email}.au")[: 1 + n % 2]):
            leads.append(_lead(f"d{n:011x}{m:012x}", decoy))

    def mixed(email: str) -> str:
        return "".join(c.upper() if rnd.random() < 0.3 else c for c in email)

    rows = [(mixed(email), f"first {n}") for n, email in enumerate(known)]
    rows += [(f"nobody{n}@nowhere.example", "ghost") for n in range(20)]
    rows += [(mixed(f" {known[n]} "), f"last {n}") for n in rnd.sample(range(450), 30)]
    return leads, rows


class _Sandbox:
    """`bulk-updater sandbox` in its own process, on a free port."""

    def __init__(self, leads: Path) -> None:
        argv = [PY, "-m", "bulk_updater", "sandbox", "--port", "0", "--leads", str(leads)]
        argv += ["--rate", str(RATE)]
        env = {**os.environ, "SENDKIT_API_KEY": KEY}
        self.proc = track(
            subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env)
        )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 15)
        line = self.proc.stdout.readline() if ready else ""
        if " at http" not in line:
            stop(self.proc)
            raise BenchError(f"the sandbox did not start (said {line.strip()!r})")
        self.url = line.rsplit(" at ", 1)[1].strip()

    def leads(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.url}/_sandbox/leads", timeout=10) as answer:
            leads: list[dict[str, Any]] = json.load(answer)
        return leads


def measure(ctx: Context) -> Result:
    leads, rows = target_job(random.Random(13))
    leads_file, source = ctx.tmp / "email-leads.json", ctx.tmp / "by-email.csv"
    leads_file.write_text(json.dumps(leads))
    with open(source, "w", newline="") as file:
        csv.writer(file).writerows([("email", "jobTitle"), *rows])
    report, summary_file = ctx.tmp / "by-email.report.csv", ctx.tmp / "by-email.summary.json"
    progress(f"email target: {len(rows)} rows by email at --rate {RATE}, sandbox at {RATE}/s")
    sandbox = _Sandbox(leads_file)
    try:
        argv = [PY, "-m", "bulk_updater", "run", str(source), "--base-url", sandbox.url]
        argv += ["--rate", str(RATE), "--report", str(report), "-q"]
        argv += ["--summary-json", str(summary_file)]
        env = {**os.environ, "SENDKIT_API_KEY": KEY}
        child = run_child(argv, env, ctx.tmp / "email-target.log", timeout=120)
        held = {lead["_id"]: lead for lead in sandbox.leads()}
    finally:
        stop(sandbox.proc)
    if child.returncode not in (0, 1):  # 1: some rows were not updated (the unknown emails)
        raise BenchError(f"the email job exited {child.returncode}: {child.log[-2000:]}")
    return _result(json.loads(summary_file.read_text()), rows, held, report)


def _result(
    summary: dict[str, Any], rows: list[tuple[str, str]], held: dict[str, Any], report: Path
) -> Result:
    counts = summary["counts"]
    last = {email.strip().casefold(): title for email, title in rows}
    distinct = len(last)
    wrong = sum(
        lead["jobTitle"] != ("Engineer" if lead_id.startswith("d") else last[lead["email"]])
        for lead_id, lead in held.items()
    )
    with open(report, newline="") as file:
        reported = sum(1 for _ in csv.DictReader(file))
    checks = {
        "480 updated, 20 not_found": (counts["updated"], counts["not_found"]) == (480, 20),
        "each lead holds its last row, no decoy touched": wrong == 0,
        "one search per distinct email": summary["searches"] == distinct,
        "no 429": summary["rate_limited"] == 0,
        "a report line per row": reported == len(rows),
    }
    ok = all(checks.values())
    table = Table.of(
        "rows|updated|not_found|searches|distinct emails|PATCHes|429s|leads wrong|seconds|req/s",
        [
            (
                len(rows),
                counts["updated"],
                counts["not_found"],
                summary["searches"],
                distinct,
                summary["requests"] - summary["searches"],
                summary["rate_limited"],
                wrong,
                f"{summary['duration_s']:.1f}",
                f"{summary['requests'] / summary['duration_s']:.1f}",
            )
        ],
    )
    failed = [name for name, passed in checks.items() if not passed]
    return Result(
        sections=[Section(f"Issue 13's email job: --rate {RATE}, sandbox at {RATE}/s", [table])],
        targets=[
            Target(
                "email job: " + ", ".join(checks),
                "all hold" if ok else "failed: " + ", ".join(failed),
                ok,
            )
        ],
        readme=[
            (
                f"issue 13's job by email, --rate {RATE} vs sandbox at {RATE}/s",
                f"{counts['updated']} updated, {counts['not_found']} not_found, "
                f"{summary['searches']} searches, {summary['rate_limited']} x 429",
                "480, 20, one search an email, 0 x 429",
                verdict(ok),
            )
        ],
        data={"summary": summary, "distinct": distinct, "wrong": wrong, "checks": checks},
    )

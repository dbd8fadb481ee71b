"""Everything the bench prints and writes: the machine, the sections, the targets, the README
Markdown and bench/out/results.json, from the `Result`s of the measures.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from harness import OUT, say
from results import Result, Table, Target
from servers import NginxInstall

PACKAGES = (
    "bulk-updater", "aiohttp", "aiolimiter", "tenacity", "pydantic", "uvloop",
    "orjson", "redis",
)  # fmt: skip


def machine() -> dict[str, Any]:
    """CPU, Python, load average (taken before the runs) and the installed package versions."""
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    loadavg = Path("/proc/loadavg")
    return {
        "nproc": os.cpu_count(),
        "loadavg": " ".join(loadavg.read_text().split()[:3]) if loadavg.exists() else "?",
        "cpu": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
    }


def engine_build(host: dict[str, Any]) -> str:
    """What the default install runs on: "uvloop + orjson" when both are there."""
    versions = host["versions"]
    loop = "uvloop" if versions["uvloop"] else "asyncio (uvloop not installed)"
    return f"{loop} + {'orjson' if versions['orjson'] else 'json'}"


def table(data: Table) -> str:
    cells = [tuple(str(c) for c in data.header), *[tuple(str(c) for c in r) for r in data.rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(data.header))]

    def line(r: tuple[str, ...]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


def markdown(header: tuple[str, ...], rows: Iterable[tuple[Any, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def header(host: dict[str, Any], nginx: NginxInstall | str, *, quick: bool) -> None:
    say(f"bulk-updater benchmarks{' (--quick: small sizes, not for the README)' if quick else ''}")
    say(
        f"machine: {host['nproc']} CPU, {host['cpu']}; Python {host['python']}; "
        f"{host['platform']}; load average at start {host['loadavg']}"
    )
    say("versions: " + ", ".join(f"{k} {v or '-'}" for k, v in host["versions"].items()))
    say(f"engine (default install): {engine_build(host)}")
    if isinstance(nginx, NginxInstall):
        say(f"nginx: {nginx.describe()}")
    else:
        say(f"nginx: NOT MEASURED, {nginx}; only bench/fast_server.py is used")
    say()


def sections(results: Iterable[Result]) -> None:
    """Every section of every result, numbered in order."""
    number = 0
    for result in results:
        for section in result.sections:
            number += 1
            say(f"{number}. {section.title}")
            for block in section.body:
                say(table(block) if isinstance(block, Table) else f"   {block}")
            say()


def targets(results: Iterable[Result]) -> list[Target]:
    found = [t for r in results for t in r.targets]
    say("Targets")
    say(
        table(
            Table(
                ("target", "measured", "verdict"), [(t.name, t.measured, t.verdict) for t in found]
            )
        )
    )
    say()
    return found


def readme(host: dict[str, Any], results: Iterable[Result]) -> None:
    say("Markdown for the README")
    say()
    say(
        f"Machine: {host['nproc']} CPU ({host['cpu']}), Python {host['python']}, "
        f"aiohttp {host['versions']['aiohttp']} (the engine's client and the bare loop); client "
        "and endpoint on loopback; "
        f"load average at start {host['loadavg']}."
    )
    say()
    say(markdown(("measure", "result", "target", ""), (row for r in results for row in r.readme)))
    say()


def write_json(summary: dict[str, Any], results: dict[str, Result], found: list[Target]) -> Path:
    data = summary | {
        "measures": {name: result.data for name, result in results.items()},
        "targets": [{"target": t.name, "measured": t.measured, "pass": t.ok} for t in found],
    }
    OUT.mkdir(exist_ok=True)
    path = OUT / "results.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def render(
    host: dict[str, Any],
    nginx: NginxInstall | str,
    results: dict[str, Result],
    summary: dict[str, Any],
    *,
    quick: bool,
) -> None:
    """The whole report, in the order of `results`; `summary` goes to the top of results.json."""
    header(host, nginx, quick=quick)
    sections(results.values())
    found = targets(results.values())
    readme(host, results.values())
    where = nginx.describe() if isinstance(nginx, NginxInstall) else f"not measured: {nginx}"
    path = write_json(summary | {"machine": host, "nginx": where, "quick": quick}, results, found)
    say(
        f"results: {path}; took {summary['elapsed_s']:.0f} s, "
        f"children {summary['children_cpu_s']:.0f} CPU s"
    )

"""What a measure is given (`Context`) and what it hands back (`Result`): plain data, no printing.

A `Result` carries the sections to print (notes and tables), the targets with their verdicts, the
rows it adds to the README table and the raw figures for results.json. `report.py` renders it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from servers import NginxInstall


@dataclass(frozen=True)
class Context:
    """The sizes of this run and where it works; `results` holds the measures already run."""

    tmp: Path
    quick: bool
    rows: int  # per throughput run
    rounds: int  # of throughput
    memory_sizes: tuple[int, int]
    pace_rows: int
    probe_s: float  # seconds per load generator on the endpoint alone
    limiter_s: float  # seconds per in-process limiter
    host: dict[str, Any]  # report.machine(): CPU, Python, package versions
    nginx: NginxInstall | str  # what was found, or why there is none
    nginx_workers: int
    results: dict[str, Result] = field(default_factory=dict)

    def csv(self, rows: int, seed: int = 7) -> Path:
        """The input of `rows` rows for `seed`, written once per run."""
        from harness import write_csv

        path = self.tmp / f"rows-{rows}-{seed}.csv"
        return path if path.exists() else write_csv(path, rows, seed)


@dataclass(frozen=True)
class Target:
    """A figure held to a target: `ok` is None when it could not be measured."""

    name: str
    measured: str
    ok: bool | None

    @property
    def verdict(self) -> str:
        return verdict(self.ok)


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: list[tuple[Any, ...]]

    @classmethod
    def of(cls, spec: str, rows: list[tuple[Any, ...]]) -> Table:
        """A table whose header is given as `"a|b|c"`."""
        return cls(tuple(spec.split("|")), rows)


@dataclass(frozen=True)
class Section:
    """A numbered part of the printed report: a title, then notes and tables in order."""

    title: str
    body: list[str | Table] = field(default_factory=list)


@dataclass(frozen=True)
class Result:
    sections: list[Section]
    targets: list[Target] = field(default_factory=list)
    readme: list[tuple[str, str, str, str]] = field(default_factory=list)  # measure, result, ...
    data: dict[str, Any] = field(default_factory=dict)  # for results.json

    @classmethod
    def not_measured(cls, title: str, targets: list[str], why: str) -> Result:
        """Nothing ran (nginx missing, say): the section, the targets and the README say so."""
        return cls(
            sections=[Section(title, [f"NOT MEASURED: {why}"])],
            targets=[Target(name, f"not measured: {why}", None) for name in targets],
            readme=[(title, f"not measured: {why}", "", verdict(None))],
            data={"not_measured": why},
        )


def verdict(ok: bool | None) -> str:
    return "NOT MEASURED" if ok is None else "PASS" if ok else "FAIL"

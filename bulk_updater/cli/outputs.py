"""The files a run writes, checked before any request: none may destroy the input or another."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ConfigError
from ..inputs import Source
from ..report import check_report_path, companions


def _same(a: Path, b: Path) -> bool:
    """Whether two paths are one file (through links), or would be once created."""
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_outputs(source: Source, report: Path, summary_json: Path | None) -> None:
    """Refuse, before any request, outputs that would destroy the input, each other, or that
    cannot be written."""
    check_report_path(report)
    outputs = {"--report": report}
    if summary_json is not None:
        outputs["--summary-json"] = summary_json
    for flag, path in outputs.items():
        if not path.resolve().parent.is_dir():
            raise ConfigError(f"{path}: the folder {path.parent} does not exist; create it first")
        if source.rereadable and _same(path, Path(source.path)):
            raise ConfigError(f"{path}: is the input file; choose another {flag}")
    if summary_json is not None:
        for kept in (report, *companions(report)):
            if _same(summary_json, kept):
                raise ConfigError(
                    f"{summary_json}: is also the report or a file beside it ({kept}); "
                    "choose another --summary-json"
                )

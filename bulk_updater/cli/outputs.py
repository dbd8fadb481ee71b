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


def check_outputs(
    source: Source, report: Path, summary_json: Path | None, rejects: Path | None = None
) -> None:
    """Refuse, before any request, outputs that would destroy the input, each other, or that
    cannot be written."""
    check_report_path(report)
    outputs = {"--report": report}
    if summary_json is not None:
        outputs["--summary-json"] = summary_json
    if rejects is not None:
        outputs["--rejects"] = rejects
    for flag, path in outputs.items():
        if not path.resolve().parent.is_dir():
            raise ConfigError(f"{path}: the folder {path.parent} does not exist; create it first")
        if source.rereadable and _same(path, Path(source.path)):
            raise ConfigError(f"{path}: is the input file; choose another {flag}")
    taken = [("the report", report), *(("a file beside the report", p) for p in companions(report))]
    for flag, path in list(outputs.items())[1:]:
        for what, kept in taken:
            if _same(path, kept):
                raise ConfigError(f"{path}: is also {what} ({kept}); choose another {flag}")
        taken.append((flag, path))

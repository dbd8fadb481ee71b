"""The measures `make bench` runs, in the one registry below.

A measure is a function `(Context) -> Result` (see `results.py`): it starts what it needs (servers,
children; `harness.py`, `servers.py`), measures, and hands back plain data with its targets and
verdicts; it prints nothing. To add one, write the function in a module of this package and add
one `Measure` line to `MEASURES`: `--only NAME` selects it, the report prints it in this order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from measures import (
    adaptive,
    controllers,
    email_target,
    emails,
    endpoint,
    limiters,
    memory,
    paced,
    pacing,
    page,
    scale,
    shared,
    sync,
    throughput,
    upload,
    xlsx,
)
from results import Context, Result


@dataclass(frozen=True)
class Measure:
    name: str  # for `--only`
    run: Callable[[Context], Result]
    needs: tuple[str, ...] = ()  # measures whose results `run` reads from `Context.results`


MEASURES: tuple[Measure, ...] = (
    Measure("endpoint", endpoint.measure, needs=("throughput", "throughput-nginx")),
    Measure("throughput", throughput.fast_server),
    Measure("throughput-nginx", throughput.nginx),
    Measure("paced", paced.measure),
    Measure("memory", memory.measure),
    Measure("pacing", pacing.measure),
    Measure("limiters", limiters.measure),
    Measure("xlsx", xlsx.measure),
    Measure("emails", emails.measure),
    Measure("email-target", email_target.measure),
    Measure("scale", scale.measure),
    Measure("hidden-limit", adaptive.hidden_limit),
    Measure("slow-api", adaptive.slow_api),
    Measure("faults", adaptive.faults),
    Measure("controllers", controllers.measure),
    Measure("sync", sync.measure),
    Measure("shared", shared.measure),
    Measure("page", page.measure),
    Measure("page-upload", upload.measure),
)

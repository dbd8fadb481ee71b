"""`bulk-updater sandbox`: serve the local SendKit-compatible API from `sandbox.py`."""

from __future__ import annotations

import os

import click

from .run import fail


@click.command()
@click.option("--port", type=int, default=8765, show_default=True, help="0 picks a free port.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--leads",
    "leads_file",
    type=click.Path(exists=True, dir_okay=False),
    help="JSON list of leads to serve (e.g. samples/leads.json).",
)
@click.option(
    "--rate",
    type=float,
    default=0.0,
    show_default=True,
    help="Answer 429 beyond R requests per sliding second; 0 = no limit.",
)
@click.option(
    "--burst",
    type=int,
    default=0,
    show_default=True,
    help="Requests allowed over --rate in one window.",
)
@click.option(
    "--retry-after",
    type=click.Choice(["seconds", "date", "none"]),
    default="seconds",
    show_default=True,
    help="How a 429 says when to come back.",
)
@click.option(
    "--fault-rate",
    type=float,
    default=0.0,
    show_default=True,
    help="Share of requests (0..1) that get an injected fault.",
)
@click.option(
    "--faults",
    default="503,500,drop,slow",
    show_default=True,
    help="Fault kinds to inject, comma-separated.",
)
@click.option(
    "--slow-seconds",
    type=float,
    default=5.0,
    show_default=True,
    help="How long a 'slow' fault waits before answering.",
)
@click.option("--seed", type=int, help="Seed for reproducible faults.")
def sandbox(
    port: int,
    host: str,
    leads_file: str | None,
    rate: float,
    burst: int,
    retry_after: str,
    fault_rate: float,
    faults: str,
    slow_seconds: float,
    seed: int | None,
) -> None:
    """Serve a local SendKit-compatible API (key: SENDKIT_API_KEY, else sk_sandbox_demo)."""
    from ..sandbox import DEFAULT_SANDBOX_KEY, FaultPlan, serve

    try:
        plan = FaultPlan(
            rate=fault_rate,
            kinds=tuple(k.strip() for k in faults.split(",") if k.strip()),
            slow_seconds=slow_seconds,
            seed=seed,
        )
        serve(
            port=port,
            leads_file=leads_file,
            api_key=os.environ.get("SENDKIT_API_KEY") or DEFAULT_SANDBOX_KEY,
            rate=rate,
            burst=burst,
            retry_after=retry_after,
            faults=plan,
            host=host,
        )
    except (ValueError, OSError) as exc:
        fail(str(exc))

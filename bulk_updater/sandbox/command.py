"""The `bulk-updater sandbox` command: options in, `serve` out, and a few lines for a person.

It lives in the sandbox package so that everything about the sandbox is in one place; `cli.py`
only adds it to the command group.

The first stdout line is `sandbox: serving N leads at URL`, which `tools/demo.py` and tests
parse. The lines after it are for people: the key (never a key taken from the environment, which
may be a real one), a `bulk-updater run` command to copy, and a `curl` to look at a lead.
"""

from __future__ import annotations

import os
import sys
from functools import partial
from typing import NoReturn

import click

from .faults import FAULT_KINDS, FaultPlan
from .ratelimit import HEADER_STYLES, RETRY_AFTER_MODES, SHAPES, HeaderStyle, Shape
from .recorded import DEFAULT_SANDBOX_KEY
from .runners import Sandbox, serve

__all__ = ["sandbox"]

_EXIT_USAGE = 2
_PLATFORM_KEY_PREFIX = "sk_user_"


def _fail(message: str) -> NoReturn:
    click.echo(f"bulk-updater: error: {message}", err=True)
    sys.exit(_EXIT_USAGE)


@click.command()
@click.option("--port", type=int, default=8765, show_default=True, help="0 picks a free port.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--leads",
    "leads_file",
    type=click.Path(exists=True, dir_okay=False),
    help="Leads to serve: a JSON list (e.g. samples/leads.json), or a CSV whose header names "
    "lead fields (_id or id, email, firstName, ..., tags as a;b, customFields.NAME).",
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
    "--shape",
    type=click.Choice(SHAPES),
    default="sliding",
    show_default=True,
    help="The limit's kind: a sliding second, a fixed second that resets on the second, a "
    "token bucket of max(1, --burst) refilled at --rate, or a sliding second with that bucket "
    "on top.",
)
@click.option(
    "--halve-after",
    type=float,
    metavar="S",
    help="Halve the limit S seconds after the first request (an API under load).",
)
@click.option(
    "--restore-after",
    type=float,
    metavar="S",
    help="Bring a halved limit back S seconds after the first request.",
)
@click.option(
    "--retry-after",
    type=click.Choice(RETRY_AFTER_MODES),
    default="seconds",
    show_default=True,
    help="How a 429 says when to come back.",
)
@click.option(
    "--headers",
    type=click.Choice(HEADER_STYLES),
    help="Rate-limit headers on every answer: X-RateLimit-* (xrl), RateLimit (ietf), or "
    "xrl always saying 0 left for 22 h (exhausted); needs --rate.",
)
@click.option(
    "--latency-ms",
    type=float,
    metavar="MS",
    default=0.0,
    show_default=True,
    help="Delay every answer by MS milliseconds, jittered by 0.8 to 1.2.",
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
    default=",".join(FAULT_KINDS),
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
@click.option("--seed", type=int, help="Seed for reproducible faults and latency.")
def sandbox(
    port: int,
    host: str,
    leads_file: str | None,
    rate: float,
    burst: int,
    shape: Shape,
    halve_after: float | None,
    restore_after: float | None,
    retry_after: str,
    headers: HeaderStyle | None,
    latency_ms: float,
    fault_rate: float,
    faults: str,
    slow_seconds: float,
    seed: int | None,
) -> None:
    """Serve a local SendKit-compatible API (key: SENDKIT_API_KEY, else sk_sandbox_demo)."""
    if headers is not None and rate == 0:
        _fail("--headers needs a rate limit to describe; add --rate R (R > 0)")
    if not latency_ms >= 0:
        _fail(f"--latency-ms must be >= 0, got {latency_ms:g}")
    env_key = os.environ.get("SENDKIT_API_KEY")
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
            api_key=env_key or DEFAULT_SANDBOX_KEY,
            rate=rate,
            burst=burst,
            retry_after=retry_after,
            faults=plan,
            host=host,
            headers=headers,
            latency_ms=latency_ms,
            seed=seed,
            on_start=partial(_announce, leads_file=leads_file, env_key=env_key or None),
            shape=shape,
            halve_after=halve_after,
            restore_after=restore_after,
        )
    except (ValueError, OSError) as exc:
        _fail(str(exc))


def _announce(sandbox: Sandbox, *, leads_file: str | None, env_key: str | None) -> None:
    """Say, after the first line, how to use the sandbox, and warn when it has nothing to update."""
    url = sandbox.url
    run = f"bulk-updater run samples/updates.csv --base-url {url}"
    if env_key is None:
        key = DEFAULT_SANDBOX_KEY
        run = f"SENDKIT_API_KEY={DEFAULT_SANDBOX_KEY} {run}"
    else:
        key = "from SENDKIT_API_KEY"
        if env_key.startswith(_PLATFORM_KEY_PREFIX):
            run += " --workspace-id ws_sandbox"  # any value will do; the API needs one
    lead_id = next(iter(sandbox.state.leads), "<id>")
    click.echo(f"  key: {key}\n  try: {run}\n  inspect: curl {url}/_sandbox/leads/{lead_id}")
    sys.stdout.flush()
    if not sandbox.state.leads:
        why = "no --leads given" if leads_file is None else f"{leads_file} holds none"
        click.echo(
            f"bulk-updater: warning: the sandbox serves 0 leads ({why}), so every update will be"
            " 404 NOT_FOUND; try --leads samples/leads.json",
            err=True,
        )

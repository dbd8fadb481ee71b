"""A run's `Summary`: what the job counted, what its limiter settled at, what its outputs warn of.

It is built once the run's outputs are closed: the report says only then whether it could be
put in input order, and the state file what it could not keep.
"""

from __future__ import annotations

from typing import Final

from ..inputs import KeyPlan, Rows, Source
from ..limits import Lifecycle, RateStatus
from ..models import Status, StopReason, Summary
from ..report import ReportWriter
from ..state import StateFile
from .limit import FirstRows
from .pipeline import Pipeline
from .sink import Tally

#: Stops that change nothing when they come after the last row was sent.
_TOO_LATE: Final = (StopReason.INTERRUPTED, StopReason.UNKNOWN_IDS)


def summarize(
    pipeline: Pipeline,
    tally: Tally,
    duration: float,
    *,
    rows: Rows,
    keys: KeyPlan,
    writer: ReportWriter | None,
    store: StateFile | None,
    first: FirstRows | None,
) -> Summary:
    """The summary of a finished run: `rows` and `keys` say which input columns were dropped."""
    counters = pipeline.counters
    counts = tally.counts
    rate = rate_of(pipeline.limiter)
    stopped, message = pipeline.stop_reason, pipeline.stop_message
    warnings = _warnings(rows, writer, store, first)
    if stopped in _TOO_LATE and pipeline.read_all and not counts[Status.ABORTED]:
        # The interrupt, or the stop on ids not this account's, came once every row was sent:
        # it stopped nothing. What the ids look like is still worth a word.
        if stopped is StopReason.UNKNOWN_IDS and message is not None:
            warnings.append(message)
        stopped = message = None
    return Summary(
        counts=counts,
        rows=sum(counts.values()),
        requests=counters.requests,
        searches=counters.searches,
        retries=counters.retries,
        rate_limited=counters.rate_limited,
        duration_s=round(duration, 3),
        achieved_rate=round(counters.requests / duration, 2) if duration > 0 else 0.0,
        stopped=stopped,
        stop_message=message,
        report=str(writer.path) if writer is not None else None,
        earlier={status: n for status, n in tally.earlier.items() if n},
        warnings=warnings,
        dropped_columns=rows.dropped if isinstance(rows, Source) else list(keys.dropped),
        state_file=str(store.path) if store is not None else None,
        settled_rate=None if rate.settled is None else round(rate.settled, 1),
        settled_why=rate.why,
        rate_hint=rate.hint,
    )


def rate_of(limiter: Lifecycle) -> RateStatus:
    """What a limiter says of its rate (every `Lifecycle` can say)."""
    return limiter.describe()


def _warnings(
    rows: Rows, writer: ReportWriter | None, store: StateFile | None, first: FirstRows | None
) -> list[str]:
    # What the input noticed comes first: a footer left out, cells with suspect tags.
    warnings = list(rows.notes()) if isinstance(rows, Source) else []
    if writer is not None and writer.unsorted is not None:
        warnings.append(
            f"the report could not be put in input order ({writer.unsorted}); it is complete, "
            "in the order rows finished, and --resume can read it"
        )
    if store is not None:
        warnings.extend(f"state: {warning}" for warning in store.warnings)
    if first is not None and (cut := first.warning()) is not None:
        warnings.append(cut)
    return warnings

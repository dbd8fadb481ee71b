"""The outcome of each row: one the engine decides itself, and one the API answered."""

from __future__ import annotations

from ..inputs import Hidden, Invalid, Row
from ..models import LeadUpdate, Outcome, Status
from ..retry import Delivery

Finished = tuple[Outcome, Row]  # a row's outcome, with the row (its cells, for --rejects)


def outcome_of(row: Row, status: Status, message: str, attempts: int = 0) -> Outcome:
    """The outcome of a row the engine answers itself (nothing was sent, or no answer came)."""
    item = row.item
    return Outcome.trusted(
        row=row.number,
        line=row.line,
        id=item.id,
        status=status,
        http_status=None,
        error_code=None,
        message=message,
        attempts=attempts,
        duration_ms=None,
        email=item.email,
        ref=row.ref,
    )


def not_sent(row: Row, why: str | None) -> Outcome:
    """A row a stop left unsent: `aborted`, or `invalid` when it could never have been sent."""
    item = row.item
    if isinstance(item, Invalid):
        return answered(row, item)
    return outcome_of(row, Status.ABORTED, f"not sent: {why}")


def answered(row: Row, item: Invalid) -> Outcome:
    """A row that is never sent: `invalid`, or `skipped` when the sheet hides it."""
    status = Status.SKIPPED if type(item) is Hidden else Status.INVALID
    return outcome_of(row, status, item.message)


def unanswered(row: Row, attempts: int, grace: float, why: str | None) -> Outcome:
    """A row sent, whose answer had not come when the grace period after a stop ended."""
    message = (
        f"sent, but no answer within the {grace:g}s grace period (the lead may be updated): {why}"
    )
    return outcome_of(row, Status.ABORTED, message, attempts=attempts)


def unknown(row: Row, attempts: int, why: str | None) -> Outcome:
    """A row whose sending raised what stopped the job (a bug): whether it left is not known."""
    message = f"not known whether it was sent (the lead may be updated): {why}"
    return outcome_of(row, Status.ABORTED, message, attempts=attempts)


def sent(row: Row, update: LeadUpdate, result: Delivery, stop_message: str | None) -> Outcome:
    """The outcome of a row that was sent (or meant to be): what its delivery came to."""
    message = result.message
    if result.status is Status.ABORTED and stop_message and stop_message not in message:
        # The row that stopped the job says why already: its message is the stop's.
        message = f"{message}: {stop_message}" if message else stop_message
    duration = result.duration
    return Outcome.trusted(
        row=row.number,
        line=row.line,
        id=update.id,
        status=result.status,
        http_status=result.http_status,
        error_code=result.error_code,
        message=message,
        attempts=result.attempts,
        duration_ms=None if duration is None else int(duration * 1000),
        email=update.email,
        ref=row.ref,
    )

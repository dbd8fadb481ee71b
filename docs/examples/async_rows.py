"""Rows fed from an async generator, and each outcome handled as it comes.

A service that learns of changes one at a time (a queue, a webhook, a change feed) hands them to
`stream()` as an async generator: a row goes out as soon as it is yielded, and its outcome comes
back as soon as it finishes (not in input order), while later rows are still coming. Here an
`asyncio.Queue` stands in for the feed; `None` on it means the feed is done.
"""

import asyncio
import sys
from collections.abc import AsyncIterator

from bulk_updater import BulkUpdater, LeadUpdate, Outcome, Status

CHANGES = [
    ("3439282443faf37d544b8b80", "Head of Procurement"),
    ("f2d160cb74ee67bfb3b16e71", "CIO"),
    ("ffffffffffffffffffffffff", "Nobody"),  # no such lead: `not_found`
    ("6ef1a574e007ced5fa895c42", "CRO"),
]


async def feed(queue: asyncio.Queue[tuple[str, str] | None]) -> None:
    for change in CHANGES:
        await queue.put(change)
    await queue.put(None)


async def rows(queue: asyncio.Queue[tuple[str, str] | None]) -> AsyncIterator[LeadUpdate]:
    while (change := await queue.get()) is not None:
        lead_id, title = change
        yield LeadUpdate(id=lead_id, jobTitle=title)


async def main() -> int:
    queue: asyncio.Queue[tuple[str, str] | None] = asyncio.Queue()
    producer = asyncio.create_task(feed(queue))
    send_again: list[Outcome] = []
    async with (
        BulkUpdater(rate=10) as updater,
        updater.stream(rows(queue)) as outcomes,
    ):
        async for outcome in outcomes:
            if outcome.status is Status.UPDATED:
                print(f"{outcome.id}: updated")
            elif outcome.status in (Status.FAILED, Status.ABORTED):
                send_again.append(outcome)  # transient trouble: worth another try later
            else:  # not_found, invalid, rejected: the row itself needs fixing
                print(f"{outcome.id}: {outcome.status}: {outcome.message}", file=sys.stderr)
    await producer
    return 1 if send_again else 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))

"""`limit`: a job that takes only the first N rows of its input, to try it on a few leads.

The rows past the limit are not read, so they are not in the report: resuming it sends them, as
it sends any row the report does not hold. Rows an earlier run finished do not count towards the
limit (`--resume --limit 100` sends the next 100).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Container

from ..inputs import Numbered, Row


class FirstRows:
    """Cuts a job's rows after the first `limit` that it has to take on (not finished before)."""

    def __init__(self, limit: int, finished: Container[int] | None = None) -> None:
        self.limit = limit
        self._finished = finished if finished is not None else ()
        self.reached = False  # whether the limit cut the input (rows may be left unread)

    def cut(self, items: Numbered) -> Numbered:
        items.rows = self._first(items.rows)
        return items

    async def _first(self, rows: AsyncIterator[Row]) -> AsyncIterator[Row]:
        taken, finished = 0, self._finished
        try:
            async for row in rows:
                yield row
                if row.number not in finished:
                    taken += 1
                    if taken >= self.limit:  # stop before reading a row more: a pipe may wait
                        self.reached = True
                        return
        finally:
            aclose = getattr(rows, "aclose", None)
            if aclose is not None:
                await aclose()

    def warning(self) -> str | None:
        """What the summary says of a job the limit cut short."""
        if not self.reached:
            return None
        return (
            f"limit {self.limit}: the job read only its first {self.limit} rows to send; any "
            "after them were not sent: resume the report (--resume) to send them"
        )

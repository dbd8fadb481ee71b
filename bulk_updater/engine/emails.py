"""Matching rows by email: each email resolved to its lead id through the API's search, once.

The API has no lookup by email, only `GET /v1/leads?search=` (a text search: `ann@x.com` also
finds `joann@x.com`), so every page of the search is read and only leads whose email equals the
row's as the API stores emails (`normal_email`) count. None: `not_found`. Several: `rejected`
(`AMBIGUOUS_EMAIL`). One: the row is sent to that lead. A search is a request like any other: the
same limiter, retries and stops as a PATCH (`Deliverer.search`).

Each distinct email is searched once per run: the rows of one email wait for the one search, and
its answer is kept (on disk past a few thousand, so memory stays flat). The resolution happens
as the feeder reads the row, before it joins its lead's chain, so two rows whose emails resolve
to the same lead are still sent in input order, never at once.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Final, Literal

from pydantic import ValidationError

from ..answers import one_line
from ..client import Searcher
from ..deliver import Deliverer
from ..inputs import Invalid, Item, Row
from ..inputs.columns import ByEmail
from ..inputs.values import email_problem, trim_email
from ..models import LeadUpdate, Outcome, Status
from ..pages import Page
from ..retry import Delivery
from .admission import Admission, Admitted
from .diskmap import DiskMap

Match = Literal["id", "email"] | None
MAX_PAGES: Final = 1000  # a search that goes on longer than this is a server bug, not a match
SHOWN_IDS: Final = 5  # the candidate ids an ambiguous email's message names


def normal_email(email: str) -> str:
    """An email as the API stores it, and so as it is compared and cached: trimmed of ASCII
    spaces, lower-cased.

    Nothing looser: `casefold()` turns `straße` into `strasse` (and a long s into an s, a final
    sigma into a sigma), and a Unicode trim drops a non-breaking space; the API keeps each of
    those pairs apart, as two leads.
    """
    return trim_email(email).lower()


def keyed(item: Item, match: Match) -> Item:
    """What a row is matched by: its id, or (`match="email"`, or no id) its email."""
    if match == "email" and isinstance(item, LeadUpdate):
        if not item.email:
            return Invalid(
                item.id,
                "no email to match by (--match email): the row's email is empty or missing; "
                "fill it in (or add an email column)",
            )
        problem = email_problem(item.email)  # a label until now: searched for, it must be one
        if problem is not None:
            return Invalid(item.id, problem, item.email)
        return ByEmail(item.email, item)
    if match == "id" and isinstance(item, ByEmail):
        return Invalid(
            "",
            "no id to match by (--match id): the row's id is empty or missing; fill it in "
            "(or add an id column)",
            item.email,
        )
    return item


@dataclass(frozen=True, slots=True)
class EmailIds:
    """What the search found for one email: the lead ids that have it, or why it failed."""

    ids: tuple[str, ...] = ()
    failed: Delivery | None = None

    def encode(self) -> str:
        """The ids as kept on disk: JSON, so that an id that is empty or holds a line break (the
        server's text) stays one id, and is refused as such for every row of the email."""
        return json.dumps(self.ids)

    @classmethod
    def decode(cls, kept: str) -> EmailIds:
        return cls(tuple(json.loads(kept)))


class MatchByEmail(Admission):
    """The rule that resolves rows keyed by email (`Admission`: see `admission.py`)."""

    def __init__(self, match: Match, searcher: object, deliverer: Deliverer) -> None:
        self.match = match
        self._searcher: Searcher | None = searcher if isinstance(searcher, Searcher) else None
        self._deliverer = deliverer
        self._answers = DiskMap()  # normal email -> the ids that have it (`EmailIds.encode`)
        self._failed: dict[str, EmailIds] = {}  # searches that failed: kept, few
        self._searches: dict[str, asyncio.Task[EmailIds]] = {}
        self.emails = 0  # distinct emails searched

    def admit(self, row: Row) -> Admitted | Awaitable[Admitted]:
        if type(row.item) is LeadUpdate and self.match != "email":
            return row  # the usual row: matched by its id
        item = keyed(row.item, self.match)
        if not isinstance(item, ByEmail):
            return row if item is row.item else row._replace(item=item)
        if self._searcher is None:
            return row._replace(item=Invalid("", "matching by email needs the API", item.email))
        key = normal_email(item.email)
        known = self._answers.get(key)
        if known is not None:
            return self._settle(row, item, EmailIds.decode(known))
        if key in self._failed:
            return self._settle(row, item, self._failed[key])
        return self._wait(row, item, key)

    def _wait(self, row: Row, item: ByEmail, key: str) -> asyncio.Future[Admitted]:
        """The row's decision, once the search for its email has answered (one search an email:
        the first row starts it, the others wait for it)."""
        task = self._searches.get(key)
        if task is None:
            self.emails += 1
            task = self._searches[key] = asyncio.create_task(self._search(item.email))
            task.add_done_callback(lambda done: self._keep(key, done))
        decision: asyncio.Future[Admitted] = asyncio.get_running_loop().create_future()

        def settle(done: asyncio.Task[EmailIds]) -> None:
            if decision.done():
                return
            if done.cancelled():
                decision.cancel()
            elif (error := done.exception()) is not None:
                decision.set_exception(error)
            else:
                decision.set_result(self._settle(row, item, done.result()))

        task.add_done_callback(settle)
        return decision

    def _keep(self, key: str, task: asyncio.Task[EmailIds]) -> None:
        self._searches.pop(key, None)
        if task.cancelled() or task.exception() is not None:
            return
        answer = task.result()
        if answer.failed is None:
            self._answers.put(key, answer.encode())
        elif answer.failed.status is not Status.ABORTED:  # a stopped job's search is no answer
            self._failed[key] = answer

    async def _search(self, email: str) -> EmailIds:
        """Every page of the search for `email`; the ids of the leads that have exactly it.

        The text searched for is the email as the API stores it: the row's letter case would miss
        the lead if the search were case-sensitive (the API does not say), and the one search of
        an email would answer as its first spelling in the file happened to be written.
        A search whose pages cannot all be read, or do not agree with each other (`Pages`),
        fails: a lead it did not read could have the email too.
        """
        wanted, ids = normal_email(email), []
        pages = Pages()
        assert self._searcher is not None
        searcher: Searcher = self._searcher
        for _ in range(MAX_PAGES):
            tries = self._deliverer.row_attempts()
            result = await self._deliverer.search(searcher, wanted, pages.after, tries)
            page = result.reply.page if result.reply is not None else None
            if result.status is not Status.UPDATED or page is None:
                return EmailIds(failed=result)
            ids += [lead for lead, found in page.leads if normal_email(found) == wanted]
            why = pages.read(page)
            if why:
                return _unfollowable(result, why)
            if pages.after is None:
                return EmailIds(tuple(ids))  # `Pages` saw no lead twice
        return _unfollowable(result, f"it did not end within {MAX_PAGES} pages")

    def _settle(self, row: Row, item: ByEmail, answer: EmailIds) -> Admitted:
        email = item.email
        if answer.failed is not None:
            done = answer.failed
            if done.status is Status.NOT_FOUND:  # a list has no lead to miss: no search there
                message = (
                    f"the search for {email} was answered {done.http_status} "
                    f"({done.message or done.error_code}): the API at --base-url has no lead "
                    "search (GET /v1/leads?search=); nothing was sent for this row"
                )
                return _outcome(row, email, Status.FAILED, message, done.http_status, "NO_SEARCH")
            what = "failed" if done.status is Status.FAILED else "was refused"
            if done.status is Status.ABORTED:
                what = "was cut off"
            message = f"the search for {email} {what}: {done.message or done.error_code}"
            return _outcome(row, email, done.status, message, done.http_status, done.error_code)
        if not answer.ids:
            return _outcome(row, email, Status.NOT_FOUND, f"no lead has the email {email}")
        if len(answer.ids) > 1:
            message = (
                f"{len(answer.ids)} leads have the email {email} ({_candidates(answer.ids)}); "
                "update them by id"
            )
            return _outcome(row, email, Status.REJECTED, message, code="AMBIGUOUS_EMAIL")
        try:
            update = LeadUpdate.model_validate({**item.update.model_dump(), "id": answer.ids[0]})
        except ValidationError:
            message = f"the search for {email} gave an id that is not a plain token"
            return _outcome(row, email, Status.REJECTED, message, code="UNSAFE_ID")
        return row._replace(item=update)

    def close(self) -> None:
        for task in self._searches.values():
            task.cancel()
        self._answers.close()


class Pages:
    """What the pages of one search said so far, to tell when they cannot all be read.

    Every page must be the one asked for, in the shape of the first (by cursor or by number),
    with the same count of pages and of leads (`total`); no lead may come twice (the pages moved
    while they were read, so one may have been missed); a cursor given twice means the pages go
    round. When the last page is read, the leads read must be as many as the `total` said.
    """

    def __init__(self) -> None:
        self.after: str | int | None = None  # the page to ask for next: a cursor, or a number
        self._first: Page | None = None
        self._number = 0  # the pages read
        self._seen: set[str] = set()
        self._cursors: set[str] = set()

    def read(self, page: Page) -> str:
        """Take `page` in: why the search cannot be read whole, or "" (then `after` is the next
        page to ask for, None when there is none)."""
        asked, self.after = self.after, None
        self._number += 1
        first = self._first = self._first or page
        why = page.broken or self._disagreement(first, page) or self._next(page, asked)
        if why or (why := self._repeat(page)):
            return why
        if self.after is None and first.total is not None and len(self._seen) != first.total:
            return (
                f"the API counts {first.total} leads for it, and its pages held {len(self._seen)}"
            )
        return ""

    def _next(self, page: Page, asked: str | int | None) -> str:
        """Why `page` is not the one asked for (its cursor was given before, its number is
        another); else "", and `after` is set to the page that follows it, if one does."""
        if page.next_cursor is not None:
            if page.next_cursor in self._cursors:
                return "the API gave a cursor it had given before (the pages go round)"
            self._cursors.add(page.next_cursor)
            self.after = page.next_cursor
        elif page.pages is not None and page.number is not None:
            why = _numbered(page, asked)
            if why:
                return why
            self.after = page.number + 1 if page.number < page.pages else None
        return ""

    def _disagreement(self, first: Page, page: Page) -> str:
        """How `page` contradicts the first page of the search, if it does."""
        number = self._number
        if page.shape != first.shape:
            by = {"cursor": "by cursor", "number": "by number", "": "not at all"}
            return f"page 1 was paged {by[first.shape]}, page {number} {by[page.shape]}"
        for what, then, now in (
            ("pages", first.pages, page.pages),
            ("leads", first.total, page.total),
        ):
            if now != then:
                return (
                    f"the API's count of {what} changed between pages: {_count(then)} on page 1, "
                    f"{_count(now)} on page {number}"
                )
        return ""

    def _repeat(self, page: Page) -> str:
        seen = self._seen
        before = len(seen)
        seen.update(lead for lead, _ in page.leads)
        if len(seen) - before < len(page.leads):
            return "a lead came twice (the pages moved while they were read)"
        return ""


def _count(count: int | None) -> str:
    return "none" if count is None else str(count)


def _numbered(page: Page, asked: str | int | None) -> str:
    """Why a page by number is not the one asked for, or there are too many to read."""
    assert page.pages is not None
    assert page.number is not None
    expected = asked if isinstance(asked, int) else 1
    if page.number != expected:
        return f"asked for page {expected}, the API answered page {page.number}"
    if page.pages > MAX_PAGES:
        return f"the API counts {page.pages} pages, more than the {MAX_PAGES} read"
    return ""


def _candidates(ids: tuple[str, ...]) -> str:
    """The ids an ambiguous email names (`SHOWN_IDS` at most), each as text safe to show."""
    shown = ", ".join(one_line(lead, 64) for lead in ids[:SHOWN_IDS])
    more = len(ids) - SHOWN_IDS
    return f"{shown} and {more} more" if more > 0 else shown


def _unfollowable(result: Delivery, why: str) -> EmailIds:
    message = f"its pages cannot all be read: {why}; a lead it did not read may have it too"
    failed = Delivery(Status.FAILED, result.attempts, result.http_status, "PAGINATION", message)
    return EmailIds(failed=failed)


def _outcome(
    row: Row,
    email: str,
    status: Status,
    message: str,
    http: int | None = None,
    code: str | None = None,
) -> Outcome:
    return Outcome.trusted(
        row=row.number,
        line=row.line,
        id="",
        status=status,
        http_status=http,
        error_code=code,
        message=message,
        attempts=0,
        duration_ms=None,
        email=email,
        ref=row.ref,
    )

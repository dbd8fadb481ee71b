"""Matching rows by email: exact, once per email, in input order, within the job's limiter and
retries. A fake API in virtual time: its search is a case-insensitive substring match over
lower-cased text, as the real one is assumed to be (or a case-sensitive one), in pages of two so
that every answer takes several pages."""

from __future__ import annotations

import asyncio
import bisect
import collections
import math
import random
from pathlib import Path
from typing import Any

import pytest

from bulk_updater import (
    BulkUpdater,
    LeadUpdate,
    Outcome,
    Reply,
    Source,
    Status,
    StopReason,
    Summary,
)
from bulk_updater.engine.emails import Pages
from bulk_updater.pages import Page
from bulk_updater.report import FinishedRows
from tests.conftest import VirtualTimeLoop, read_report, write_csv

PAGE = 2


class FakeApi:
    """A `Sender` that can search: leads by id with their emails; every call recorded."""

    def __init__(
        self, emails: dict[str, str], *, latency: float = 0.01, case_sensitive: bool = False
    ) -> None:
        self.emails = emails
        self.latency = latency
        self.case_sensitive = case_sensitive  # the API does not say which its search is
        self.searches: collections.Counter[str] = collections.Counter()
        self.patches: list[tuple[float, str, dict[str, Any]]] = []
        self.answers: dict[str, list[Reply]] = {}  # scripted answers to a search, in order
        self.patches_fail: set[str] = set()  # leads whose PATCH is answered 503
        self.slow: dict[str, float] = {}  # the latency of some searches
        self.starts: list[float] = []  # when each request began
        self.in_flight = self.most_in_flight = 0

    async def _start(self, latency: float) -> None:
        self.starts.append(asyncio.get_running_loop().time())
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(latency)
        finally:
            self.in_flight -= 1

    async def search(self, text: str, cursor: str | None) -> Reply:
        self.searches[text] += 1
        await self._start(self.slow.get(text, self.latency))
        scripted = self.answers.get(text)
        if scripted:
            return scripted.pop(0)
        fold = str if self.case_sensitive else str.lower
        found = [(i, e) for i, e in self.emails.items() if fold(text) in fold(e)]
        start = int(cursor or 0)
        more = start + PAGE < len(found)
        page = Page(tuple(found[start : start + PAGE]), str(start + PAGE) if more else None)
        return Reply(200, page=page)

    async def send(self, update: LeadUpdate) -> Reply:
        self.patches.append((asyncio.get_running_loop().time(), update.id, update.body()))
        await self._start(self.latency)
        if update.id not in self.emails:
            return Reply(404, "NOT_FOUND", "Lead not found")
        if update.id in self.patches_fail:
            return Reply(503, "HTTP_503", "busy")
        return Reply(200)


LEADS = {
    "lead1": "ann@x.com",
    "lead2": "joann@x.com",  # a decoy: holds ann@x.com
    "lead3": "ann@x.com.au",  # another
    "lead4": "bo@y.org",
    "lead5": "twin@z.io",
    "lead6": "TWIN@z.io",  # one email on two leads: which one is meant cannot be known
}


async def run(
    rows: list[dict[str, Any]], api: FakeApi, **settings: Any
) -> tuple[Summary, dict[int, Outcome]]:
    outcomes: list[Outcome] = []
    settings = {"rate": 0, "concurrency": 4, **settings}
    async with BulkUpdater(sender=api, **settings) as updater:
        summary = await updater.run(rows, on_outcome=outcomes.append)
    return summary, {o.row: o for o in outcomes}


async def test_an_email_resolves_to_the_one_lead_that_has_exactly_it(
    virtual_time: VirtualTimeLoop,
) -> None:
    api = FakeApi(LEADS)
    summary, outcomes = await run([{"email": " Ann@X.com ", "jobTitle": "CRO"}], api)
    assert outcomes[1].status is Status.UPDATED
    assert outcomes[1].id == "lead1"
    assert outcomes[1].email == "Ann@X.com"
    assert [(lead, body) for _, lead, body in api.patches] == [("lead1", {"jobTitle": "CRO"})]
    assert summary.searches == 2  # three leads hold the text: two pages
    assert summary.requests == 3


@pytest.mark.parametrize("case_sensitive", [False, True], ids=["any-case", "case-sensitive"])
async def test_an_email_in_capitals_finds_its_lead_whatever_the_search_does_with_case(
    virtual_time: VirtualTimeLoop, case_sensitive: bool
) -> None:
    """The API stores emails lower-cased: the search is for that text, not the row's spelling."""
    api = FakeApi(LEADS, case_sensitive=case_sensitive)
    rows = [{"email": "ANN@X.COM", "city": "Paris"}, {"email": "Bo@Y.org", "city": "Oslo"}]
    _, outcomes = await run(rows, api)
    assert [(o.status, o.id, o.email) for o in outcomes.values()] == [
        (Status.UPDATED, "lead1", "ANN@X.COM"),
        (Status.UPDATED, "lead4", "Bo@Y.org"),
    ]
    assert set(api.searches) == {"ann@x.com", "bo@y.org"}


async def test_no_lead_and_two_leads_are_told_apart(virtual_time: VirtualTimeLoop) -> None:
    api = FakeApi(LEADS)
    rows = [{"email": "nobody@x.com", "city": "A"}, {"email": "twin@z.io", "city": "B"}]
    _, outcomes = await run(rows, api)
    assert outcomes[1].status is Status.NOT_FOUND
    assert outcomes[1].message == "no lead has the email nobody@x.com"
    assert outcomes[2].status is Status.REJECTED
    assert outcomes[2].error_code == "AMBIGUOUS_EMAIL"
    assert outcomes[2].message == (
        "2 leads have the email twin@z.io (lead5, lead6); update them by id"
    )
    assert api.patches == []


async def test_rows_matched_by_email_carry_their_ref_whatever_the_search_found(
    virtual_time: VirtualTimeLoop,
) -> None:
    rows = [
        {"email": "ann@x.com", "city": "A", "ref": "r1"},
        {"email": "nobody@x.com", "city": "B", "ref": "r2"},
        {"email": "twin@z.io", "city": "C", "ref": "r3"},
    ]
    _, outcomes = await run(rows, FakeApi(LEADS))
    assert [(o.status, o.ref) for _, o in sorted(outcomes.items())] == [
        (Status.UPDATED, "r1"),
        (Status.NOT_FOUND, "r2"),
        (Status.REJECTED, "r3"),
    ]


async def test_an_ambiguous_email_names_five_of_its_leads_at_most(
    virtual_time: VirtualTimeLoop,
) -> None:
    api = FakeApi({f"lead{n}": "many@x.com" for n in range(7)})
    _, outcomes = await run([{"email": "many@x.com", "city": "x"}], api)
    assert outcomes[1].error_code == "AMBIGUOUS_EMAIL"
    assert outcomes[1].message == (
        "7 leads have the email many@x.com (lead0, lead1, lead2, lead3, lead4 and 2 more); "
        "update them by id"
    )


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("straße@x.com", "strasse@x.com"),
        ("\u017fam@x.com", "sam@x.com"),  # a long s
        ("\u03c2@x.com", "\u03c3@x.com"),  # a final sigma, a sigma
    ],
    ids=["eszett", "long-s", "final-sigma"],
)
async def test_emails_that_only_casefold_makes_equal_are_two_leads(
    virtual_time: VirtualTimeLoop, first: str, second: str
) -> None:
    """The API lower-cases emails: one search must not answer for both, nor match both."""
    api = FakeApi({"lead1": first, "lead2": second})
    rows = [{"email": first, "city": "first"}, {"email": second.upper(), "city": "second"}]
    _, outcomes = await run(rows, api)
    assert [(o.status, o.id) for o in outcomes.values()] == [
        (Status.UPDATED, "lead1"),
        (Status.UPDATED, "lead2"),
    ]
    assert sorted((lead, body["city"]) for _, lead, body in api.patches) == [
        ("lead1", "first"),
        ("lead2", "second"),
    ]
    assert set(api.searches) == {first, second}


async def test_a_trailing_non_breaking_space_makes_another_lead(
    virtual_time: VirtualTimeLoop,
) -> None:
    """The row whose email holds the space is refused (the input is more likely wrong than the
    lead), never trimmed into the other lead's email."""
    api = FakeApi({"lead1": "sam@x.com", "lead2": "sam@x.com\u00a0"})
    rows = [{"email": "sam@x.com", "city": "x"}, {"email": "sam@x.com\u00a0", "city": "y"}]
    _, outcomes = await run(rows, api)
    assert (outcomes[1].status, outcomes[1].id) == (Status.UPDATED, "lead1")
    assert outcomes[2].status is Status.INVALID
    assert "U+00A0" in outcomes[2].message
    assert [(lead, body) for _, lead, body in api.patches] == [("lead1", {"city": "x"})]


async def test_each_distinct_email_is_searched_once_however_many_rows_carry_it(
    virtual_time: VirtualTimeLoop,
) -> None:
    api = FakeApi(LEADS)
    spellings = ["bo@y.org", "BO@Y.ORG", " Bo@y.org", "bo@y.org"]
    rows = [{"email": e, "city": str(n)} for n, e in enumerate(spellings * 5)]
    rows += [{"email": "nobody@x.com", "city": "x"}] * 3
    summary, outcomes = await run(rows, api)
    assert sum(api.searches.values()) == 2  # bo@y.org once, nobody@x.com once
    assert summary.searches == 2
    assert [o.status for o in outcomes.values()].count(Status.UPDATED) == 20
    assert [o.status for o in outcomes.values()].count(Status.NOT_FOUND) == 3
    # the lead holds the last row's value: rows of one lead go in input order
    assert api.patches[-1][2] == {"city": "19"}
    assert [body["city"] for _, _, body in api.patches] == [str(n) for n in range(20)]


async def test_a_lead_reached_by_email_and_by_id_keeps_input_order(
    virtual_time: VirtualTimeLoop,
) -> None:
    """The email row's search takes time; the id row after it must still go second."""
    api = FakeApi(LEADS, latency=0.5)
    rows = [{"email": "bo@y.org", "city": "first"}, {"id": "lead4", "city": "second"}]
    _, outcomes = await run(rows, api)
    assert [body["city"] for _, lead, body in api.patches if lead == "lead4"] == [
        "first",
        "second",
    ]
    assert all(o.status is Status.UPDATED for o in outcomes.values())


async def test_searches_run_side_by_side_within_the_concurrency(
    virtual_time: VirtualTimeLoop,
) -> None:
    emails = {f"lead{n}": f"user{n}@x.com" for n in range(40)}
    api = FakeApi(emails, latency=1.0)
    rows = [{"email": f"user{n}@x.com", "city": "x"} for n in range(40)]
    summary, _ = await run(rows, api)
    assert summary.counts[Status.UPDATED] == 40
    # 40 searches and 40 updates of 1 s, four at a time (`concurrency=4` counts both): about
    # 20 s, not the 80 s of one request after the other
    assert virtual_time.time() <= (40 + 40) / 4 + 1
    assert api.most_in_flight == 4


async def test_slow_searches_neither_exceed_the_concurrency_nor_burst_past_the_rate(
    virtual_time: VirtualTimeLoop,
) -> None:
    """Searches run outside the workers. Had they taken a start slot and then waited for a
    connection, the slots taken while the first four hang would all go out at once."""
    emails = {f"lead{n}": f"user{n}@x.com" for n in range(40)}
    api = FakeApi(emails, latency=0.01)
    api.slow = {f"user{n}@x.com": 4.0 for n in range(4)}
    rows = [{"email": f"user{n}@x.com", "city": "x"} for n in range(40)]
    summary, _ = await run(rows, api, rate=5)
    assert summary.counts[Status.UPDATED] == 40
    assert api.most_in_flight <= 4
    starts = sorted(api.starts)
    assert max(bisect.bisect_left(starts, t + 1) - n for n, t in enumerate(starts)) <= 5


async def test_a_search_is_retried_and_paced_like_any_request(
    virtual_time: VirtualTimeLoop,
) -> None:
    api = FakeApi(LEADS)
    api.answers["bo@y.org"] = [
        Reply(503, "HTTP_503", "busy"),
        Reply(429, "RATE_LIMITED", "slow", retry_after=2.0),
    ]
    summary, outcomes = await run([{"email": "bo@y.org", "city": "x"}], api)
    assert outcomes[1].status is Status.UPDATED
    assert summary.retries == 2
    assert summary.rate_limited == 1
    assert summary.searches == 3


async def test_a_search_always_answered_429_backs_off_alone_and_stalls_no_more(
    virtual_time: VirtualTimeLoop,
) -> None:
    """The rows behind a search wait for it (input order), so nothing else is sent meanwhile:
    its 429s cannot be told apart by other rows' answers. After one shared pause it backs off
    alone, gives up after its capped 429s, and the job keeps its rate."""
    emails = {f"lead{n}": f"user{n}@x.com" for n in range(60)}
    api = FakeApi(emails)
    api.answers["stuck@x.com"] = [Reply(429, "RATE_LIMITED", "slow", retry_after=0.0)] * 100
    rows = [{"email": "stuck@x.com", "city": "x"}]
    rows += [{"id": f"lead{n}", "city": str(n)} for n in range(1, 60)]
    summary, outcomes = await run(rows, api, rate=20, max_attempts=2)
    stuck = outcomes[1]
    assert stuck.status is Status.FAILED
    assert "rate limited 20 times" in stuck.message  # 10 x --max-attempts
    assert api.searches["stuck@x.com"] == 20
    assert all(outcomes[n].status is Status.UPDATED for n in range(2, 61))
    assert summary.stopped is None
    # One shared pause (up to 0.5 s), then 19 waits alone of the first backoff (at most 0.5 s),
    # then 59 updates at 20/s: not a pause, and a cut of the rate, for every 429.
    assert virtual_time.time() <= 20 * 0.5 + 59 * 1.01 / 20 + 1
    assert summary.rate_hint is None  # the rate was cut once at most: no "the API accepts less"
    assert summary.settled_rate is not None
    assert summary.settled_rate >= 10


async def test_a_search_that_keeps_failing_fails_its_rows(virtual_time: VirtualTimeLoop) -> None:
    api = FakeApi(LEADS)
    api.answers["bo@y.org"] = [Reply(503, "HTTP_503", "busy")] * 10
    _, outcomes = await run([{"email": "bo@y.org", "city": "x"}] * 2, api, max_attempts=3)
    assert [o.status for o in outcomes.values()] == [Status.FAILED, Status.FAILED]
    assert "the search for bo@y.org failed" in outcomes[1].message
    assert api.searches["bo@y.org"] == 3  # one search for both rows, with its retries


async def test_a_search_answered_404_fails_its_rows_instead_of_not_finding_them(
    virtual_time: VirtualTimeLoop,
) -> None:
    """A 404 to a list means the search is not there (a wrong --base-url, a proxy), not that no
    lead has the email: the rows fail, to be sent again by --resume, and say why."""
    api = FakeApi(LEADS)
    api.answers["bo@y.org"] = [Reply(404, "NOT_FOUND", "Cannot GET /v1/leads")]
    _, outcomes = await run([{"email": "bo@y.org", "city": "x"}], api)
    (outcome,) = outcomes.values()
    assert (outcome.status, outcome.http_status, outcome.error_code) == (
        Status.FAILED,
        404,
        "NO_SEARCH",
    )
    assert "has no lead search" in outcome.message
    assert not api.patches


async def test_a_refused_key_at_a_search_stops_the_job(virtual_time: VirtualTimeLoop) -> None:
    api = FakeApi(LEADS)
    api.answers["bo@y.org"] = [Reply(401, "UNAUTHORIZED", "Invalid API key")]
    rows = [{"email": "bo@y.org", "city": "x"}, {"id": "lead1", "city": "y"}]
    summary, outcomes = await run(rows, api)
    assert summary.stopped is StopReason.KEY_REFUSED
    assert outcomes[1].status is Status.ABORTED


async def test_an_unsafe_id_from_the_search_is_never_sent(virtual_time: VirtualTimeLoop) -> None:
    api = FakeApi({"../account": "evil@x.com"})
    _, outcomes = await run([{"email": "evil@x.com", "city": "x"}], api)
    assert outcomes[1].status is Status.REJECTED
    assert outcomes[1].error_code == "UNSAFE_ID"
    assert api.patches == []


@pytest.mark.parametrize("odd", ["", "lead1\nlead4", "lead1\n"])
async def test_an_odd_id_gives_every_row_of_its_email_the_same_answer(
    virtual_time: VirtualTimeLoop, odd: str
) -> None:
    """The last row comes long after the search answered, from what was kept of it: an id that
    is empty or holds a line break is still one unsafe id, not no lead or two."""
    api = FakeApi({**LEADS, odd: "odd@x.com"})
    rows = [{"email": "odd@x.com", "city": "x"}]
    rows += [{"email": f"user{n}@x.com", "city": "x"} for n in range(300)]
    rows += [{"email": "ODD@x.com", "city": "y"}]
    _, outcomes = await run(rows, api)
    assert api.searches["odd@x.com"] + api.searches["ODD@x.com"] == 1
    assert [(o.status, o.error_code) for o in (outcomes[1], outcomes[302])] == [
        (Status.REJECTED, "UNSAFE_ID")
    ] * 2
    assert api.patches == []


@pytest.mark.parametrize(("match", "expected"), [("email", "lead4"), ("id", "lead1")])
async def test_match_decides_what_a_row_with_both_is_matched_by(
    virtual_time: VirtualTimeLoop, match: str, expected: str
) -> None:
    api = FakeApi(LEADS)
    _, outcomes = await run([{"id": "lead1", "email": "bo@y.org", "city": "x"}], api, match=match)
    assert outcomes[1].id == expected


async def test_match_id_refuses_rows_without_an_id(virtual_time: VirtualTimeLoop) -> None:
    _, outcomes = await run([{"email": "bo@y.org", "city": "x"}], FakeApi(LEADS), match="id")
    assert outcomes[1].status is Status.INVALID
    assert "--match id" in outcomes[1].message


async def test_resume_does_not_search_a_finished_row_again(virtual_time: VirtualTimeLoop) -> None:
    api = FakeApi(LEADS)
    finished = FinishedRows()
    finished.mark(1, Status.UPDATED)
    rows = [{"email": "bo@y.org", "city": "x"}, {"email": "ann@x.com", "city": "y"}]
    async with BulkUpdater(sender=api, rate=0) as updater:
        outcomes = [o async for o in updater.stream(rows, skip=finished)]
    assert {o.row: o.status for o in outcomes} == {1: Status.SKIPPED, 2: Status.UPDATED}
    assert set(api.searches) == {"ann@x.com"}


async def test_a_sender_that_cannot_search_makes_email_rows_invalid(
    virtual_time: VirtualTimeLoop,
) -> None:
    class Plain:
        async def send(self, update: LeadUpdate) -> Reply:
            return Reply(200)

    async with BulkUpdater(sender=Plain(), rate=0) as updater:
        (outcome,) = [o async for o in updater.stream([{"email": "bo@y.org", "city": "x"}])]
    assert outcome.status is Status.INVALID
    assert "needs the API" in outcome.message


@pytest.mark.parametrize(
    ("rows", "earlier"),
    [
        # An email row sent again; a later id row of its lead the earlier run finished.
        ([{"email": "ann@x.com", "jobTitle": "OLD"}, {"id": "lead1", "jobTitle": "NEW"}],
         [Status.FAILED, Status.UPDATED]),
        # An id row sent again; a later email row of its lead the earlier run finished.
        ([{"id": "lead1", "jobTitle": "OLD"}, {"email": " Ann@X.com ", "jobTitle": "NEW"}],
         [Status.FAILED, Status.UPDATED]),
        # Both by email, one spelt differently.
        ([{"email": "ann@x.com", "jobTitle": "OLD"}, {"email": "ANN@x.com", "jobTitle": "NEW"}],
         [Status.FAILED, Status.UPDATED]),
    ],
)  # fmt: skip
async def test_resume_keeps_the_last_row_winning_across_ids_and_emails(
    virtual_time: VirtualTimeLoop, rows: list[dict[str, str]], earlier: list[Status]
) -> None:
    """A row sent again on resume takes the later rows of its lead with it, though one of them
    names the lead by id and the other by email (found only by the search)."""
    api = FakeApi(LEADS)
    finished = FinishedRows()
    for number, status in enumerate(earlier, start=1):
        finished.mark(number, status)
    async with BulkUpdater(sender=api, rate=0) as updater:
        outcomes = [o async for o in updater.stream(rows, skip=finished)]
    assert sorted((o.row, o.status) for o in outcomes) == [(1, Status.UPDATED), (2, Status.UPDATED)]
    assert [(lead, body["jobTitle"]) for _, lead, body in api.patches] == [
        ("lead1", "OLD"),
        ("lead1", "NEW"),
    ]


async def test_resume_skips_finished_rows_of_other_leads_after_a_row_sent_again(
    virtual_time: VirtualTimeLoop,
) -> None:
    api = FakeApi(LEADS)
    finished = FinishedRows()
    for number, status in enumerate([Status.FAILED, Status.UPDATED, Status.UPDATED], start=1):
        finished.mark(number, status)
    rows = [
        {"email": "ann@x.com", "city": "a"},  # sent again: its lead is found by the search
        {"id": "lead4", "city": "b"},  # finished, another lead: waits for the search, skipped
        {"email": "bo@y.org", "city": "c"},  # finished, searched to learn its lead: skipped
    ]
    async with BulkUpdater(sender=api, rate=0) as updater:
        outcomes = [o async for o in updater.stream(rows, skip=finished)]
    by_row = sorted(outcomes, key=lambda o: o.row)
    assert [o.status for o in by_row] == [Status.UPDATED, Status.SKIPPED, Status.SKIPPED]
    assert [lead for _, lead, _ in api.patches] == ["lead1"]


# --- resume: a finished row keeps its outcome, whatever happens to the rows around it


async def resume_run(
    source: Path, report: Path, api: FakeApi, stop_at: float | None = None, **settings: Any
) -> Summary:
    """One run over `source` that continues `report` (its earlier run's), stopped at `stop_at`."""
    loop = asyncio.get_running_loop()
    async with BulkUpdater(sender=api, rate=0, grace=1, **settings) as updater:
        if stop_at is not None:
            loop.call_later(stop_at, updater.stop)
        return await updater.run(Source(source), report=report, resume=True)


async def test_a_stop_during_a_search_leaves_a_finished_row_finished(
    virtual_time: VirtualTimeLoop, tmp_path: Path
) -> None:
    """The issue's reproduction: row 1 failed, row 2 was updated; a resume searches both (row 2
    only to learn whether its lead is row 1's) and stops during the searches. Row 2 stays
    `updated`, and the next run does not send it again."""
    source = write_csv(
        tmp_path / "in.csv", ["email", "city"], [("ann@x.com", "a"), ("bo@y.org", "b")]
    )
    report = tmp_path / "in.csv.report.csv"
    first = FakeApi(LEADS)
    first.answers["ann@x.com"] = [Reply(503, "HTTP_503", "busy")] * 2
    await resume_run(source, report, first, max_attempts=2)
    assert [(r["row"], r["status"]) for r in read_report(report)] == [
        ("1", "failed"),
        ("2", "updated"),
    ]

    slow = FakeApi(LEADS)
    slow.slow = {"ann@x.com": 100.0, "bo@y.org": 100.0}
    summary = await resume_run(source, report, slow, stop_at=3.0)
    assert summary.stopped is StopReason.INTERRUPTED
    assert set(slow.searches) == {"ann@x.com", "bo@y.org"}  # the stop came during both
    assert (summary.counts[Status.ABORTED], summary.counts[Status.SKIPPED]) == (1, 1)
    assert [(r["row"], r["status"]) for r in read_report(report)] == [
        ("1", "aborted"),
        ("2", "updated"),
    ]

    last = FakeApi(LEADS)
    summary = await resume_run(source, report, last)
    assert [lead for _, lead, _ in last.patches] == ["lead1"]  # row 2 is not sent again
    assert [(r["row"], r["status"]) for r in read_report(report)] == [
        ("1", "updated"),
        ("2", "updated"),
    ]


def finished_as(*statuses: Status) -> FinishedRows:
    finished = FinishedRows()
    for number, status in enumerate(statuses, start=1):
        finished.mark(number, status)
    return finished


async def stream_resumed(
    rows: list[dict[str, str]], api: FakeApi, finished: FinishedRows, stop_at: float | None = None
) -> dict[int, Outcome]:
    loop = asyncio.get_running_loop()
    async with BulkUpdater(sender=api, rate=0, grace=1, max_attempts=2) as updater:
        if stop_at is not None:
            loop.call_later(stop_at, updater.stop)
        return {o.row: o async for o in updater.stream(rows, skip=finished)}


async def test_a_failed_search_leaves_a_finished_row_finished(
    virtual_time: VirtualTimeLoop,
) -> None:
    api = FakeApi(LEADS)
    api.answers["bo@y.org"] = [Reply(503, "HTTP_503", "busy")] * 2
    rows = [{"email": "ann@x.com", "city": "a"}, {"email": "bo@y.org", "city": "b"}]
    outcomes = await stream_resumed(rows, api, finished_as(Status.FAILED, Status.UPDATED))
    assert [(o.status, o.message) for _, o in sorted(outcomes.items())] == [
        (Status.UPDATED, ""),
        (Status.SKIPPED, "finished by an earlier run (updated)"),
    ]
    assert [lead for _, lead, _ in api.patches] == ["lead1"]


async def test_a_finished_row_keeps_its_outcome_when_its_lead_is_gone_or_ambiguous(
    virtual_time: VirtualTimeLoop,
) -> None:
    """Not found or ambiguous now: the row could not be sent anyway, so the earlier run's line
    stands, even after a row sent again by id (which may be of any lead)."""
    api = FakeApi(LEADS)
    rows = [
        {"id": "lead4", "city": "a"},
        {"email": "gone@x.com", "city": "b"},
        {"email": "twin@z.io", "city": "c"},
    ]
    finished = finished_as(Status.FAILED, Status.UPDATED, Status.UPDATED)
    outcomes = await stream_resumed(rows, api, finished)
    assert [o.status for o in outcomes.values()] == [Status.UPDATED, Status.SKIPPED, Status.SKIPPED]


async def test_a_finished_row_whose_search_did_not_answer_keeps_its_outcome_after_an_id_row(
    virtual_time: VirtualTimeLoop,
) -> None:
    """The rule chosen for the one case where it and "the last row wins" pull apart: row 1 (by
    id, sent again) may be of row 2's lead, but row 2's search did not say. Row 2 keeps its
    outcome and is not sent again (it was applied once, by the earlier run); if row 1 was of its
    lead, that lead now holds row 1's value, and row 2's outcome says so."""
    api = FakeApi(LEADS)
    api.answers["ann@x.com"] = [Reply(503, "HTTP_503", "busy")] * 2
    rows = [{"id": "lead1", "city": "a"}, {"email": "ann@x.com", "city": "b"}]
    outcomes = await stream_resumed(rows, api, finished_as(Status.FAILED, Status.UPDATED))
    assert [o.status for o in outcomes.values()] == [Status.UPDATED, Status.SKIPPED]
    assert outcomes[2].message == (
        "finished by an earlier run (updated), and kept: its search did not answer (the search "
        "for ann@x.com failed: busy), so whether a row before it sent again in this run was of its "
        "lead is unknown; if one was, the lead holds that row's value"
    )
    assert [(lead, body) for _, lead, body in api.patches] == [("lead1", {"city": "a"})]


async def test_a_stop_during_its_search_leaves_a_finished_row_finished_after_an_id_row(
    virtual_time: VirtualTimeLoop, tmp_path: Path
) -> None:
    """The review's reproduction: row 1 (by id) failed and row 2 (by email, another lead) was
    updated; a resume sends row 1 and stops during row 2's search. Row 2 stays `updated`, and the
    next run sends nothing."""
    source = write_csv(
        tmp_path / "in.csv", ["id", "email", "city"], [("lead1", "", "a"), ("", "bo@y.org", "b")]
    )
    report = tmp_path / "in.csv.report.csv"
    first = FakeApi(LEADS)
    first.patches_fail = {"lead1"}
    await resume_run(source, report, first, max_attempts=1)
    assert [(r["row"], r["status"]) for r in read_report(report)] == [
        ("1", "failed"),
        ("2", "updated"),
    ]

    slow = FakeApi(LEADS)
    slow.slow = {"bo@y.org": 100.0}
    await resume_run(source, report, slow, stop_at=3.0)
    assert slow.searches == {"bo@y.org": 1}  # the stop came during it
    assert [lead for _, lead, _ in slow.patches] == ["lead1"]
    assert [(r["row"], r["status"]) for r in read_report(report)] == [
        ("1", "updated"),
        ("2", "updated"),
    ]

    last = FakeApi(LEADS)
    await resume_run(source, report, last)
    assert last.patches == []
    assert last.searches == {}


async def test_a_finished_row_is_not_sent_again_for_a_later_row_of_its_lead(
    virtual_time: VirtualTimeLoop,
) -> None:
    """The review's second reproduction: row 2 waits for row 1's search; meanwhile row 3, of
    row 2's lead, is admitted to be sent again. Only rows before row 2 may take it with them."""
    api = FakeApi(LEADS)
    api.slow = {"ann@x.com": 2.0}
    rows = [
        {"email": "ann@x.com", "city": "a"},
        {"id": "lead4", "city": "b"},
        {"id": "lead4", "city": "c"},
    ]
    finished = finished_as(Status.FAILED, Status.UPDATED, Status.FAILED)
    outcomes = await stream_resumed(rows, api, finished)
    assert [outcomes[n].status for n in (1, 2, 3)] == [
        Status.UPDATED,
        Status.SKIPPED,
        Status.UPDATED,
    ]
    assert sorted((lead, body["city"]) for _, lead, body in api.patches) == [
        ("lead1", "a"),
        ("lead4", "c"),
    ]


async def test_a_stop_leaves_a_finished_id_row_waiting_for_searches_finished(
    virtual_time: VirtualTimeLoop,
) -> None:
    """Row 2 (by id) waits for row 1's search to learn whether row 1 is of its lead; the stop
    comes first: row 1 was never sent, so row 2 keeps its outcome."""
    api = FakeApi(LEADS)
    api.slow = {"ann@x.com": 100.0}
    rows = [{"email": "ann@x.com", "city": "a"}, {"id": "lead4", "city": "b"}]
    outcomes = await stream_resumed(rows, api, finished_as(Status.FAILED, Status.UPDATED), 3.0)
    assert [o.status for o in outcomes.values()] == [Status.ABORTED, Status.SKIPPED]
    assert api.patches == []


@pytest.mark.parametrize("seed", range(40))
async def test_a_finished_row_of_its_own_lead_is_never_sent_again_whenever_the_stop_comes(
    virtual_time: VirtualTimeLoop, seed: int
) -> None:
    """One row a lead, by email: no row sent again can be of a finished row's lead, so every
    finished row stays finished, whatever fails, however slow the searches, whenever the stop."""
    rnd = random.Random(seed)
    emails = {f"lead{n}": f"user{n}@x.com" for n in range(12)}
    api = FakeApi(emails)
    api.slow = {email: rnd.choice((0.01, 2.0, 50.0)) for email in emails.values()}
    for email in rnd.sample(sorted(emails.values()), 3):
        api.answers[email] = [Reply(503, "HTTP_503", "busy")] * rnd.randint(1, 2)
    earlier = [rnd.choice((Status.UPDATED, Status.FAILED, Status.ABORTED)) for _ in emails]
    rows = [{"email": email, "city": "x"} for email in emails.values()]
    outcomes = await stream_resumed(rows, api, finished_as(*earlier), rnd.uniform(0, 6))
    assert sorted(outcomes) == list(range(1, 13))
    for number, status in enumerate(earlier, start=1):
        if status.is_final:
            assert outcomes[number].status is Status.SKIPPED, (number, outcomes[number])
    sent = {lead for _, lead, _ in api.patches}
    assert all(not earlier[int(lead[4:])].is_final for lead in sent)


# --- the pages of one search: each taken in by `Pages`, which says why they cannot all be read


def lead_page(*ids: str, **paging: Any) -> Page:
    return Page(tuple((lead, f"{lead}@x.com") for lead in ids), **paging)


@pytest.mark.parametrize(
    ("pages", "why"),
    [
        (
            [lead_page("a", "a", shape="cursor")],
            "a lead came twice (the pages moved while they were read)",
        ),
        (
            [lead_page("a", next_cursor="c1", total=2), lead_page("a", total=2)],
            "a lead came twice (the pages moved while they were read)",
        ),
        (
            [lead_page("a", number=1, pages=3, shape="number"), lead_page("b", shape="cursor")],
            "page 1 was paged by number, page 2 by cursor",
        ),
        (
            [
                lead_page("a", number=1, pages=3, shape="number"),
                lead_page("b", number=2, pages=2, shape="number"),
            ],
            "the API's count of pages changed between pages: 3 on page 1, 2 on page 2",
        ),
        (
            [lead_page("a", next_cursor="c1"), lead_page("b", total=2)],
            "the API's count of leads changed between pages: none on page 1, 2 on page 2",
        ),
        (
            [lead_page("a", "b", "c", total=2)],
            "the API counts 2 leads for it, and its pages held 3",
        ),
        ([lead_page("a", total=2)], "the API counts 2 leads for it, and its pages held 1"),
    ],
)
def test_pages_that_do_not_agree_cannot_all_be_read(pages: list[Page], why: str) -> None:
    follow = Pages()
    said = [follow.read(page) for page in pages]
    assert said == [""] * (len(pages) - 1) + [why]


def test_pages_that_agree_are_followed_to_the_last() -> None:
    follow = Pages()
    assert follow.read(lead_page("a", number=1, pages=2, total=2, shape="number")) == ""
    assert follow.after == 2
    assert follow.read(lead_page("b", number=2, pages=2, total=2, shape="number")) == ""
    assert follow.after is None


# --- resume, rows by id and by email mixed: checked against what the input says of each lead

MIXED = {f"lead{n}": f"user{n}@x.com" for n in range(5)}


def mixed_rows(rnd: random.Random, count: int) -> tuple[list[dict[str, str]], list[str]]:
    """`count` rows, each of a random lead, named by its id or by its email; and their leads."""
    rows, leads = [], []
    for number in range(1, count + 1):
        lead = rnd.choice(sorted(MIXED))
        named = {"id": lead} if rnd.random() < 0.5 else {"email": MIXED[lead]}
        rows.append({**named, "city": f"r{number}"})
        leads.append(lead)
    return rows, leads


@pytest.mark.parametrize("seed", range(60))
async def test_a_finished_row_goes_again_only_behind_an_earlier_row_of_its_lead(
    virtual_time: VirtualTimeLoop, seed: int
) -> None:
    """Whatever the searches do and whenever the stop comes: a finished row is sent, or loses
    its outcome, only when a row before it, of its own lead, was not finished; and one sent was
    sent after such a row. With every search answered and no stop, each lead sent to ends with
    the value of its last row."""
    rnd = random.Random(seed)
    rows, leads = mixed_rows(rnd, 14)
    earlier = [rnd.choice((Status.UPDATED, Status.UPDATED, Status.FAILED)) for _ in rows]
    failing, stopping = seed % 3 == 2, seed % 3 != 0  # every search answers, and no stop, or not
    api = FakeApi(MIXED)
    api.slow = {email: rnd.choice((0.01, 1.0, 5.0)) for email in MIXED.values()}
    if failing:
        for email in rnd.sample(sorted(MIXED.values()), 2):
            api.answers[email] = [Reply(503, "HTTP_503", "busy")] * 2
    stop_at = rnd.uniform(0, 8) if stopping else None
    outcomes = await stream_resumed(rows, api, finished_as(*earlier), stop_at)

    assert sorted(outcomes) == list(range(1, len(rows) + 1))
    sent_at = {int(body["city"][1:]): at for at, _, body in api.patches}
    for number, status in enumerate(earlier, start=1):
        if not status.is_final:
            continue
        before = [n for n in range(1, number) if leads[n - 1] == leads[number - 1]]
        unfinished = [n for n in before if not earlier[n - 1].is_final]
        if outcomes[number].status is not Status.SKIPPED:
            assert unfinished, (number, outcomes[number])
        if number in sent_at:
            assert any(sent_at.get(n, math.inf) < sent_at[number] for n in unfinished), number
    if not stopping:
        last_sent: dict[str, str] = {}
        for _, lead, body in api.patches:
            last_sent[lead] = body["city"]
        last_row = {lead: f"r{n}" for n, lead in enumerate(leads, start=1)}
        assert last_sent == {lead: last_row[lead] for lead in last_sent}

"""A search's pages, as the API may give them: by cursor or (the older shape) by page number, all
read before an email counts as matched; pages that cannot all be read fail the row, never match
it on a part of the answer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web

from bulk_updater import BulkUpdater, Outcome, Status
from bulk_updater.engine.emails import MAX_PAGES
from bulk_updater.sandbox import Sandbox
from tests.conftest import make_leads

KEY = "sk_sandbox_pages"
Answer = Callable[[web.Request], dict[str, Any]]


async def run_by_email(leads: dict[str, Any], email: str, answer: Answer) -> tuple[Outcome, list]:
    """One row matched by `email`, the sandbox's search answered by `answer`; the outcome and
    the query of every search request."""
    queries: list[dict[str, str]] = []

    async def search(request: web.Request) -> web.StreamResponse | None:
        if request.method != "GET" or request.path != "/v1/leads":
            return None
        queries.append(dict(request.query))
        return web.json_response({"success": True, **answer(request)})

    outcomes: list[Outcome] = []
    async with (
        Sandbox(leads, api_key=KEY, intercept=search) as sb,
        BulkUpdater(api_key=KEY, base_url=sb.url, rate=0, max_attempts=2) as updater,
    ):
        rows = [{"email": email, "jobTitle": "CEO"}]
        await updater.run(rows, on_outcome=outcomes.append)
    (outcome,) = outcomes
    return outcome, queries


def item(leads: dict[str, Any], lead_id: str, email: str | None = None) -> dict[str, str]:
    return {"_id": lead_id, "email": email or leads[lead_id]["email"]}


# --- the older shape: pages by number


async def test_pages_by_number_are_all_read() -> None:
    leads = make_leads(3)
    a, b, c = leads
    email = leads[a]["email"]

    def by_number(request: web.Request) -> dict[str, Any]:
        number = int(request.query.get("page", "1"))
        data = {1: [item(leads, b)], 2: [item(leads, c)], 3: [item(leads, a)]}[number]
        return {"data": data, "pagination": {"page": number, "limit": 100, "total": 3, "pages": 3}}

    outcome, queries = await run_by_email(leads, email, by_number)
    assert outcome.status is Status.UPDATED
    assert outcome.id == a
    assert [q.get("page") for q in queries] == [None, "2", "3"]
    assert all("cursor" not in q for q in queries)


async def test_a_second_match_on_page_two_is_ambiguous() -> None:
    leads = make_leads(2)
    a, b = leads
    email = leads[a]["email"]

    def by_number(request: web.Request) -> dict[str, Any]:
        number = int(request.query.get("page", "1"))
        data = [item(leads, a)] if number == 1 else [item(leads, b, email.upper())]
        return {"data": data, "pagination": {"page": number, "limit": 100, "total": 2, "pages": 2}}

    outcome, _ = await run_by_email(leads, email, by_number)
    assert outcome.status is Status.REJECTED
    assert outcome.error_code == "AMBIGUOUS_EMAIL"


# --- pages that cannot all be read


def always(pagination: Any, *, full: int = 0, odd: Any = None) -> Callable[..., Answer]:
    """The same page for every request: the lead, `full - 1` others, and an `odd` item."""

    def make(leads: dict[str, Any], lead_id: str) -> Answer:
        data = [item(leads, lead_id)]
        data += [{"_id": f"f{n:023x}", "email": f"other{n}@x.example"} for n in range(full - 1)]
        data += [odd] if odd is not None else []
        return lambda request: {"data": data, "pagination": pagination}

    return make


@pytest.mark.parametrize(
    ("answer", "requests", "why"),
    [
        (always({"limit": 100, "total": 2, "hasMore": True, "nextCursor": None}), 1, "no cursor"),
        (always({"limit": 100, "total": 2, "hasMore": True, "nextCursor": ""}), 1, "no cursor"),
        (always({"limit": 100, "total": 1, "hasMore": True, "nextCursor": "same"}), 2, "before"),
        (always({"page": 1, "limit": 100, "total": 2, "pages": 2}), 2, "answered page 1"),
        (always({"page": 1, "limit": 100, "pages": MAX_PAGES + 1}), 1, f"{MAX_PAGES + 1} pages"),
        (always({"page": "one", "pages": 2}), 1, "`page` is a string, not a count"),
        (always({}, full=100), 1, "no word on the next"),
        (always({"limit": 50}, full=50), 1, "no word on the next"),
        (
            always({"limit": 50, "total": 120}, full=50),
            1,
            "counts 120 leads for it, and its pages held 50",
        ),
        (always({"hasMore": "true"}), 1, "`hasMore` is a string, not true or false"),
        (always({"hasMore": True, "nextCursor": 2}), 1, "`nextCursor` is a number, not a string"),
        (always({"total": "120"}), 1, "`total` is a string, not a count"),
        (always({"total": -1}), 1, "`total` is a negative number, not a count"),
        (always([]), 1, "`pagination` is a list, not an object"),
        (always({}, odd={"_id": 7, "email": "x@x.example"}), 1, "a lead's `_id` is a number"),
        (always({}, odd={"_id": "b" * 24}), 1, "a lead's `email` is missing, not a string"),
    ],
    ids=[
        "null-cursor",
        "empty-cursor",
        "same-cursor",
        "page-ignored",
        "too-many",
        "odd",
        "full",
        "full-of-its-limit",
        "short-of-total",
        "string-has-more",
        "number-cursor",
        "string-total",
        "negative-total",
        "list-pagination",
        "number-id",
        "no-email",
    ],
)
async def test_pages_that_cannot_all_be_read_fail_the_row(
    answer: Callable[..., Answer], requests: int, why: str
) -> None:
    leads = make_leads(1)
    (a,) = leads
    outcome, queries = await run_by_email(leads, leads[a]["email"], answer(leads, a))
    assert outcome.status is Status.FAILED
    assert outcome.error_code == "PAGINATION"
    assert "cannot all be read" in outcome.message
    assert why in outcome.message
    assert len(queries) == requests


async def test_a_last_page_by_cursor_or_a_short_page_without_pagination_ends_the_search() -> None:
    leads = make_leads(1)
    (a,) = leads
    for pagination in (
        {"hasMore": False, "nextCursor": "ignored"},
        None,
        {"limit": 100, "total": 1},
        {"limit": 100, "total": 1, "hasMore": None, "nextCursor": None},
    ):
        answer = always(pagination or {})(leads, a)
        outcome, queries = await run_by_email(leads, leads[a]["email"], answer)
        assert outcome.status is Status.UPDATED
        assert len(queries) == 1


async def test_a_full_page_is_the_last_when_the_total_says_so() -> None:
    leads = make_leads(1)
    (a,) = leads
    answer = always({"limit": 100, "total": 100}, full=100)(leads, a)
    outcome, queries = await run_by_email(leads, leads[a]["email"], answer)
    assert outcome.status is Status.UPDATED
    assert len(queries) == 1


# --- pages that say different things, or name one lead twice (the review of issue 21)


def in_turn(*paginations: Any, full: int = 100, repeat: bool = False) -> Callable[..., Answer]:
    """Page `n` answers with `paginations[n - 1]`: the lead on page 1 (and again on page 2 when
    `repeat`), others after it, up to `full` leads a page."""

    def make(leads: dict[str, Any], lead_id: str) -> Answer:
        asked: list[int] = []

        def answer(request: web.Request) -> dict[str, Any]:
            asked.append(len(asked) + 1)
            number = asked[-1]
            data = [item(leads, lead_id)] if number == 1 or repeat else []
            data += [
                {"_id": f"{number:04x}{n:020x}", "email": f"other{n}@x.example"}
                for n in range(full - len(data))
            ]
            return {"data": data, "pagination": paginations[number - 1]}

        return answer

    return make


def twice_on_one_page(leads: dict[str, Any], lead_id: str) -> Answer:
    data = [item(leads, lead_id), item(leads, lead_id)]
    return lambda request: {"data": data, "pagination": {"total": 2, "hasMore": False}}


@pytest.mark.parametrize(
    ("answer", "requests", "why"),
    [
        (
            in_turn(
                {"limit": 100, "total": 2, "hasMore": True, "nextCursor": "c1"},
                {"limit": 100, "total": 2, "hasMore": False},
                full=1,
                repeat=True,
            ),
            2,
            "a lead came twice",
        ),
        (twice_on_one_page, 1, "a lead came twice"),
        (in_turn({"hasMore": None}), 1, "no word on the next"),
        (in_turn({"nextCursor": ""}), 1, "no word on the next"),
        (in_turn({"nextCursor": None, "limit": 100}), 1, "no word on the next"),
        (
            in_turn({"page": 1, "limit": 100, "pages": 3}, {"hasMore": False}),
            2,
            "page 1 was paged by number, page 2 by cursor",
        ),
        (
            in_turn({"page": 1, "limit": 100, "pages": 3}, {"page": 2, "limit": 100, "pages": 2}),
            2,
            "count of pages changed between pages: 3 on page 1, 2 on page 2",
        ),
        (
            in_turn({"hasMore": True, "nextCursor": "c1"}, {"hasMore": False, "total": 5}),
            2,
            "none on page 1, 5 on page 2",
        ),
        (
            in_turn(
                {"total": 150, "hasMore": True, "nextCursor": "c1"},
                {"total": 100, "hasMore": False},
            ),
            2,
            "count of leads changed between pages: 150 on page 1, 100",
        ),
        (
            in_turn({"hasMore": False, "nextCursor": "c1", "page": 1, "pages": 2}, full=1),
            1,
            "disagree",
        ),
        (in_turn({"limit": 0}, full=50), 1, "a page of 50 leads says its `limit` is 0"),
        (in_turn({"total": 5, "hasMore": False}, full=10), 1, "counts 5 leads for it"),
    ],
    ids=[
        "repeated-across-pages",
        "repeated-within-a-page",
        "null-has-more-on-a-full-page",
        "empty-cursor-on-a-full-page",
        "null-cursor-on-a-full-page",
        "number-then-cursor",
        "pages-shrink",
        "total-only-on-page-two",
        "total-shrinks",
        "cursor-and-pages-disagree",
        "limit-below-the-page",
        "more-leads-than-the-total",
    ],
)
async def test_pages_that_contradict_themselves_fail_the_row(
    answer: Callable[..., Answer], requests: int, why: str
) -> None:
    """Each of these was matched to the one lead read, though the pages promised or held more."""
    leads = make_leads(1)
    (a,) = leads
    outcome, queries = await run_by_email(leads, leads[a]["email"], answer(leads, a))
    assert (outcome.status, outcome.error_code) == (Status.FAILED, "PAGINATION")
    assert why in outcome.message
    assert len(queries) == requests


async def test_pages_by_cursor_that_agree_with_their_numbers_are_followed() -> None:
    leads = make_leads(1)
    (a,) = leads
    answer = in_turn(
        {"page": 1, "pages": 2, "total": 2, "hasMore": True, "nextCursor": "c1"},
        {"page": 2, "pages": 2, "total": 2, "hasMore": False},
        full=1,
    )(leads, a)
    outcome, queries = await run_by_email(leads, leads[a]["email"], answer)
    assert (outcome.status, outcome.id) == (Status.UPDATED, a)
    assert [q.get("cursor") for q in queries] == [None, "c1"]

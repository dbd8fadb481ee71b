"""`GET /v1/leads`: substring search, tag filter, pages and cursors, item shape, checks."""

from __future__ import annotations

import base64
from typing import Any

import aiohttp
import pytest

from bulk_updater.sandbox import Sandbox

from .conftest import KEY, get, patch

ITEM_FIELDS = {
    "_id",
    "email",
    "firstName",
    "lastName",
    "companyName",
    "jobTitle",
    "tags",
    "city",
    "state",
    "country",
    "createdAt",
}


def lead(n: int, **fields: Any) -> dict[str, Any]:
    lead_id = f"{n:024x}"
    return {
        "_id": lead_id,
        "email": f"lead{n}@example.com",
        "firstName": f"First{n}",
        "lastName": f"Last{n}",
        "companyName": "Acme",
        "jobTitle": "Engineer",
        "phone": "+1-555-0100",
        "linkedinUrl": f"https://www.linkedin.com/in/lead-{n}",
        "city": "Austin",
        "state": "TX",
        "country": "US",
        "tags": ["prospect"],
        "customFields": {"industry": "SaaS"},
        "createdAt": "2026-01-01T00:00:00.000Z",
        "updatedAt": "2026-01-02T00:00:00.000Z",
        **fields,
    }


def people() -> dict[str, dict[str, Any]]:
    """Leads where "ann" sits in each searched field once, and in two fields that are not."""
    rows = [
        lead(1, email="ann@x.com"),
        lead(2, email="joann@x.com"),
        lead(3, firstName="ANNika"),
        lead(4, lastName="McCann"),
        lead(5, companyName="Hannover Re"),
        lead(6, jobTitle="Annalist"),  # not searched
        lead(7, city="Annecy", customFields={"note": "ann"}),  # not searched
        lead(8, tags=["vip", "enterprise"]),
        lead(9, tags=["vip"]),
        lead(10, email="ann.vip@x.com", tags=["enterprise", "vip", "gold"]),
    ]
    return {row["_id"]: row for row in rows}


def many(n: int) -> dict[str, dict[str, Any]]:
    return {row["_id"]: row for row in (lead(i) for i in range(n))}


async def search(
    session: aiohttp.ClientSession, url: str, **params: str
) -> tuple[int, dict[str, Any]]:
    status, body, _ = await get(session, f"{url}/v1/leads", params)
    return status, body


def ids(body: dict[str, Any]) -> list[str]:
    return [item["_id"] for item in body["data"]]


async def test_search_is_a_case_insensitive_substring_of_email_and_names(
    session: aiohttp.ClientSession,
) -> None:
    leads = people()
    async with Sandbox(leads) as sandbox:
        status, body = await search(session, sandbox.url, search="aNn")

    assert status == 200
    assert body["success"] is True
    assert ids(body) == [f"{n:024x}" for n in (1, 2, 3, 4, 5, 10)]  # in the leads' order
    assert body["pagination"] == {"limit": 20, "total": 6, "hasMore": False, "nextCursor": None}


async def test_an_email_search_also_finds_longer_emails(session: aiohttp.ClientSession) -> None:
    async with Sandbox(people()) as sandbox:
        _, body = await search(session, sandbox.url, search="ANN@x.com")

    assert [item["email"] for item in body["data"]] == ["ann@x.com", "joann@x.com"]


async def test_search_compares_lower_cased_text_as_the_api_stores_emails(
    session: aiohttp.ClientSession,
) -> None:
    """Lower-cased, not case-folded: `strasse` and `straße` are two addresses."""
    leads = {
        row["_id"]: row for row in (lead(1, email="straße@x.com"), lead(2, email="strasse@x.com"))
    }
    async with Sandbox(leads) as sandbox:
        _, eszett = await search(session, sandbox.url, search="STRAßE@x.com")
        _, double = await search(session, sandbox.url, search="strasse@x.com")

    assert [item["email"] for item in eszett["data"]] == ["straße@x.com"]
    assert [item["email"] for item in double["data"]] == ["strasse@x.com"]


async def test_no_match_is_an_empty_page(session: aiohttp.ClientSession) -> None:
    async with Sandbox(people()) as sandbox:
        status, body = await search(session, sandbox.url, search="nobody@nowhere")

    assert status == 200
    assert body["data"] == []
    assert body["pagination"] == {"limit": 20, "total": 0, "hasMore": False, "nextCursor": None}


async def test_tags_filter_keeps_leads_with_every_tag(session: aiohttp.ClientSession) -> None:
    async with Sandbox(people()) as sandbox:
        _, both = await search(session, sandbox.url, tags="vip, enterprise")
        _, vip = await search(session, sandbox.url, tags="vip")
        _, with_search = await search(session, sandbox.url, tags="vip", search="ann")

    assert ids(both) == [f"{n:024x}" for n in (8, 10)]
    assert ids(vip) == [f"{n:024x}" for n in (8, 9, 10)]
    assert ids(with_search) == [f"{10:024x}"]


async def test_items_carry_only_the_documented_list_fields(
    session: aiohttp.ClientSession,
) -> None:
    leads = people()
    async with Sandbox(leads) as sandbox:
        _, body = await search(session, sandbox.url, search="joann")

    (item,) = body["data"]
    assert set(item) == ITEM_FIELDS
    assert item == {name: leads[item["_id"]][name] for name in ITEM_FIELDS}
    assert not {"customFields", "phone", "linkedinUrl", "updatedAt"} & set(item)


async def test_without_a_search_every_lead_is_listed_twenty_at_a_time(
    session: aiohttp.ClientSession,
) -> None:
    leads = many(25)
    async with Sandbox(leads) as sandbox:
        _, first = await search(session, sandbox.url)
        _, second = await search(session, sandbox.url, cursor=first["pagination"]["nextCursor"])

    assert ids(first) == list(leads)[:20]
    assert first["pagination"]["hasMore"] is True
    assert isinstance(first["pagination"]["nextCursor"], str)
    assert ids(second) == list(leads)[20:]
    assert second["pagination"] == {"limit": 20, "total": 25, "hasMore": False, "nextCursor": None}
    assert sandbox.state.searches == {"": 2}


async def follow(session: aiohttp.ClientSession, url: str, **params: str) -> list[dict[str, Any]]:
    """Every page of one search, following `nextCursor` until it is null."""
    pages = []
    cursor: str | None = None
    while True:
        extra = {"cursor": cursor} if cursor is not None else {}
        status, body = await search(session, url, **params, **extra)
        assert status == 200, body
        pages.append(body)
        cursor = body["pagination"]["nextCursor"]
        if cursor is None:
            return pages


async def test_pages_of_one_cover_every_match_once_in_order(
    session: aiohttp.ClientSession,
) -> None:
    async with Sandbox(people()) as sandbox:
        pages = await follow(session, sandbox.url, search="ann", limit="1")

    assert [ids(body) for body in pages] == [[f"{n:024x}"] for n in (1, 2, 3, 4, 5, 10)]
    assert {body["pagination"]["total"] for body in pages} == {6}
    assert [body["pagination"]["hasMore"] for body in pages] == [True] * 5 + [False]
    assert sandbox.state.searches == {"ann": 6}  # every page counted
    assert sandbox.state.search_requests == 6


async def test_pages_of_a_hundred(session: aiohttp.ClientSession) -> None:
    leads = many(250)
    async with Sandbox(leads) as sandbox:
        pages = await follow(session, sandbox.url, search="lead", limit="100")

    assert [len(body["data"]) for body in pages] == [100, 100, 50]
    assert [item for body in pages for item in ids(body)] == list(leads)
    assert {body["pagination"]["total"] for body in pages} == {250}
    assert {body["pagination"]["limit"] for body in pages} == {100}


async def test_search_sees_updates(session: aiohttp.ClientSession) -> None:
    leads = people()
    async with Sandbox(leads) as sandbox:
        await patch(session, sandbox.url, {"firstName": "Zebediah"}, lead_id=f"{9:024x}")
        _, body = await search(session, sandbox.url, search="zebed")

    assert ids(body) == [f"{9:024x}"]
    assert body["data"][0]["firstName"] == "Zebediah"


@pytest.mark.parametrize("limit", ["0", "101", "abc", "-1", "1.5", "", " 5", "1e2"])
async def test_a_limit_outside_one_to_a_hundred_is_400(
    session: aiohttp.ClientSession, limit: str
) -> None:
    async with Sandbox(people()) as sandbox:
        status, body = await search(session, sandbox.url, limit=limit)

    assert status == 400
    assert body["success"] is False
    assert body["error"]["code"] == "VALIDATION_ERROR"
    assert "limit" in body["error"]["message"]
    assert len(sandbox.state.bad_requests) == 1
    assert sandbox.state.search_requests == 1


async def test_a_cursor_the_sandbox_did_not_give_is_400(session: aiohttp.ClientSession) -> None:
    async with Sandbox(many(5)) as sandbox:
        _, first = await search(session, sandbox.url, search="lead", limit="2")
        cursor = first["pagination"]["nextCursor"]
        forged = [
            "not a cursor!",
            "",
            base64.urlsafe_b64encode(b"[1]").decode(),
            base64.urlsafe_b64encode(b'[-1, "x"]').decode(),
            base64.urlsafe_b64encode(b'["1", "x"]').decode(),
            base64.urlsafe_b64encode(b"\xff\xfe").decode(),
            cursor[:-2],
        ]
        answers = [await search(session, sandbox.url, search="lead", cursor=c) for c in forged]
        other = await search(session, sandbox.url, search="lead3", cursor=cursor)

    for status, body in answers:
        assert status == 400
        assert body["error"] == {"code": "VALIDATION_ERROR", "message": "Invalid cursor"}
    assert other[0] == 400
    assert "another search" in other[1]["error"]["message"]
    assert len(sandbox.state.bad_requests) == len(forged) + 1


async def test_unknown_or_repeated_parameters_are_400(session: aiohttp.ClientSession) -> None:
    async with Sandbox(people()) as sandbox:
        url = f"{sandbox.url}/v1/leads"
        async with session.get(f"{url}?page=2", headers={"X-Api-Key": KEY}) as unknown:
            unknown_body = await unknown.json()
        async with session.get(f"{url}?search=a&search=b", headers={"X-Api-Key": KEY}) as twice:
            twice_body = await twice.json()

    assert (unknown.status, twice.status) == (400, 400)
    assert "page" in unknown_body["error"]["message"]
    assert "more than once" in twice_body["error"]["message"]
    assert sandbox.state.searches == {"": 1, "a": 1}


async def test_search_needs_the_key_and_respects_the_limit(
    session: aiohttp.ClientSession,
) -> None:
    async with Sandbox(people(), rate=1) as sandbox:
        url = f"{sandbox.url}/v1/leads"
        refused = await get(session, url, {"search": "ann"}, headers={"X-Api-Key": "wrong"})
        accepted = await get(session, url, {"search": "ann"})
        limited = await get(session, url, {"search": "ann"})

    assert [status for status, _, _ in (refused, accepted, limited)] == [401, 200, 429]
    assert limited[1]["error"]["code"] == "RATE_LIMITED"
    assert sandbox.state.searches == {"ann": 3}  # whatever the answer
    assert sandbox.state.stray == []

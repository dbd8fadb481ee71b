"""One page of a search as `search_page` reads it: what it says of the next page, read strictly
(`tests/e2e/test_search_pages.py` runs whole searches against a server)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bulk_updater.pages import Page, search_page

A = ("a" * 24, "ann@x.com")


def page(pagination: Any, size: int = 1) -> Page:
    leads = [{"_id": A[0], "email": A[1]}]
    leads += [{"_id": f"f{n:023x}", "email": f"o{n}@y.com"} for n in range(size - 1)]
    body = {"success": True, "data": leads, "pagination": pagination}
    read = search_page(json.dumps(body).encode(), complete=True)
    assert read is not None
    return read


@pytest.mark.parametrize(
    "pagination",
    [{"hasMore": None}, {"nextCursor": ""}, {"nextCursor": None, "limit": 100}, {}],
    ids=["null-has-more", "empty-cursor", "null-cursor", "nothing"],
)
def test_a_full_page_with_no_word_on_the_next_is_broken(pagination: dict[str, Any]) -> None:
    assert (
        page(pagination, size=100).broken
        == "a full page of leads came with no word on the next one"
    )
    assert page(pagination, size=99).broken == ""  # a short page is the last


def test_a_full_page_with_a_total_or_a_last_word_is_not_broken() -> None:
    assert page({"hasMore": None, "total": 100}, size=100).broken == ""
    assert page({"hasMore": False}, size=100).broken == ""


def test_a_limit_below_the_page_size_is_broken() -> None:
    assert page({"limit": 0}, size=50).broken == "a page of 50 leads says its `limit` is 0"
    assert page({"limit": 49}, size=50).broken == "a page of 50 leads says its `limit` is 49"
    assert page({"limit": 50, "total": 50}, size=50).broken == ""


@pytest.mark.parametrize(
    "pagination",
    [
        {"hasMore": False, "nextCursor": "c1", "page": 1, "pages": 2},
        {"hasMore": True, "nextCursor": "c1", "page": 2, "pages": 2},
        {"nextCursor": None, "page": 1, "pages": 3},
    ],
)
def test_a_cursor_and_page_numbers_that_disagree_are_broken(pagination: dict[str, Any]) -> None:
    assert page(pagination).broken == "its cursor and its page numbers disagree on what follows"


def test_each_page_says_its_shape() -> None:
    by_cursor = page({"hasMore": True, "nextCursor": "c1", "page": 1, "pages": 2})
    assert (by_cursor.shape, by_cursor.next_cursor, by_cursor.broken) == ("cursor", "c1", "")
    by_number = page({"page": 2, "pages": 3, "total": 201})
    assert (by_number.shape, by_number.number, by_number.pages) == ("number", 2, 3)
    assert page(None).shape == ""

"""One page of a search (`GET /v1/leads?search=`) as the API gives it: `Page`, `search_page`.

What a page says of the next one is read strictly: a field of the wrong type, a full page with no
word on what follows, or a cursor and page numbers that disagree make the page `broken`, so that a
search is never read as complete on a part of its answer. Whether the pages of one search agree
with each other is the engine's to judge (`engine/emails.py`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final, Literal

Paging = Literal["cursor", "number", ""]
SEARCH_PAGE: Final = 100  # leads per page of a search, the API's most


@dataclass(frozen=True, slots=True)
class Page:
    """One page of `GET /v1/leads?search=`: each lead's id and email, and how to ask for the next.

    The API pages by cursor (`hasMore`, `nextCursor`); an older shape pages by number (`page`,
    `pages`), and then `number` and `pages` are set. `shape` says which the page used ("": no
    word on paging at all); the pages of one search all use the same. `broken` says why the next
    page cannot be asked for although more leads may follow: a search is then never read as
    complete. `total` is how many leads the API says the whole search matches, when it says.
    """

    leads: tuple[tuple[str, str], ...]
    next_cursor: str | None = None
    number: int | None = None
    pages: int | None = None
    broken: str = ""
    total: int | None = None
    shape: Paging = ""


def search_page(body: bytes, complete: bool, limit: int = 100) -> Page | None:
    """The leads of a search answer, or None when the body is not one (then it is retried).

    `limit` is the page size asked for: a full page that says nothing of what follows may not
    be the last, so it is `broken` rather than read as the whole answer. So is a page with a
    field of the wrong type (`hasMore: "true"`, an `_id` that is a number), or whose cursor and
    page numbers disagree: what it says of the next page, or of a lead, cannot be known.
    """
    if not complete:
        return None
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get("success") is not True:
        return None
    items, paging = data.get("data"), data.get("pagination")
    if not isinstance(items, list):
        return None
    leads = tuple((item["_id"], item["email"]) for item in items if _is_lead(item))
    if len(leads) < len(items):
        return Page(leads, broken=_lead_problem(items))
    if paging is None:
        paging = {}
    if not isinstance(paging, dict):
        return Page(leads, broken=f"`pagination` is {_kind(paging)}, not an object")
    problem = _paging_problem(paging, len(items))
    if problem:
        return Page(leads, broken=problem)
    total: int | None = paging.get("total")
    # Only a page that says it is the last, or a count of all the leads, ends a full page.
    full = len(items) >= min(limit, paging.get("limit") or limit) and total is None
    if "hasMore" in paging or "nextCursor" in paging:
        return _by_cursor(leads, paging, total, full)
    if "pages" in paging:
        return _by_number(leads, paging, total)
    if full:
        return Page(leads, broken=_SILENT)
    return Page(leads, total=total)


_SILENT: Final = "a full page of leads came with no word on the next one"


def _is_lead(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and isinstance(item.get("_id"), str)
        and isinstance(item.get("email"), str)
    )


def _lead_problem(items: list[Any]) -> str:
    """Why the first item that is no lead is none."""
    item = next(item for item in items if not _is_lead(item))
    if not isinstance(item, dict):
        return f"a lead in the answer is {_kind(item)}, not an object"
    name = "_id" if not isinstance(item.get("_id"), str) else "email"
    what = _kind(item[name]) if name in item else "missing"
    return f"a lead's `{name}` is {what}, not a string"


def _paging_problem(paging: dict[str, Any], size: int) -> str:
    """What makes a pagination field unreadable (its type, a `limit` below the page's `size`),
    or "" when nothing does."""
    more, cursor = paging.get("hasMore"), paging.get("nextCursor")
    if more is not None and not isinstance(more, bool):
        return f"`hasMore` is {_kind(more)}, not true or false"
    if cursor is not None and not isinstance(cursor, str):
        return f"`nextCursor` is {_kind(cursor)}, not a string"
    for name in ("total", "limit", "page", "pages"):
        value = paging.get(name)
        if value is not None and not _whole(value):
            return f"`{name}` is {_kind(value)}, not a count"
    page_limit = paging.get("limit")
    if page_limit is not None and page_limit < size:
        return f"a page of {size} leads says its `limit` is {page_limit}"
    return ""


def _kind(value: Any) -> str:
    """A JSON value's kind, as a message names it (never the value: it is the server's text)."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a negative number" if value < 0 else "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object" if value is not None else "null"


def _by_cursor(
    leads: tuple[tuple[str, str], ...], paging: dict[str, Any], total: int | None, full: bool
) -> Page:
    more, cursor = paging.get("hasMore"), paging.get("nextCursor")
    if "pages" in paging and _more_by_number(paging) != (more is not False and bool(cursor)):
        return Page(leads, broken="its cursor and its page numbers disagree on what follows")
    if more is False:
        return Page(leads, total=total, shape="cursor")
    if cursor:
        return Page(leads, cursor, total=total, shape="cursor")
    if more is True:
        return Page(leads, broken="the API says more leads follow but gives no cursor for them")
    if full:  # `hasMore: null`, an empty or null cursor: no word on the next page
        return Page(leads, broken=_SILENT)
    return Page(leads, total=total, shape="cursor")


def _more_by_number(paging: dict[str, Any]) -> bool:
    pages = paging["pages"]
    return pages is None or (paging.get("page") or 1) < pages


def _by_number(
    leads: tuple[tuple[str, str], ...], paging: dict[str, Any], total: int | None
) -> Page:
    number, pages = paging.get("page"), paging["pages"]
    if pages is None:
        return Page(leads, broken="`pages` is null, not a count")
    number = 1 if number is None else number
    return Page(leads, number=number, pages=pages, total=total, shape="number")


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0

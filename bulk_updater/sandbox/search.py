"""`GET /v1/leads`: the list/search endpoint, built to the few things its docs promise.

Query parameters, all optional; any other one is a 400, since a client cannot know what the API
would make of it:

- `search`: a case-insensitive substring of `email`, `firstName`, `lastName` or `companyName`,
  compared lower-cased as the API stores emails (`lower()`, not `casefold()`: `strasse` does not
  find `straße`). The docs do not say whether the real search is partial. Partial is the harder
  case for a client that wants one exact email, so the sandbox makes clients handle it.
- `tags`: comma-separated tag names; a lead must carry every one of them (exact names).
- `limit`: page size, an integer from 1 to 100, default 20.
- `cursor`: the `nextCursor` of the previous page of the same `search` and `tags`.

The answer is `{"success": true, "data": [items], "pagination": {"limit", "total", "hasMore",
"nextCursor"}}`. Leads come in a stable order (the order they were loaded in). `total` counts
every match, not just this page. `nextCursor` is an opaque string, null on the last page.
Items carry only the fields the docs list for this endpoint, so a client that needs
`customFields` or `phone` from a search finds out here rather than in production.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .contract import BadRequest

if TYPE_CHECKING:  # aiohttp's own dependency; imported only for the annotation
    from multidict import MultiMapping

__all__ = ["DEFAULT_LIMIT", "ITEM_FIELDS", "MAX_LIMIT", "Query", "page", "parse_query"]

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
ITEM_FIELDS = (
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
)
_SEARCHED_FIELDS = ("email", "firstName", "lastName", "companyName")
_PARAMETERS = ("cursor", "limit", "search", "tags")
_DIGITS = re.compile(r"[0-9]+")


def _invalid(message: str) -> BadRequest:
    return BadRequest(400, "VALIDATION_ERROR", message)


@dataclass(frozen=True)
class Query:
    """One checked `GET /v1/leads` request."""

    search: str = ""
    tags: tuple[str, ...] = ()
    limit: int = DEFAULT_LIMIT
    offset: int = 0

    @property
    def fingerprint(self) -> str:
        """Ties a cursor to its search, so a cursor from another search is refused."""
        text = json.dumps([self.search, self.tags], ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def parse_query(params: MultiMapping[str]) -> Query:
    """Check the query string; raise `BadRequest` with the API's answer if it is not valid."""
    for name in params:
        if name not in _PARAMETERS:
            raise _invalid(f"Unknown query parameter '{name}'; allowed: {', '.join(_PARAMETERS)}")
        if len(params.getall(name)) > 1:
            raise _invalid(f"Query parameter '{name}' given more than once")
    query = Query(
        search=params.get("search", ""),
        tags=tuple(tag.strip() for tag in params.get("tags", "").split(",") if tag.strip()),
        limit=_limit(params.get("limit")),
    )
    cursor = params.get("cursor")
    if cursor is None:
        return query
    return Query(query.search, query.tags, query.limit, _offset(cursor, query.fingerprint))


def _limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_LIMIT
    if not _DIGITS.fullmatch(text) or not 1 <= int(text) <= MAX_LIMIT:
        raise _invalid(f"limit must be an integer from 1 to {MAX_LIMIT}, got {text!r}")
    return int(text)


def _cursor(offset: int, fingerprint: str) -> str:
    raw = json.dumps([offset, fingerprint]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _offset(cursor: str, fingerprint: str) -> int:
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        offset, bound_to = json.loads(raw)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise _invalid("Invalid cursor") from exc
    if type(offset) is not int or offset < 0 or not isinstance(bound_to, str):
        raise _invalid("Invalid cursor")
    if bound_to != fingerprint:
        raise _invalid("The cursor belongs to another search; start again without it")
    return offset


def _matches(lead: Mapping[str, Any], query: Query) -> bool:
    if query.search:
        needle = query.search.lower()
        values = (lead.get(name) for name in _SEARCHED_FIELDS)
        if not any(isinstance(value, str) and needle in value.lower() for value in values):
            return False
    if query.tags:
        tags = lead.get("tags")
        if not isinstance(tags, list) or not all(tag in tags for tag in query.tags):
            return False
    return True


def page(leads: Mapping[str, Mapping[str, Any]], query: Query) -> dict[str, Any]:
    """The answer body for `query` over `leads`, in their order."""
    matches = [lead for lead in leads.values() if _matches(lead, query)]
    end = query.offset + query.limit
    more = end < len(matches)
    return {
        "success": True,
        "data": [
            {name: lead[name] for name in ITEM_FIELDS if name in lead}
            for lead in matches[query.offset : end]
        ],
        "pagination": {
            "limit": query.limit,
            "total": len(matches),
            "hasMore": more,
            "nextCursor": _cursor(end, query.fingerprint) if more else None,
        },
    }

"""Helpers for the sandbox's tests: two known leads, an aiohttp session, one-line requests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDictProxy

from bulk_updater.sandbox import DEFAULT_SANDBOX_KEY

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"

LEAD_ID = "665d4e5f6a7b8c9d0e1f2a3b"
OTHER_ID = "665d4e5f6a7b8c9d0e1f2a3c"
MISSING_ID = "000000000000000000000000"
KEY = DEFAULT_SANDBOX_KEY
PLATFORM_KEY = "sk_user_0123456789abcdef"

Received = tuple[int, Any, CIMultiDictProxy[str]]
"""Status, decoded body (JSON, else text) and headers of one answer."""


def two_leads() -> dict[str, dict[str, Any]]:
    """Jane and John Doe at Initech, in the API's shape."""

    def lead(lead_id: str, first: str) -> dict[str, Any]:
        return {
            "_id": lead_id,
            "email": f"{first.lower()}@example.com",
            "firstName": first,
            "lastName": "Doe",
            "companyName": "Initech",
            "jobTitle": "Engineer",
            "tags": ["prospect"],
            "customFields": {"industry": "SaaS", "source": "web"},
            "createdAt": "2026-01-01T00:00:00.000Z",
            "updatedAt": "2026-01-01T00:00:00.000Z",
        }

    return {LEAD_ID: lead(LEAD_ID, "Jane"), OTHER_ID: lead(OTHER_ID, "John")}


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def _decoded(response: aiohttp.ClientResponse) -> Received:
    if response.content_type == "application/json":
        payload: Any = await response.json()
    else:
        payload = await response.text()
    return response.status, payload, response.headers


async def patch(
    session: aiohttp.ClientSession,
    base_url: str,
    body: object,
    *,
    lead_id: str = LEAD_ID,
    headers: dict[str, str] | None = None,
    total_timeout: float | None = None,
) -> Received:
    """PATCH one lead with the sandbox's key (unless `headers` say otherwise)."""
    sent = {"X-Api-Key": KEY} if headers is None else headers
    async with session.patch(
        f"{base_url}/v1/leads/{lead_id}",
        json=body,
        headers=sent,
        timeout=aiohttp.ClientTimeout(total=total_timeout),
    ) as response:
        return await _decoded(response)


async def get(
    session: aiohttp.ClientSession,
    url: str,
    params: dict[str, str] | None = None,
    *,
    headers: dict[str, str] | None = None,
) -> Received:
    """GET a URL with the sandbox's key (unless `headers` say otherwise)."""
    sent = {"X-Api-Key": KEY} if headers is None else headers
    async with session.get(url, params=params, headers=sent) as response:
        return await _decoded(response)

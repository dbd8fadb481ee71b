"""The API contract the sandbox enforces: keys and auth headers, update bodies, error shapes."""

from __future__ import annotations

import asyncio
import io

import aiohttp
import pytest

from bulk_updater.sandbox import Sandbox

from .conftest import KEY, LEAD_ID, PLATFORM_KEY, get, patch, two_leads

# --- authentication ---------------------------------------------------------------------------


async def test_wrong_key_is_401(session: aiohttp.ClientSession) -> None:
    async with Sandbox(two_leads()) as sandbox:
        wrong = await patch(session, sandbox.url, {"city": "Oslo"}, headers={"X-Api-Key": "nope"})
        missing = await patch(session, sandbox.url, {"city": "Oslo"}, headers={})

    for status, body, _ in (wrong, missing):
        assert status == 401
        assert body == {
            "error": "Unauthorized",
            "message": "Invalid or missing API key",
            "code": 401,
        }
    assert sandbox.state.auth_failures == 2
    assert sandbox.state.applied_by_lead == {}
    assert sandbox.state.leads[LEAD_ID].get("city") is None


async def test_bearer_key_is_accepted(session: aiohttp.ClientSession) -> None:
    async with Sandbox(two_leads(), api_key="sk_custom") as sandbox:
        status, body, _ = await patch(
            session, sandbox.url, {"city": "Oslo"}, headers={"Authorization": "Bearer sk_custom"}
        )

    assert status == 200
    assert body["data"]["city"] == "Oslo"
    assert sandbox.state.auth_failures == 0


async def test_another_auth_scheme_is_401(session: aiohttp.ClientSession) -> None:
    async with Sandbox(two_leads(), api_key="sk_custom") as sandbox:
        status, _, _ = await patch(
            session, sandbox.url, {"city": "Oslo"}, headers={"Authorization": "Basic sk_custom"}
        )

    assert status == 401


async def test_both_auth_headers_are_a_contract_violation(session: aiohttp.ClientSession) -> None:
    async with Sandbox(two_leads()) as sandbox:
        status, _, _ = await patch(
            session,
            sandbox.url,
            {"city": "Oslo"},
            headers={"X-Api-Key": KEY, "Authorization": f"Bearer {KEY}"},
        )

    assert status == 200  # still authenticated
    assert len(sandbox.state.bad_requests) == 1
    assert "X-Api-Key and Authorization" in sandbox.state.bad_requests[0]


async def test_platform_key_needs_workspace_header(session: aiohttp.ClientSession) -> None:
    async with Sandbox(two_leads(), api_key=PLATFORM_KEY) as sandbox:
        without = await patch(
            session, sandbox.url, {"city": "Oslo"}, headers={"X-Api-Key": PLATFORM_KEY}
        )
        with_workspace = await patch(
            session,
            sandbox.url,
            {"city": "Rome"},
            headers={"X-Api-Key": PLATFORM_KEY, "X-Workspace-Id": "ws_1"},
        )

    assert without[0] == 403
    assert without[1] == {
        "error": "Forbidden",
        "message": "You don't have permission to access this resource",
        "code": 403,
    }
    assert with_workspace[0] == 200
    assert sandbox.state.auth_failures == 1
    assert sandbox.state.leads[LEAD_ID]["city"] == "Rome"
    assert sandbox.state.applied_by_lead == {LEAD_ID: 1}


@pytest.mark.parametrize(
    "auth_header", [b"X-Api-Key: \xff\xfe", b"Authorization: Bearer \xff", b"Authorization: \xff"]
)
async def test_undecodable_key_header_is_401(auth_header: bytes) -> None:
    async with Sandbox(two_leads()) as sandbox:
        port = int(sandbox.url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        body = b'{"city": "Oslo"}'
        writer.write(
            b"PATCH /v1/leads/"
            + LEAD_ID.encode()
            + b" HTTP/1.1\r\nHost: sandbox\r\n"
            + auth_header
            + b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
            + b"Connection: close\r\n\r\n"
            + body
        )
        answer = await reader.read()
        writer.close()
        await writer.wait_closed()

    assert answer.startswith(b"HTTP/1.1 401 ")
    assert sandbox.state.auth_failures == 1


async def test_search_checks_the_key_like_patch(session: aiohttp.ClientSession) -> None:
    async with Sandbox(two_leads(), api_key=PLATFORM_KEY) as sandbox:
        url = f"{sandbox.url}/v1/leads"
        wrong = await get(session, url, headers={"X-Api-Key": "nope"})
        no_workspace = await get(session, url, headers={"X-Api-Key": PLATFORM_KEY})
        both = await get(
            session,
            url,
            headers={
                "X-Api-Key": PLATFORM_KEY,
                "Authorization": f"Bearer {PLATFORM_KEY}",
                "X-Workspace-Id": "ws_1",
            },
        )

    assert (wrong[0], no_workspace[0], both[0]) == (401, 403, 200)
    assert sandbox.state.auth_failures == 2
    assert sandbox.state.search_requests == 3
    assert ["X-Api-Key and Authorization" in bad for bad in sandbox.state.bad_requests] == [True]


# --- body validation --------------------------------------------------------------------------


async def test_email_in_body_is_400(session: aiohttp.ClientSession) -> None:
    async with Sandbox(two_leads()) as sandbox:
        status, body, _ = await patch(
            session, sandbox.url, {"email": "new@example.com", "city": "Oslo"}
        )

    assert status == 400
    assert body == {
        "success": False,
        "error": {"code": "VALIDATION_ERROR", "message": "Email cannot be changed after creation"},
    }
    assert sandbox.state.leads[LEAD_ID]["email"] == "jane@example.com"
    assert sandbox.state.leads[LEAD_ID].get("city") is None
    assert len(sandbox.state.bad_requests) == 1


async def test_unknown_key_is_400_and_recorded(session: aiohttp.ClientSession) -> None:
    async with Sandbox(two_leads()) as sandbox:
        status, body, _ = await patch(session, sandbox.url, {"city": "Oslo", "favouriteColour": 1})

    assert status == 400
    assert body["error"]["code"] == "VALIDATION_ERROR"
    assert "favouriteColour" in body["error"]["message"]
    assert len(sandbox.state.bad_requests) == 1
    assert "favouriteColour" in sandbox.state.bad_requests[0]
    assert sandbox.state.leads[LEAD_ID].get("city") is None


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"firstName": 3}, "firstName"),
        ({"tags": "vip;enterprise"}, "tags"),
        ({"tags": ["vip", 2]}, "tags"),
        ({"customFields": ["a"]}, "customFields"),
        ({"customFields": {"nested": {"a": 1}}}, "customFields.nested"),
        ({}, "at least one field"),
        (["city", "Oslo"], "JSON object"),
    ],
)
async def test_malformed_bodies_are_400(
    session: aiohttp.ClientSession, body: object, named: str
) -> None:
    async with Sandbox(two_leads()) as sandbox:
        status, answer, _ = await patch(session, sandbox.url, body)

    assert status == 400
    assert answer["error"]["code"] == "VALIDATION_ERROR"
    assert named in answer["error"]["message"]
    assert len(sandbox.state.bad_requests) == 1
    assert sandbox.state.applied_by_lead == {}


@pytest.mark.parametrize(
    ("raw", "content_type", "status"),
    [
        (b'{"city": "Oslo"', "application/json", 400),
        (b'{"city": "\xff\xfe"}', "application/json", 400),
        (b'{"customFields": {"x": NaN}}', "application/json", 400),
        (b"[" * 100_000, "application/json", 400),
        (b'{"city": "Oslo"}', "text/plain", 415),
        (b'{"city": "Oslo"}', "", 415),
    ],
)
async def test_undecodable_bodies_are_answered_not_crashed(
    session: aiohttp.ClientSession, raw: bytes, content_type: str, status: int
) -> None:
    headers = {"X-Api-Key": KEY}
    if content_type:
        headers["Content-Type"] = content_type
    async with Sandbox(two_leads()) as sandbox:
        url = f"{sandbox.url}/v1/leads/{LEAD_ID}"
        async with session.patch(url, data=raw, headers=headers) as response:
            assert response.status == status
            answer = await response.json()

    assert answer["success"] is False
    assert answer["error"]["code"] in {"VALIDATION_ERROR", "UNSUPPORTED_MEDIA_TYPE"}
    assert len(sandbox.state.bad_requests) == 1
    assert sandbox.state.leads[LEAD_ID].get("city") is None


async def test_a_body_over_the_size_limit_is_413(session: aiohttp.ClientSession) -> None:
    headers = {"X-Api-Key": KEY, "Content-Type": "application/json"}
    big = b'{"city": "' + b"x" * 2_000_000 + b'"}'  # aiohttp's default limit is 1 MiB
    async with Sandbox(two_leads()) as sandbox:
        url = f"{sandbox.url}/v1/leads/{LEAD_ID}"
        async with session.patch(url, data=io.BytesIO(big), headers=headers) as response:
            assert response.status == 413
            answer = await response.json()

    assert answer["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert len(sandbox.state.bad_requests) == 1


def test_an_empty_key_fails_at_construction() -> None:
    with pytest.raises(ValueError, match="api_key"):
        Sandbox(api_key="")

"""The HTTP client: the request it writes (on a real loopback server, `tests/http_server.py`),
its URLs, and its handling of answers (status classes, both error shapes, HTML pages, Retry-After,
rate-limit headers, redaction, a proxy's 407), with aioresponses: no sockets.

The answers' helpers the client uses (`describe_error`, `parse_retry_after`) are tested here too.
What a mock cannot show (bounds, dropped connections, TLS, cookies) is in test_client_wire.py,
proxies through a real one in test_proxy.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import quote

import pytest
from aioresponses import aioresponses
from hypothesis import assume, given
from hypothesis import strategies as st
from yarl import URL

from bulk_updater import LeadUpdate, Reply, SendKitClient, TransportError, __version__
from bulk_updater.client import describe_error, parse_retry_after
from tests.conftest import HOSTILE_IDS
from tests.http_server import Answers

BASE = "https://api.sendkit.ai"
SUCCESS = {"success": True, "data": {}}


def client(**overrides: object) -> SendKitClient:
    options: dict[str, object] = {
        "api_key": "sk_secret",
        "base_url": BASE,
        "timeout": 5,
        "concurrency": 4,
    }
    options.update(overrides)
    return SendKitClient(**options)  # type: ignore[arg-type]


# --- the request


async def test_request_has_one_auth_header_json_body_and_user_agent() -> None:
    update = LeadUpdate(
        id="665d4e5f6a7b8c9d0e1f2a3b",
        email="label@example.com",
        jobTitle="CRO",
        tags=("vip", "enterprise"),
        customFields={"revenue": "$50M"},
    )
    async with Answers() as server, client(base_url=server.url) as c:
        server.add("PATCH", "/v1/leads/665d4e5f6a7b8c9d0e1f2a3b", payload=SUCCESS)
        reply = await c.send(update)
    assert reply.status == 200
    (request,) = server.requests
    assert request.method == "PATCH"
    headers = request.headers  # case-insensitive, each header as often as it was sent
    assert headers.getall("X-Api-Key") == ["sk_secret"]
    assert "Authorization" not in headers
    assert headers.getall("Content-Type") == ["application/json"]
    assert headers["User-Agent"] == f"bulk-updater/{__version__}"
    assert "X-Workspace-Id" not in headers
    body = json.loads(request.body)
    assert body == {
        "jobTitle": "CRO",
        "tags": ["vip", "enterprise"],
        "customFields": {"revenue": "$50M"},
    }
    # redirects are not followed: test_redirect_is_reported_not_followed


async def test_workspace_id_is_sent_when_configured() -> None:
    async with Answers() as server, client(base_url=server.url, workspace_id="ws_42") as c:
        server.add("PATCH", "/v1/leads/a1")
        await c.send(LeadUpdate(id="a1", city="Oslo"))
    (request,) = server.requests
    assert request.headers.getall("X-Workspace-Id") == ["ws_42"]


# --- the URL


def test_url_for_a_plain_token() -> None:
    assert str(client().url_for("abc-_1")) == f"{BASE}/v1/leads/abc-_1"
    c = client(base_url="http://127.0.0.1:8080/")
    assert (
        str(c.url_for("665d4e5f_6a7b-8c9d")) == "http://127.0.0.1:8080/v1/leads/665d4e5f_6a7b-8c9d"
    )


def test_url_for_ipv6_loopback_and_explicit_ports() -> None:
    def url(base: str) -> str:
        return str(client(base_url=base).url_for("abc"))

    assert url("http://[::1]:8080") == "http://[::1]:8080/v1/leads/abc"
    assert url("http://127.0.0.1:5") == "http://127.0.0.1:5/v1/leads/abc"
    assert url("https://api.sendkit.ai") == "https://api.sendkit.ai/v1/leads/abc"


@pytest.mark.parametrize("lead_id", [*HOSTILE_IDS, "%2E%2E", "..%2f", "%2e"])
def test_url_for_keeps_any_id_inside_the_leads_path(lead_id: str) -> None:
    """The second guard: whatever the id, url_for refuses it or gives a URL that, as any server
    normalises it (percent-decoding unreserved characters, removing dot segments), names one
    lead under /v1/leads/. Percent-encoding alone leaves "", "." and ".." as they are."""
    try:
        url = client().url_for(lead_id)
    except ValueError:
        return  # refusing a non-token id is the strongest guard
    assert url.raw_query_string == ""
    assert url.raw_fragment == ""
    assert url.raw_path.startswith("/v1/leads/")
    segment = url.raw_path.removeprefix("/v1/leads/")
    assert "/" not in segment
    assert segment.replace("%2E", ".").replace("%2e", ".") not in ("", ".", "..")
    normalised = URL(str(url))  # yarl removes dot segments as servers do
    assert normalised.path.startswith("/v1/leads/")
    assert normalised.raw_path != "/v1/leads/"


@given(st.text(min_size=1, max_size=40))
def test_url_for_percent_encodes_every_id_as_quote_does(lead_id: str) -> None:
    """The path of an id is `quote(id, safe="")`'s, whether or not the id needed encoding."""
    assume(lead_id not in (".", ".."))
    url = client().url_for(lead_id)
    assert url.raw_path == "/v1/leads/" + quote(lead_id, safe="")


# --- answers, through aioresponses

PATCH_X = f"{BASE}/v1/leads/x"
UPDATE = LeadUpdate(id="x", city="Oslo")


@pytest.fixture
def api() -> Iterator[aioresponses]:
    with aioresponses() as mocked:
        yield mocked


async def answer_to(api: aioresponses, **answer: Any) -> Reply:
    """The client's `Reply` to one PATCH that the mock answers with `answer`."""
    api.patch(PATCH_X, **answer)
    async with client() as c:
        return await c.send(UPDATE)


@pytest.mark.parametrize(
    ("status", "payload", "code", "malformed"),
    [
        (200, {"success": True, "data": {}}, None, False),
        (204, None, "UNEXPECTED_ANSWER", True),
        (200, {"ok": 1}, "UNEXPECTED_ANSWER", True),
        (404, {"error": {"code": "NOT_FOUND", "message": "gone"}}, "NOT_FOUND", False),
        (422, {"error": {"code": "BAD_FIELD", "message": "no"}}, "BAD_FIELD", False),
        (429, {"error": "Too Many", "message": "slow down", "code": 429}, "TOO_MANY", False),
        (500, None, "HTTP_500", False),
        (503, {"message": "maintenance"}, "HTTP_503", False),
    ],
)  # fmt: skip
async def test_each_class_of_status_becomes_a_reply(
    api: aioresponses, status: int, payload: object, code: str | None, malformed: bool
) -> None:
    answer: dict[str, Any] = {"status": status}
    if payload is not None:
        answer["payload"] = payload
    reply = await answer_to(api, **answer)
    assert (reply.status, reply.error_code, reply.malformed) == (status, code, malformed)
    if malformed:
        assert "not the API's answer" in reply.message


@pytest.mark.parametrize(
    ("status", "body", "code", "message"),
    [
        (
            404,
            {"success": False, "error": {"code": "NOT_FOUND", "message": "Lead not found"}},
            "NOT_FOUND",
            "Lead not found",
        ),
        (
            403,
            {"error": "Forbidden", "message": "You don't have permission", "code": 403},
            "FORBIDDEN",
            "You don't have permission",
        ),
    ],
)
async def test_both_error_body_shapes(
    api: aioresponses, status: int, body: object, code: str, message: str
) -> None:
    reply = await answer_to(api, status=status, payload=body)
    assert (reply.status, reply.error_code, reply.message) == (status, code, message)


async def test_html_error_page_gives_a_readable_message(api: aioresponses) -> None:
    html = "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>"
    reply = await answer_to(api, status=503, body=html, content_type="text/html")
    assert reply.error_code == "HTTP_503"
    assert reply.message == "503 Service Temporarily Unavailable"


async def test_empty_error_body_still_says_something(api: aioresponses) -> None:
    reply = await answer_to(api, status=502, body=b"", reason="Bad Gateway")
    assert reply.error_code == "HTTP_502"
    assert reply.message == "Bad Gateway (empty body)"


def test_describe_error_never_trusts_odd_json() -> None:
    assert describe_error(500, b'{"error": 5}', "Internal") == ("HTTP_500", "Internal")
    assert describe_error(400, b"[1, 2]", "") == ("HTTP_400", "HTTP 400")
    code, message = describe_error(400, b"plain text problem", "Bad Request")
    assert (code, message) == ("HTTP_400", "plain text problem")


def test_server_text_cannot_carry_escape_codes() -> None:
    _, message = describe_error(400, b'{"error": {"code": "X", "message": "a\\u001b[2Jb"}}')
    assert message == "a [2Jb"
    _, long = describe_error(400, ('{"error": {"message": "' + "x" * 5000 + '"}}').encode())
    assert len(long) == 500


@pytest.mark.parametrize("form", ["seconds", "date", "garbage", "absent"])
async def test_retry_after_in_each_form(api: aioresponses, form: str) -> None:
    when = datetime.now(UTC) + timedelta(seconds=30)
    value = {"seconds": "2", "date": format_datetime(when, True), "garbage": "soon"}.get(form)
    headers = {"Retry-After": value} if value is not None else {}
    reply = await answer_to(api, status=429, headers=headers)
    if form == "seconds":
        assert reply.retry_after == 2.0
    elif form == "date":
        assert reply.retry_after is not None
        assert 27 <= reply.retry_after <= 30
    else:
        assert reply.retry_after is None


def test_parse_retry_after_edge_cases() -> None:
    now = datetime(2026, 11, 27, 7, 35, 30, tzinfo=UTC)
    assert parse_retry_after("Fri, 27 Nov 2026 07:35:32 GMT", now) == 2.0
    assert parse_retry_after("Fri, 27 Nov 2026 07:35:00 GMT", now) == 0.0  # in the past
    assert parse_retry_after("-5") == 0.0
    assert parse_retry_after("nan") is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("") is None
    assert parse_retry_after(None) is None


async def test_the_rate_limit_headers_are_kept_and_no_others(api: aioresponses) -> None:
    headers = {
        "X-RateLimit-Limit": "40",
        "x-ratelimit-remaining": "0",
        "RateLimit-Policy": '"default";q=100;w=10',
        "Set-Cookie": "a=b",
        "Server": "nginx",
    }
    reply = await answer_to(api, status=200, payload=SUCCESS, headers=headers)
    assert reply.headers == {
        "X-RateLimit-Limit": "40",
        "X-RateLimit-Remaining": "0",
        "RateLimit-Policy": '"default";q=100;w=10',
    }
    plain = await answer_to(api, status=200, payload=SUCCESS)
    assert plain.headers is None


async def test_a_success_without_rate_limit_headers_is_one_shared_reply(
    api: aioresponses,
) -> None:
    """No `Reply` is built per success answer: an immutable one per status is shared, while an
    answer with rate-limit headers has its own."""
    first = await answer_to(api, status=200, payload=SUCCESS)
    again = await answer_to(api, status=200, payload=SUCCESS)
    assert first is again
    assert first == Reply(200)
    other = await answer_to(api, status=201, payload=SUCCESS)
    assert other == Reply(201)
    headers = {"X-RateLimit-Remaining": "3"}
    limited = await answer_to(api, status=200, payload=SUCCESS, headers=headers)
    assert limited.headers == headers
    assert first.headers is None


async def test_the_key_is_redacted_from_body_headers_reason_and_location(
    api: aioresponses,
) -> None:
    key = "sk_secret_0123456789abcdef"
    api.patch(PATCH_X, status=401, payload={"error": {"code": "NO", "message": f"bad key {key}"}})
    api.patch(PATCH_X, status=429, headers={"Retry-After": key}, reason=f"Slow {key}")
    api.patch(PATCH_X, status=302, headers={"Location": f"https://x/?k={key}"})
    async with client(api_key=key) as c:
        replies = [await c.send(UPDATE) for _ in range(3)]
    for reply in replies:
        shown = f"{reply.message} {reply.error_code} {reply.headers}"
        assert key not in shown
        assert key[:12] not in shown
    assert "[redacted]" in replies[0].message
    assert replies[1].headers == {"Retry-After": "[redacted]"}
    assert replies[2].message == "the API redirected to https://x/?k=[redacted]; check --base-url"


async def test_a_search_answer_is_a_page_or_an_unexpected_answer(api: aioresponses) -> None:
    url = f"{BASE}/v1/leads?limit=100&search=ann@x.com"
    page = {"success": True, "data": [{"_id": "a1", "email": "ann@x.com"}], "pagination": {}}
    api.get(url, payload=page)
    api.get(url, body="<html>portal</html>", content_type="text/html")
    async with client() as c:
        found = await c.search("ann@x.com", None)
        portal = await c.search("ann@x.com", None)
    assert found.page is not None
    assert found.page.leads == (("a1", "ann@x.com"),)
    assert (portal.error_code, portal.malformed, portal.page) == ("UNEXPECTED_ANSWER", True, None)


async def test_a_search_answer_echoing_the_key_as_a_lead_is_refused(api: aioresponses) -> None:
    """Its ids and emails would reach the report: one holding the key is no answer of the API."""
    key = "sk_live_SECRETKEY123456789abcdef"
    url = f"{BASE}/v1/leads?limit=100&search=ann@x.com"
    for lead in ({"_id": key, "email": "ann@x.com"}, {"_id": "a1", "email": f"{key[:12]}@x"}):
        api.get(url, payload={"success": True, "data": [lead], "pagination": {}})
    async with client(api_key=key) as c:
        replies = [await c.search("ann@x.com", None) for _ in range(2)]
    for reply in replies:
        assert (reply.error_code, reply.malformed, reply.page) == ("UNEXPECTED_ANSWER", True, None)
        assert reply.message.startswith("a lead in the search answer holds the API key")


@pytest.mark.parametrize("login", ["jsmith:S3curePassw0rd", "puser:ead"])
async def test_a_proxy_login_in_what_the_api_says_is_no_echo_and_stays(
    api: aioresponses, login: str
) -> None:
    """The API is never sent the proxy's login: a lead's email holding the proxy's user name is
    the lead's. Any answer may be a proxy's, so a message holding a password too short to tell
    from a word (`ead` in `Lead not found`) is withheld, as every text holding it is."""
    url = f"{BASE}/v1/leads?limit=100&search=jsmith@corp.example"
    lead = {"_id": "lead_1", "email": "jsmith@corp.example"}
    api.get(url, payload={"success": True, "data": [lead], "pagination": {}})
    not_found = {"success": False, "error": {"code": "NOT_FOUND", "message": "Lead not found"}}
    api.patch(PATCH_X, status=404, payload=not_found)
    async with client(proxy=f"http://{login}@127.0.0.1:3128") as c:
        found = await c.search("jsmith@corp.example", None)
        missing = await c.send(UPDATE)
    assert (found.malformed, found.error_code) == (False, None)
    assert found.page is not None
    assert found.page.leads == (("lead_1", "jsmith@corp.example"),)
    shown = "[redacted]" if login.endswith(":ead") else "Lead not found"
    assert (missing.error_code, missing.message) == ("NOT_FOUND", shown)


async def test_a_407_through_a_proxy_stops_and_names_the_proxy_not_its_password(
    api: aioresponses,
) -> None:
    """An `http://` API through a proxy gets the proxy's 407 as an answer (no CONNECT)."""
    api.patch(PATCH_X, status=407, reason="Proxy Authentication Required")
    async with client(proxy="http://ann:pw_s3cret@127.0.0.1:3128") as c:
        with pytest.raises(TransportError) as info:
            await c.send(UPDATE)
    assert info.value.kind == "proxy"
    assert info.value.final
    assert info.value.message.startswith(
        "the proxy http://127.0.0.1:3128 (from --proxy) answered 407 Proxy Authentication "
        "Required: it refused the login in --proxy"
    )
    assert "pw_s3cret" not in info.value.message
    assert "ann" not in info.value.message
    assert "--base-url" not in info.value.message


async def test_the_proxy_password_is_redacted_like_the_key(api: aioresponses) -> None:
    page = "<html>proxy error: login ann:pw_s3cret_proxy refused upstream</html>"
    api.patch(PATCH_X, status=502, body=page, content_type="text/html")
    async with client(proxy="http://ann:pw_s3cret_proxy@127.0.0.1:3128") as c:
        reply = await c.send(UPDATE)
    assert reply.message == "proxy error: login [redacted] refused upstream"


async def test_a_407_without_a_proxy_is_an_answer_like_any_4xx(api: aioresponses) -> None:
    reply = await answer_to(api, status=407)
    assert (reply.status, reply.error_code) == (407, "HTTP_407")


# --- misuse


async def test_sending_on_a_closed_client_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="not open"):
        await client().send(LeadUpdate(id="x", city="Oslo"))

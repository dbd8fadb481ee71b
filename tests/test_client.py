"""The HTTP client: headers, URL, body, error bodies and Retry-After, against real servers on a
loopback port (`tests/http_server.py`).

The answers' helpers the client uses (`describe_error`, `parse_retry_after`) are tested here too.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from aiohttp import web
from yarl import URL

from bulk_updater import LeadUpdate, SendKitClient, TransportError, __version__
from bulk_updater.client import describe_error, parse_retry_after
from bulk_updater.sandbox import FaultPlan, Sandbox
from tests.conftest import HOSTILE_IDS, make_leads
from tests.http_server import Answers, RawServer

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


# --- answers


@pytest.mark.parametrize(
    ("status", "body", "headers", "code", "message"),
    [
        (
            404,
            {"success": False, "error": {"code": "NOT_FOUND", "message": "Lead not found"}},
            None,
            "NOT_FOUND",
            "Lead not found",
        ),
        (
            403,
            {"error": "Forbidden", "message": "You don't have permission", "code": 403},
            None,
            "FORBIDDEN",
            "You don't have permission",
        ),
    ],
)
async def test_both_error_body_shapes(
    status: int, body: object, headers: object, code: str, message: str
) -> None:
    async with Answers() as server, client(base_url=server.url) as c:
        server.add("PATCH", "/v1/leads/x", status=status, payload=body)
        reply = await c.send(LeadUpdate(id="x", city="Oslo"))
    assert (reply.status, reply.error_code, reply.message) == (status, code, message)


async def test_html_error_page_gives_a_readable_message() -> None:
    html = "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>"
    async with Answers() as server, client(base_url=server.url) as c:
        server.add("PATCH", "/v1/leads/x", status=503, body=html, content_type="text/html")
        reply = await c.send(LeadUpdate(id="x", city="Oslo"))
    assert reply.error_code == "HTTP_503"
    assert reply.message == "503 Service Temporarily Unavailable"


async def test_empty_error_body_still_says_something() -> None:
    async with Answers() as server, client(base_url=server.url) as c:
        server.add("PATCH", "/v1/leads/x", status=502, body=b"", reason="Bad Gateway")
        reply = await c.send(LeadUpdate(id="x", city="Oslo"))
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


async def test_retry_after_seconds_and_http_date() -> None:
    when = datetime.now(UTC) + timedelta(seconds=30)
    async with Answers() as server, client(base_url=server.url) as c:
        server.add("PATCH", "/v1/leads/x", status=429, headers={"Retry-After": "2"})
        server.add(
            "PATCH", "/v1/leads/x", status=429, headers={"Retry-After": format_datetime(when, True)}
        )
        server.add("PATCH", "/v1/leads/x", status=429)
        seconds = await c.send(LeadUpdate(id="x", city="Oslo"))
        dated = await c.send(LeadUpdate(id="x", city="Oslo"))
        absent = await c.send(LeadUpdate(id="x", city="Oslo"))
    assert seconds.retry_after == 2.0
    assert dated.retry_after is not None
    assert 27 <= dated.retry_after <= 30
    assert absent.retry_after is None


def test_parse_retry_after_edge_cases() -> None:
    now = datetime(2026, 11, 27, 7, 35, 30, tzinfo=UTC)
    assert parse_retry_after("Fri, 27 Nov 2026 07:35:32 GMT", now) == 2.0
    assert parse_retry_after("Fri, 27 Nov 2026 07:35:00 GMT", now) == 0.0  # in the past
    assert parse_retry_after("-5") == 0.0
    assert parse_retry_after("nan") is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("") is None
    assert parse_retry_after(None) is None


async def test_redirect_is_reported_not_followed() -> None:
    """Neither elsewhere nor to the same server, where the lead it names would answer 200."""
    async with Answers() as server, client(base_url=server.url) as c:
        server.add(
            "PATCH", "/v1/leads/x", status=301, headers={"Location": "https://evil.example/"}
        )
        here = f"{server.url}/v1/leads/y"
        server.add("PATCH", "/v1/leads/x", status=307, headers={"Location": here})
        server.add("PATCH", "/v1/leads/y", payload=SUCCESS)
        reply = await c.send(LeadUpdate(id="x", city="Oslo"))
        same_server = await c.send(LeadUpdate(id="x", city="Oslo"))
    assert reply.status == 301
    assert "redirected to https://evil.example/" in reply.message
    assert same_server.status == 307
    assert f"redirected to {here}" in same_server.message
    assert [request.path for request in server.requests] == ["/v1/leads/x", "/v1/leads/x"]


# --- transport failures and misuse


async def test_timeout_becomes_a_transport_error() -> None:
    async with RawServer("silent") as server, client(base_url=server.url, timeout=0.2) as c:
        with pytest.raises(TransportError) as caught:
            await c.send(LeadUpdate(id="x", city="Oslo"))
    assert caught.value.kind == "timeout"
    assert len(server.requests) == 1  # it was sent; no answer came


async def test_dropped_connection_becomes_a_transport_error() -> None:
    async with RawServer("close") as server, client(base_url=server.url) as c:
        with pytest.raises(TransportError) as caught:
            await c.send(LeadUpdate(id="x", city="Oslo"))
    assert caught.value.kind == "connection"
    assert caught.value.message == "the server closed the connection without answering"
    assert len(server.requests) == 1


async def test_sending_on_a_closed_client_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="not open"):
        await client().send(LeadUpdate(id="x", city="Oslo"))


# --- the watchdog that keeps the timeout (no aiohttp timer per request)


async def test_an_answer_later_than_the_timeout_is_a_timeout() -> None:
    """The watchdog cancels a request past its deadline, and `send` says it timed out."""
    leads = make_leads(1)
    slow = FaultPlan(rate=1.0, kinds=("slow",), slow_seconds=0.5)
    async with (
        Sandbox(leads, api_key="sk_secret", faults=slow) as sandbox,
        client(base_url=sandbox.url, timeout=0.05) as c,
    ):
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(TransportError) as caught:
            await c.send(LeadUpdate(id=next(iter(leads)), city="Oslo"))
        waited = loop.time() - started
    assert caught.value.kind == "timeout"
    assert waited < 0.5  # the answer would have come after 0.5 s: the timeout ended it first


async def test_a_cancelled_request_is_a_cancellation_not_a_timeout() -> None:
    leads = make_leads(1)
    arrived = asyncio.Event()

    async def note(request: web.Request) -> web.StreamResponse | None:
        arrived.set()
        return None

    slow = FaultPlan(rate=1.0, kinds=("slow",), slow_seconds=0.5)
    async with (
        Sandbox(leads, api_key="sk_secret", faults=slow, intercept=note) as sandbox,
        client(base_url=sandbox.url, timeout=30) as c,
    ):
        sending = asyncio.ensure_future(c.send(LeadUpdate(id=next(iter(leads)), city="Oslo")))
        await arrived.wait()
        sending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sending
        assert not c._watchdog.deadlines  # forgotten, whatever ended the request


# --- the departure of each request, for a shared rate budget


async def test_the_departure_hook_runs_once_per_request_in_the_task_that_sends_it() -> None:
    """A PATCH departs with its body, a search with its headers; either way the hook sees the
    context of the task that sent it (a shared budget keeps the start it granted there)."""
    leads = make_leads(1)
    sending: contextvars.ContextVar[str] = contextvars.ContextVar("sending", default="")
    departed: list[tuple[str, bool]] = []
    arrived: list[bool] = []

    async def note(request: web.Request) -> web.StreamResponse | None:
        arrived.append(True)
        return None

    def on_departure() -> None:
        departed.append((sending.get(), bool(arrived)))  # before the server saw the request

    async with (
        Sandbox(leads, api_key="sk_secret", intercept=note) as sandbox,
        client(base_url=sandbox.url, on_departure=on_departure) as c,
    ):

        async def send(name: str) -> None:
            sending.set(name)
            arrived.clear()
            if name == "patch":
                reply = await c.send(LeadUpdate(id=next(iter(leads)), city="Oslo"))
            else:
                reply = await c.search("lead0@example.com", None)
            assert reply.status == 200

        await asyncio.create_task(send("patch"))
        await asyncio.create_task(send("search"))
    assert departed == [("patch", False), ("search", False)]


async def test_without_a_departure_hook_requests_are_sent_as_ever() -> None:
    async with Answers() as server, client(base_url=server.url) as c:
        server.add("PATCH", "/v1/leads/x", payload=SUCCESS)
        server.add("GET", "/v1/leads", payload={"success": True, "data": []})
        patched = await c.send(LeadUpdate(id="x", city="Oslo"))
        searched = await c.search("ann@x.com", None)
    assert patched.status == 200
    assert not patched.malformed
    assert searched.status == 200
    assert searched.page is not None
    assert searched.page.leads == ()
    assert [(r.method, r.path) for r in server.requests] == [
        ("PATCH", "/v1/leads/x"),
        ("GET", "/v1/leads"),
    ]

"""The key never survives in what a server or the client says about an answer: not whole, not cut
at the edge of a bounded message, not quoted from a line that is not HTTP (against real servers
on a loopback port, `tests/http_server.py`). A URL's password never shows, however the URL
parses."""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

import pytest
import redis.asyncio
from aiohttp import web
from hypothesis import example, given, settings
from hypothesis import strategies as st
from yarl import URL

from bulk_updater import BulkUpdater, ConfigError, LeadUpdate, SendKitClient, Source, TransportError
from bulk_updater.answers import REDACTED, Redactor
from bulk_updater.limits.redis_budget import BudgetStore
from bulk_updater.proxy import Proxy, proxy_problem
from bulk_updater.sandbox import Sandbox, SandboxThread
from bulk_updater.settings import Settings
from bulk_updater.urls import UNSHOWN, hide_password, scrub
from tests.cli.conftest import clean_env, cli, job_input
from tests.conftest import make_leads, read_report, write_csv
from tests.http_server import Answers, RawServer

KEY = "sk_live_0123456789abcdefghijklmnopqrstuvwxyz"
LEAD = "665d4e5f6a7b8c9d0e1f2a3b"
PATH = f"/v1/leads/{LEAD}"
UPDATE = LeadUpdate(id=LEAD, jobTitle="CRO")


def leaked(text: str) -> str | None:
    """The longest piece of the key in `text`: any start of 4 characters or more, any 8 inside."""
    for size in range(len(KEY), 3, -1):
        if KEY[:size] in text:
            return KEY[:size]
    for start in range(1, len(KEY) - 7):
        if KEY[start : start + 8] in text:
            return KEY[start : start + 8]
    return None


def client(base: str) -> SendKitClient:
    return SendKitClient(api_key=KEY, base_url=base, timeout=5, concurrency=2)


# --- the redactor itself


def test_a_start_of_the_key_at_a_cut_is_dropped() -> None:
    redact = Redactor(KEY)
    for size in range(4, len(KEY)):
        text = "x" * (100 - size) + KEY
        clipped = redact.clip(text, 100)
        assert leaked(clipped) is None, size
        assert len(clipped) <= 100 + len(REDACTED)


def test_a_piece_of_the_key_anywhere_is_removed() -> None:
    redact = Redactor(KEY)
    assert redact(f"b'HTTP/1.1 2x0 {KEY[5:30]}'\n  ^") == f"b'HTTP/1.1 2x0 {REDACTED}'\n  ^"
    assert redact("nothing secret here") == "nothing secret here"


# --- answers cut before they reach a report


PORTAL = "<i>" * 660 + KEY + " portal"  # 1,980 characters of tags, then the key across 2,000


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (200, PORTAL),  # a 2xx that is not the API's answer
        (400, "<p>" + "y" * 180 + " key " + KEY + "</p>"),  # an HTML error cut at 200
        (400, "<p>" + "y" * 195 + " " + KEY + "</p>"),
        (500, '{"message": "' + "z" * 490 + KEY + '"}'),  # a JSON message cut at 500
        (422, '{"error": {"code": "' + "c" * 90 + KEY + '", "message": "m"}}'),
    ],
)
async def test_a_key_across_a_cut_does_not_survive(status: int, body: str) -> None:
    async with Answers() as server, client(server.url) as c:
        server.add("PATCH", PATH, status=status, body=body, content_type="text/html")
        server.add("GET", "/v1/leads", status=status, body=body, content_type="text/html")
        patched = await c.send(UPDATE)
        searched = await c.search("ann@x.com", None)
    assert server.requests[1].query == {"limit": "100", "search": "ann@x.com"}
    for reply in (patched, searched):
        assert leaked(reply.message) is None, reply.message
        assert leaked((reply.error_code or "").lower()) is None


async def test_rate_limit_headers_holding_the_key_are_redacted() -> None:
    async with Answers() as server, client(server.url) as c:
        headers = {"X-RateLimit-Limit": KEY, "Retry-After": "1"}
        server.add("PATCH", PATH, status=429, headers=headers, payload={})
        reply = await c.send(UPDATE)
    assert reply.headers is not None
    assert leaked(str(dict(reply.headers))) is None
    assert reply.retry_after == 1


# --- the client quoting a line that is not HTTP


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 2x0 %s\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX-Echo %s\r\nContent-Length: 0\r\n\r\n",
        # a header line far longer than any client reads of a head (aiohttp: 8 KiB a line)
        b"HTTP/1.1 200 OK\r\nX-Echo: " + b"e" * (1 << 20) + b"%s\r\nContent-Length: 0\r\n\r\n",
    ],
)
async def test_a_protocol_error_quoting_the_key_is_redacted(raw: bytes) -> None:
    async with RawServer(raw.replace(b"%s", KEY.encode())) as server, client(server.url) as c:
        for call in (lambda: c.send(UPDATE), lambda: c.search("ann@x.com", None)):
            with pytest.raises(TransportError) as info:
                await call()
            assert info.value.kind == "connection"
            assert leaked(info.value.message) is None, info.value.message
            assert leaked(str(info.value)) is None
            assert "\n" not in info.value.message
    assert len(server.requests) == 2


# --- end to end: the report and the summary


async def test_the_report_and_summary_keep_no_piece_of_the_key(tmp_path: Path) -> None:
    async def portal(request: web.Request) -> web.StreamResponse | None:
        return web.Response(text=PORTAL, status=200, content_type="text/html")

    leads = make_leads(1)
    path = write_csv(tmp_path / "in.csv", ["id", "firstName"], [[next(iter(leads)), "Ann"]])
    report = tmp_path / "report.csv"
    async with (
        Sandbox(leads, api_key=KEY, intercept=portal) as sb,
        BulkUpdater(api_key=KEY, base_url=sb.url, rate=0, max_attempts=1) as updater,
    ):
        summary = await updater.run(Source(path), report=report)
    (line,) = read_report(report)
    assert line["status"] == "failed"
    assert "not the API's answer" in line["message"]
    assert leaked(report.read_text()) is None
    assert leaked(summary.model_dump_json()) is None


# --- a URL's password, however the URL parses


#: A password of pieces no other text holds, joined by what `urllib` cuts a URL at.
PIECES = st.from_regex(r"[QXZJKV]{4,8}", fullmatch=True)
#: A piece, in any case (`urllib` lower-cases what it reads as a host name).
PIECES_IN = re.compile(r"[qxzjkv]{4,}", re.IGNORECASE)
#: Characters that NFKC folds into one `urllib` cuts at (U+FF20, U+FE6B: `@`; U+FF0F: `/`...).
LOOKALIKES = [
    char
    for char in map(chr, range(0x80, 0x10000))
    if any(cut in unicodedata.normalize("NFKC", char) for cut in ":/?#@&;=[]%\\")
    and unicodedata.normalize("NFKC", char) != char
]
#: Characters that NFKC folds into letters (U+FB01 `fi`, U+00B2 `2`), or that IDNA drops.
FOLDING = ["\ufb01", "\u00b2", "\uff48", "\u24b6", "\u200b", "\u00ad", "\ufeff", "\U000e0041"]
JOINS = st.one_of(
    st.sampled_from([":", "/", "?", "#", "@", "&", ";", "=", "%", " ", "%2F", "%40", "+"]),
    st.sampled_from([*LOOKALIKES, *FOLDING]),
)
#: User names, which may be shown: none holds a run `PIECES_IN` would take for a password's.
USERS = st.from_regex(r"[a-z]{0,6}", fullmatch=True).filter(lambda user: not PIECES_IN.search(user))
PASSWORDS = st.lists(st.tuples(PIECES, JOINS), min_size=1, max_size=4).map(
    lambda parts: "".join(piece + join for piece, join in parts)
)
URL_FORMS = [
    "redis://{user}:{pw}@127.0.0.1:6379/0",
    "redis://:{pw}@host:6379",
    "rediss://:{pw}@h/1",
    "redis://{user}:{pw}@h:1/0?db=2",
    "redis://h:1/0?password={pw}",
    "redis://h:1/0?db=1&password={pw}&socket_timeout=1",
    "redis://h:1/0?PassWord={pw}",
    "unix://{user}:{pw}@/run/redis.sock?db=0",
    "unix:///run/redis.sock?db=2&password={pw}",
    "https://{user}:{pw}@api.sendkit.ai",
    # no ASCII `@` at all: `urllib` folds a look-alike into one (or refuses the URL, quoting it)
    "redis://{user}:{pw}\uff20127.0.0.1:6379",
    "redis://{user}:{pw}\ufe6bh:1/0",
    "https://{user}:{pw}\uff20api.sendkit.ai",
]


def redis_says(url: str) -> str:
    """What redis-py may quote of `url`: its error, or every value it read (a connection error
    names the host and port it read)."""
    try:
        client = redis.asyncio.Redis.from_url(url)
    except ValueError as exc:
        return str(exc)
    return " ".join(map(str, client.connection_pool.connection_kwargs.values()))


@settings(max_examples=300, deadline=None)
@given(
    form=st.sampled_from(URL_FORMS),
    user=USERS,
    password=PASSWORDS,
)
def test_no_piece_of_a_password_is_shown_however_the_url_parses(
    form: str, user: str, password: str
) -> None:
    url = form.format(user=user, pw=password)
    shown = hide_password(url)
    assert not PIECES_IN.search(shown), (url, shown)
    assert shown.startswith(url.partition("://")[0] + "://")
    said = scrub(redis_says(url), url)
    assert not PIECES_IN.search(said), (url, said)


@settings(max_examples=200, deadline=None)
@given(
    form=st.sampled_from(["http://{user}:{pw}@127.0.0.1:1", "http://{user}:{pw}\uff20127.0.0.1:1"]),
    user=USERS,
    password=PASSWORDS,
)
# Found by CI: a user name is shown, so it must not look like a piece of the password.
@example(form="http://{user}:{pw}@127.0.0.1:1", user="user", password="JJJJ:")
def test_no_piece_of_a_password_is_in_what_a_base_url_or_a_proxy_is_refused_with(
    form: str, user: str, password: str
) -> None:
    url = form.format(user=user, pw=password)
    said = [proxy_problem(url)]
    try:
        Settings.build(base_url=url)
    except ConfigError as refused:
        said.append(str(refused))
    if not said[0]:  # a proxy is shown only once it is taken for one
        said.append(Proxy(URL(url), "--proxy").shown)
    assert not PIECES_IN.search(" ".join(said)), (url, said)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://user:hunter2\uff20127.0.0.1:1", "redis://***"),  # urllib folds it into `@`
        ("redis://user:hunter2\ufe6b127.0.0.1:1", "redis://***"),
        ("user:hunter2\uff20127.0.0.1:1", "***"),  # no scheme: NFKC changes it
        ("redis://user:pw\u200b@h:1", "redis://***"),
        ("redis://h:1/0?password=p\u00e4ss", "redis://***"),
        ("redis://u:pw d@h", "redis://***"),
        ("caf\u00e9.csv", "caf\u00e9.csv"),  # no URL: left alone
        ("Lead N\u00ba", "Lead N\u00ba"),  # NFKC folds `º` into `o`, no character a URL is cut at
        ("u:pw@h://x", "u:***@h://x"),  # text before `://` that is no scheme is no scheme
        ("redis://default:S3cr3t/PW@host:6379", "redis://default:***@host:6379"),
        ("redis://:a#b?c@h:1/0", "redis://:***@h:1/0"),
        ("redis://pass-only@h", "redis://***@h"),  # a user without a password may be one
        ("redis://h/0?x=1:seen@h2", "redis://***@h2"),  # no user name: all before the @
        ("redis://h:1/0?db=2&password=a&b#c", "redis://h:1/0?db=2&password=***"),
        ("redis://h:1/0?pass%77ord=x&db=1", "redis://h:1/0?***"),
        ("redis://u:a%2Fb@h", "redis://u:***@h"),
        ("redis://h:6379/0", "redis://h:6379/0"),
    ],
)
def test_what_a_url_is_shown_as(url: str, shown: str) -> None:
    assert hide_password(url) == shown


async def test_a_redis_url_that_does_not_parse_is_refused_without_its_password() -> None:
    url = "redis://default:S3cr3t/Pw9@host:6379"
    store = BudgetStore(url, "account", clock="redis", connections=1)
    with pytest.raises(ConfigError) as caught:
        await store.open("job", 10.0)
    message = str(caught.value)
    assert message.startswith("the Redis URL redis://default:***@host:6379 cannot be used")
    assert "percent-encoded (%2F %3F %23 %40)" in message
    assert "S3cr3t" not in message
    assert "Pw9" not in message


@pytest.mark.parametrize(
    "base_url",
    [
        "https://u:S3cr3t/Pw9@h:1",
        "https://u:S3cr3t@h:99999",
        "ftp://u:S3cr3t@h",
        "https://u:S3cr3t@h",
        "http://u:S3cr3t/Pw9\uff20127.0.0.1:1",
        "u:S3cr3t/Pw9\uff20127.0.0.1:1",
    ],
)
def test_a_base_url_with_a_password_is_refused_without_it(base_url: str) -> None:
    with pytest.raises(ConfigError, match="--base-url: ") as caught:
        Settings.build(names={"base_url": "--base-url"}, base_url=base_url)
    assert "S3cr3t" not in str(caught.value)
    assert "Pw9" not in str(caught.value)


@pytest.mark.parametrize(
    ("base_url", "shown"),
    [
        (f"http://127.0.0.1:1/?api_key={KEY}", "'http://127.0.0.1:1' must be just scheme"),
        (f"http://127.0.0.1:1/{KEY}", "'http://127.0.0.1:1' must be just scheme"),
        (f"http://127.0.0.1:1#{KEY}", "'http://127.0.0.1:1' must be just scheme"),
        (f"https://api.sendkit.ai/v1?key={KEY}&x=1", "'https://api.sendkit.ai' must be just"),
        (f"http://{KEY}:1", "'http://***:1' is plain http"),
        (f"http://{KEY.upper()}", "'http://***' is plain http"),  # yarl lower-cases a host
        (f"{KEY}/x", "'***' is not an http(s) URL"),
        (f"https://h:1:{KEY}", "is not a URL like"),
        ("http://:S3cr3t@127.0.0.1:1", "'http://:***@127.0.0.1:1' must be just scheme"),
    ],
)
def test_a_base_url_is_refused_without_its_path_query_fragment_or_the_key(
    base_url: str, shown: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        Settings.build(names={"base_url": "--base-url"}, api_key=KEY, base_url=base_url)
    message = str(refused.value)
    assert message.startswith("--base-url: ")
    assert shown in message
    assert leaked(message) is None, message
    assert leaked(message.lower()) is None, message
    assert "S3cr3t" not in message


def test_the_key_pasted_into_the_base_url_is_in_no_output(tmp_path: Path) -> None:
    leads = make_leads(1)
    source, _ = job_input(tmp_path, leads)
    with SandboxThread(leads, api_key=KEY) as sb:
        for base_url in (f"{sb.url}/?api_key={KEY}", f"{sb.url}/v1/{KEY}#{KEY}"):
            code, out, err = cli(
                source, "--base-url", base_url, env=clean_env(SENDKIT_API_KEY=KEY), cwd=tmp_path
            )
            assert code == 2, out + err
            assert f"--base-url: '{sb.url}' must be just scheme, host and port" in err
            assert leaked(out + err) is None, err
        assert sb.state.requests == 0


def test_what_a_library_says_about_a_url_shown_as_stars_is_not_repeated() -> None:
    url = "redis://user:S3cr3t\uff20127.0.0.1:1"
    assert scrub("netloc 'user:S3cr3t\uff20127.0.0.1:1' is bad, s3cr3t@127.0.0.1", url) == UNSHOWN


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://default:S3cr3t/Pw9@127.0.0.1:6379", "redis://default:***@127.0.0.1:6379"),
        ("redis://default:S3cr3t/Pw9\uff20127.0.0.1:6379", "redis://***"),
        ("redis://default:S3cr3t/Pw9\ufe6b127.0.0.1:6379", "redis://***"),
    ],
)
def test_a_redis_password_is_in_no_output_of_a_run(tmp_path: Path, url: str, shown: str) -> None:
    leads = make_leads(2)
    source, _ = job_input(tmp_path, leads)
    summary = tmp_path / "summary.json"
    with SandboxThread(leads) as sb:
        code, out, err = cli(
            source, "--base-url", sb.url, "--redis", url, "--summary-json", summary,
            cwd=tmp_path,
        )  # fmt: skip
        assert sb.state.requests == 0
    assert code == 2, out + err
    assert f"the Redis URL {shown} cannot be used" in err
    stop_message = json.loads(summary.read_text())["stop_message"]
    assert shown in stop_message
    for text in (out, err, stop_message, summary.read_text()):
        assert "S3cr3t" not in text
        assert "Pw9" not in text

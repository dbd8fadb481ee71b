"""Which requests the page's server answers, without a browser, over real loopback sockets."""

from __future__ import annotations

import asyncio
import secrets
import socket
import stat
from pathlib import Path

import aiohttp
import pytest

from bulk_updater.ui.guard import COOKIE_PREFIX
from tests.ui.conftest import new_server, page_client


async def test_the_token_is_exchanged_once_for_a_strict_httponly_cookie(tmp_path: Path) -> None:
    async with new_server(tmp_path) as server, aiohttp.ClientSession() as http:
        async with http.get(server.url, allow_redirects=False) as answer:
            assert answer.status == 200
            # The token is dropped from the address by a move of the answer's own page.
            assert '<meta http-equiv="refresh" content="0;url=/">' in await answer.text()
            assert answer.headers["Cache-Control"] == "no-store"
            cookie = answer.headers["Set-Cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=Strict" in cookie
        assert "Max-Age=43200" in cookie  # 12 hours: the runs before do not pile up
        assert server.guard.token not in cookie
        # Used once: again, it sends the browser on to the page, with no cookie.
        async with http.get(server.url, allow_redirects=False) as again:
            assert again.status == 200
            assert "Set-Cookie" not in again.headers
        async with http.get(f"http://127.0.0.1:{server.port}/") as page:
            assert page.status == 403  # so, without the cookie, no access


async def test_the_token_opened_again_with_the_cookie_is_a_visit(tmp_path: Path) -> None:
    async with new_server(tmp_path) as server, page_client(server) as page:
        async with page.http.get(server.url) as again:  # the opener twice, a reload
            assert again.status == 200
            body = await again.text()
            assert '<meta http-equiv="refresh" content="0;url=/">' in body
            assert '<a href="/">Open the page</a>' in body
            assert "Set-Cookie" not in again.headers
        async with page.http.get(page.origin + "/") as visit:
            assert visit.status == 200
            assert "Max-Age=43200" in visit.headers["Set-Cookie"]  # 12 hours from this load
        assert (await page.state())["file"] is None


def _closed_ports(count: int) -> list[int]:
    """Ports nothing listens on: each bound for a moment, then closed."""
    ports = []
    for _ in range(count):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            ports.append(probe.getsockname()[1])
    return ports


async def test_the_cookies_of_runs_gone_are_expired_and_a_live_ones_kept(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    async with (
        new_server(tmp_path / "a") as server,
        new_server(tmp_path / "b") as live,
        aiohttp.ClientSession(max_headers=1000) as http,  # a browser reads 150 Set-Cookie
    ):
        # 150 runs before: their cookies alone are past aiohttp's 8190 bytes of header.
        gone = [f"{COOKIE_PREFIX}{port}" for port in _closed_ports(150)]
        pairs = [f"{name}={secrets.token_urlsafe(32)}" for name in gone]
        pairs += [f"{live.guard.cookie}={live.guard.secret}"]
        headers = {"Cookie": "; ".join(pairs)}
        assert len(headers["Cookie"]) > 8190
        async with http.get(server.url, headers=headers, allow_redirects=False) as answer:
            assert answer.status == 200
            expired = _expired(answer)
        assert expired == set(gone)  # the live server's cookie is left alone
        headers["Cookie"] += f"; {server.guard.cookie}={server.guard.secret}"
        async with http.get(f"http://127.0.0.1:{server.port}/", headers=headers) as page:
            assert page.status == 200  # the page loads, and expires them too
            assert _expired(page) == set(gone)


def _expired(answer: aiohttp.ClientResponse) -> set[str]:
    return {
        cookie.split("=", 1)[0]
        for cookie in answer.headers.getall("Set-Cookie", [])
        if "Max-Age=0" in cookie
    }


async def test_no_token_and_no_cookie_is_refused(tmp_path: Path) -> None:
    async with new_server(tmp_path) as server, aiohttp.ClientSession() as http:
        origin = f"http://127.0.0.1:{server.port}"
        for path in ("/", "/api/state", "/static/app.js", "/api/download/report"):
            async with http.get(origin + path) as answer:
                assert answer.status == 403, path
        async with http.get(origin + "/?token=wrong") as answer:
            assert answer.status == 403


async def test_a_wrong_host_is_refused_before_the_token_is_used(tmp_path: Path) -> None:
    async with new_server(tmp_path) as server, aiohttp.ClientSession() as http:
        for host in ("evil.example", f"evil.example:{server.port}", "127.0.0.1:1", "localhost"):
            headers = {"Host": host}
            async with http.get(server.url, headers=headers, allow_redirects=False) as answer:
                assert answer.status == 403, host
                assert "Set-Cookie" not in answer.headers
        for host in (f"localhost:{server.port}", f"[::1]:{server.port}"):
            assert host in server.guard.hosts()
        async with page_client(server) as page:  # the token still works: nothing used it up
            assert (await page.state())["file"] is None


async def test_a_wrong_host_is_refused_even_with_the_cookie(tmp_path: Path) -> None:
    async with (
        new_server(tmp_path) as server,
        page_client(server) as page,
        page.http.get(
            page.origin + "/api/state", headers={"Host": f"rebound.example:{server.port}"}
        ) as answer,
    ):
        assert answer.status == 403


async def test_a_cross_site_change_is_refused(tmp_path: Path) -> None:
    async with new_server(tmp_path) as server, page_client(server) as page:
        refused = [
            {"Sec-Fetch-Site": "cross-site"},
            {"Sec-Fetch-Site": "same-site"},
            {"Sec-Fetch-Site": "cross-site", "Origin": page.origin},
            {"Origin": "http://evil.example"},
            {"Origin": "null"},
            {},  # neither: a change must say where it comes from
        ]
        for headers in refused:
            async with page.http.post(page.origin + "/api/sandbox", headers=headers) as answer:
                assert answer.status == 403, headers
        assert server.sandbox is None  # none of them did anything
        async with page.http.post(
            page.origin + "/api/sandbox", headers={"Origin": page.origin}
        ) as answer:
            assert answer.status == 200
        assert server.sandbox is not None


async def test_no_cors_header_is_ever_sent(tmp_path: Path) -> None:
    async with new_server(tmp_path) as server, page_client(server) as page:
        origin = {"Origin": "http://evil.example"}
        answers = [
            await page.http.get(page.origin + "/api/state", headers=origin),
            await page.http.options(page.origin + "/api/start", headers=origin),
            await page.change("/api/check"),
        ]
        for answer in answers:
            assert not [h for h in answer.headers if h.lower().startswith("access-control-")]
            answer.release()


async def test_a_download_serves_only_the_jobs_own_files(tmp_path: Path) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text("not for the page")
    async with new_server(tmp_path) as server, page_client(server) as page:
        paths = [
            "/api/download/report",  # no job yet
            "/api/download/..%2f..%2f..%2fetc%2fpasswd",
            f"/api/download/{secret}",
            "/api/download/%2e%2e",
            "/static/..%2f__init__.py",
            "/static/index.html.bak",
        ]
        for path in paths:
            async with page.http.get(page.origin + path) as answer:
                assert answer.status == 404, path
                assert "not for the page" not in await answer.text()


async def test_the_private_folder_is_the_users_alone_and_removed_at_the_stop(
    tmp_path: Path,
) -> None:
    async with new_server(tmp_path) as server, page_client(server) as page:
        assert server.workspace is not None
        root = server.workspace.root
        answer = await page.change("/api/upload?name=rows.csv", data=b"id,city\nabc,Lyon\n")
        assert answer.status == 200
        uploads = list(root.iterdir())
        assert stat.S_IMODE(root.stat().st_mode) == 0o700
        assert [stat.S_IMODE(path.stat().st_mode) for path in uploads] == [0o600]
    assert not root.exists()


async def test_a_page_closed_ends_its_event_stream_quietly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with new_server(tmp_path) as server, page_client(server) as page:
        assert server.session is not None
        session = server.session
        async with page.http.get(page.origin + "/api/events") as stream:
            assert (await stream.content.readline()).startswith(b"data: ")
            assert session.streams == 1
        await page.act("/api/sandbox")  # a change for the closed stream to push
        async with asyncio.timeout(10):
            while session.streams:  # its handler notices the page is gone, and ends
                await session.wait_change(session.version)
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


async def test_the_page_runs_only_its_own_files_and_in_no_frame(tmp_path: Path) -> None:
    async with new_server(tmp_path) as server, page_client(server) as page:
        for path in ("/", "/static/app.js", "/api/state"):
            async with page.http.get(page.origin + path) as answer:
                assert answer.status == 200
                policy = answer.headers["Content-Security-Policy"]
                assert "default-src 'self'" in policy
                assert "frame-ancestors 'none'" in policy
                assert answer.headers["X-Frame-Options"] == "DENY"
                assert answer.headers["Referrer-Policy"] == "no-referrer"


async def test_the_icon_a_browser_asks_for_by_itself_is_there(tmp_path: Path) -> None:
    # A page that names no icon (the token's answer) makes the browser ask for /favicon.ico: a
    # 404 there is an error in the browser's console.
    async with (
        new_server(tmp_path) as server,
        page_client(server) as page,
        page.http.get(page.origin + "/favicon.ico") as answer,
    ):
        assert answer.status == 200
        assert answer.content_type == "image/svg+xml"


async def test_a_second_server_on_another_port_neither_replaces_nor_takes_the_cookie(
    tmp_path: Path,
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    async with (
        new_server(tmp_path / "a") as first,
        new_server(tmp_path / "b") as second,
        aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http,
    ):
        # One browser, both pages opened: a browser sends a host's cookies to all its ports.
        for server in (first, second):
            async with http.get(server.url) as answer:
                assert answer.status == 200
        for server in (first, second):
            async with http.get(f"http://127.0.0.1:{server.port}/api/state") as answer:
                assert answer.status == 200, server.port  # the second did not replace the first
        names = {cookie.key for cookie in http.cookie_jar}
        assert names == {first.guard.cookie, second.guard.cookie}
        # The first server's cookie, under any name, does not open the second.
        value = first.guard.secret
        for name in (first.guard.cookie, second.guard.cookie):
            async with aiohttp.ClientSession() as other:
                url = f"http://127.0.0.1:{second.port}/api/state"
                async with other.get(url, headers={"Cookie": f"{name}={value}"}) as answer:
                    assert answer.status == 403, name


@pytest.mark.parametrize("framing", ["Content-Length: 10000000", "Transfer-Encoding: chunked"])
async def test_an_upload_cut_off_leaves_no_file_and_no_error(
    tmp_path: Path, framing: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with new_server(tmp_path) as server, page_client(server) as page:
        assert server.workspace is not None
        cookie = f"{server.guard.cookie}={server.guard.secret}"
        _, writer = await asyncio.open_connection("127.0.0.1", server.port)
        head = (
            f"POST /api/upload?name=big.csv HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Cookie: {cookie}\r\nSec-Fetch-Site: same-origin\r\n{framing}\r\n\r\n"
        )
        body = b"id,city\n" + b"abc,Lyon\n" * 1000
        if "chunked" in framing:
            body = b"%x\r\n%s\r\n" % (len(body), body)
        writer.write(head.encode() + body)
        await writer.drain()
        writer.close()  # the page is closed mid-upload
        state = await page.until(lambda s: s["file_error"] is not None)
        assert state["file_error"] == (
            "big.csv: the upload stopped before the file's end; choose it again"
        )
        assert list(server.workspace.root.iterdir()) == []
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


async def test_a_file_refused_is_removed_at_once(tmp_path: Path) -> None:
    async with new_server(tmp_path) as server, page_client(server) as page:
        assert server.workspace is not None
        state = await page.act("/api/upload?name=leads.xlsx", data=b"not a workbook")
        assert state["file_error"].startswith("leads.xlsx: is not an Excel workbook")
        assert list(server.workspace.root.iterdir()) == []

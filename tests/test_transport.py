"""The HTTP/1.1 transport's reading of answers, against a raw loopback server that answers with
bytes of each test's choosing: kept-alive connections and when they are not reused, the ways an
answer's body ends, the bounds on what is read (head, trailers, body), interim and extra answers,
and what is no HTTP. The pool's own tests (limit, cancellation, hosts, TLS) are in test_pool.py."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from bulk_updater.transport import MAX_HEAD, TransportError
from tests.http_server import LINES, OK, RawServer, opened


async def test_a_request_is_the_bytes_it_should_be_and_connections_are_kept_alive() -> None:
    async with RawServer(OK, keep_alive=True) as server, opened(server.port) as p:
        for _ in range(5):
            answer = await p.request(b"PATCH", b"/v1/leads/a1", b'{"city":"Oslo"}')
            assert (answer.status, answer.body, answer.complete) == (200, b'{"success":true}', True)
        get = await p.request(b"GET", b"/v1/leads?search=x&limit=100", None)
    assert get.status == 200
    assert server.connections == 1
    assert server.requests[0] == (
        b"PATCH /v1/leads/a1 HTTP/1.1\r\n" + LINES + b'Content-Length: 15\r\n\r\n{"city":"Oslo"}'
    )
    assert server.requests[-1] == b"GET /v1/leads?search=x&limit=100 HTTP/1.1\r\n" + LINES + b"\r\n"


async def test_an_answer_that_says_close_is_not_reused() -> None:
    close = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}"
    async with RawServer(close, keep_alive=True) as server, opened(server.port) as p:
        for _ in range(3):
            assert (await p.request(b"PATCH", b"/v1/leads/a", b"{}")).status == 200
    assert server.connections == 3


async def test_chunked_and_until_close_bodies_are_read_whole() -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n2\r\nef\r\n0\r\n\r\n"
    )
    until_close = b"HTTP/1.0 500 Oops\r\n\r\nthe body ends with the connection"

    def then_close(writer: asyncio.StreamWriter) -> None:
        writer.write(until_close)
        writer.close()

    async with RawServer(chunked, then_close, keep_alive=True) as server, opened(server.port) as p:
        first = await p.request(b"PATCH", b"/v1/leads/a", b"{}")
        second = await p.request(b"PATCH", b"/v1/leads/a", b"{}")
    assert (first.body, first.complete) == (b"abcdef", True)
    assert (second.status, second.reason, second.complete) == (500, "Oops", True)
    assert second.body == b"the body ends with the connection"


async def test_a_body_past_the_limit_is_cut_and_its_connection_closed() -> None:
    big = b"HTTP/1.1 500 Big\r\nContent-Length: 5000\r\n\r\n" + b"x" * 5000
    async with (
        RawServer(big, OK, keep_alive=True) as server,
        opened(server.port, body_limit=1000) as p,
    ):
        cut = await p.request(b"PATCH", b"/v1/leads/a", b"{}")
        after = await p.request(b"PATCH", b"/v1/leads/a", b"{}")
    assert (cut.status, len(cut.body), cut.complete) == (500, 1000, False)
    assert after.status == 200
    assert server.connections == 2  # the rest of the big body was never read


@pytest.mark.parametrize("lines", [1, 20, 300])
async def test_headers_past_the_bound_are_an_error_not_memory(lines: int) -> None:
    """One line or many, read at once or over many reads (300 lines: about 1.2 MB)."""
    size = (MAX_HEAD + 100) // lines
    head = b"".join(b"X-More-%d: %s\r\n" % (n, b"z" * size) for n in range(lines))
    answer = b"HTTP/1.1 200 OK\r\n" + head + b"Content-Length: 2\r\n\r\n{}"
    async with RawServer(answer, keep_alive=True) as server, opened(server.port) as p:
        with pytest.raises(TransportError) as info:
            await p.request(b"PATCH", b"/v1/leads/a", b"{}")
    assert info.value.kind == "connection"
    assert info.value.message == "the server's answer has more than 64 KiB of headers"


async def test_what_is_no_http_is_a_connection_error() -> None:
    async with (
        RawServer(b"SSH-2.0-OpenSSH_9.6\r\n\r\n", keep_alive=True) as server,
        opened(server.port) as p,
    ):
        with pytest.raises(TransportError) as info:
            await p.request(b"PATCH", b"/v1/leads/a", b"{}")
    assert info.value.kind == "connection"
    assert info.value.message.startswith("the server's answer is not valid HTTP/1.1")


async def test_a_connection_closed_without_an_answer_or_mid_answer() -> None:
    def hang_up(writer: asyncio.StreamWriter) -> None:
        writer.close()

    def half(writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{")
        writer.close()

    async with RawServer(hang_up, half, OK, keep_alive=True) as server, opened(server.port) as p:
        with pytest.raises(TransportError) as none:
            await p.request(b"PATCH", b"/v1/leads/a", b"{}")
        with pytest.raises(TransportError) as cut:
            await p.request(b"PATCH", b"/v1/leads/a", b"{}")
        assert (await p.request(b"PATCH", b"/v1/leads/a", b"{}")).status == 200
    assert none.value.message == "the server closed the connection without answering"
    assert cut.value.message == "the server closed the connection mid-answer"


async def test_an_interim_answer_is_passed_over() -> None:
    answer = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + OK
    async with RawServer(answer, keep_alive=True) as server, opened(server.port) as p:
        got = await p.request(b"PATCH", b"/v1/leads/a", b"{}")
        again = await p.request(b"PATCH", b"/v1/leads/a", b"{}")
    assert (got.status, got.body) == (200, b'{"success":true}')
    assert again.status == 200
    assert server.connections == 1


async def test_a_second_answer_to_one_request_ends_the_connection() -> None:
    async with RawServer(OK + OK, OK, keep_alive=True) as server, opened(server.port) as p:
        assert (await p.request(b"PATCH", b"/v1/leads/a", b"{}")).status == 200
        assert (await p.request(b"PATCH", b"/v1/leads/a", b"{}")).status == 200
    assert server.connections == 2  # the extra answer could have been taken for the next one's


async def test_the_headers_that_matter_are_kept_under_any_spelling() -> None:
    answer = (
        b"HTTP/1.1 429 Too Many Requests\r\nretry-after: 2\r\nX-RATELIMIT-LIMIT: 40\r\n"
        b"X-RateLimit-Limit: 41\r\nSet-Cookie: a=b\r\nContent-Length: 0\r\n\r\n"
    )
    async with RawServer(answer, keep_alive=True) as server, opened(server.port) as p:
        got = await p.request(b"PATCH", b"/v1/leads/a", b"{}")
    assert got.headers.get("Retry-After") == "2"
    assert got.headers.get("x-ratelimit-limit") == "40"  # the first of a repeated header
    assert got.headers.get("Set-Cookie") is None  # not kept: nothing reads it
    assert (got.status, got.reason) == (429, "Too Many Requests")


async def test_a_body_in_the_smallest_chunks_is_read_whole() -> None:
    chunks = b"".join(b"1\r\n%c\r\n" % (97 + n % 26) for n in range(900))
    answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"
    async with RawServer(answer, keep_alive=True) as server, opened(server.port) as p:
        got = await p.request(b"PATCH", b"/v1/leads/a", b"{}")
    assert (len(got.body), got.complete) == (900, True)
    assert got.body[:27] == b"abcdefghijklmnopqrstuvwxyza"


@pytest.mark.parametrize("tail", [b"X-Trailer: " + b"t" * 200_000, b"5;" + b"e" * 200_000])
async def test_a_trailer_or_chunk_line_that_never_ends_is_bounded(tail: bytes) -> None:
    """The parser holds a partial line: what comes without a head or body parsed is bounded."""
    answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n"
    if tail.startswith(b"X-"):
        tail = b"0\r\n" + tail  # the last chunk, then a trailer line with no end
    async with RawServer(answer + tail, keep_alive=True) as server, opened(server.port) as p:
        with pytest.raises(TransportError) as info:
            await p.request(b"PATCH", b"/v1/leads/a", b"{}")
    assert info.value.message == "the server's answer has more than 64 KiB of headers"


async def test_an_answer_before_the_request_was_all_written_ends_the_connection() -> None:
    """A server that answers (413) without reading a 16 MiB body: the rest of the request is
    still on the connection, so it is not used again."""
    connections = ended = 0
    both_ended = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections, ended
        connections += 1
        try:
            await reader.readuntil(b"\r\n\r\n")
            if connections == 1:
                writer.write(b"HTTP/1.1 413 Too Large\r\nContent-Length: 0\r\n\r\n")
            else:
                await reader.readexactly(2)
                writer.write(OK)
            await writer.drain()
            with contextlib.suppress(ConnectionError):
                await reader.read()  # until the client goes
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            ended += 1
            if ended == 2:
                both_ended.set()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    async with opened(server.sockets[0].getsockname()[1]) as p:
        early = await p.request(b"PATCH", b"/v1/leads/a", b"x" * (16 << 20))
        after = await p.request(b"PATCH", b"/v1/leads/a", b"{}")
    await both_ended.wait()
    server.close()
    await server.wait_closed()
    assert (early.status, after.status) == (413, 200)
    assert connections == 2

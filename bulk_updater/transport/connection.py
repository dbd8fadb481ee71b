"""One kept-alive connection (an `asyncio.Protocol`): one exchange at a time, its answer parsed
by httptools as it arrives, and what is read of it bounded."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final, Literal, NamedTuple, cast

import httptools

MAX_HEAD: Final = 64 * 1024  # status line and headers; aiohttp allows 8 KiB a line
_LOST: Final = "the server closed the connection without answering"
_CUT: Final = "the server closed the connection mid-answer"
_TOO_BIG: Final = f"the server's answer has more than {MAX_HEAD >> 10} KiB of headers"


class TransportError(Exception):
    """No HTTP answer arrived: the request timed out, the connection failed, or the host's name
    does not resolve (`kind` "dns": not transient, retrying cannot help)."""

    def __init__(self, kind: Literal["timeout", "connection", "dns"], message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class Headers(dict[str, str]):
    """The headers kept of an answer (those the pool was told to keep), looked up by any spelling
    of their name; the first of a repeated header wins."""

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return super().get(name.lower(), default)


class Answer(NamedTuple):
    status: int
    reason: str
    headers: Headers
    body: bytes
    complete: bool  # False: the body was longer than the limit, and only its start was read


class Connection(asyncio.Protocol):
    """One kept-alive connection: one exchange at a time, its answer parsed as it arrives."""

    def __init__(self, body_limit: int, kept: frozenset[bytes]) -> None:
        """`kept`: the lowercase names of the headers to keep of each answer."""
        self._limit = body_limit
        self._kept = kept
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[Answer] | None = None
        self.closed = False
        self.reusable = False
        self._reset()

    def _reset(self) -> None:
        self._reason = b""
        self._headers = Headers()
        self._body = bytearray()
        self._head_size = 0  # of this answer's status line and headers, as parsed
        self._received = 0  # bytes received since the parser last gave a head or body
        self._progress = False
        self._problem = ""
        self._began = False  # a byte of this answer came
        self._headers_done = False
        self._framed = False  # a Content-Length or chunked body: its end is known without EOF

    @property
    def usable(self) -> bool:
        return not self.closed and self._transport is not None

    async def exchange(self, data: bytes, on_sent: Callable[[], None] | None) -> Answer:
        transport = self._transport
        if transport is None or self.closed:
            raise TransportError("connection", _LOST)
        self.reusable = False
        self._reset()
        waiter = self._waiter = asyncio.get_running_loop().create_future()
        transport.write(data)
        if on_sent is not None:
            on_sent()
        try:
            answer: Answer = await waiter
        finally:
            self._waiter = None
        return answer

    def abort(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.abort()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass of it

    def data_received(self, data: bytes) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():  # nothing was asked: a server talking out of turn
            self.abort()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail("the server switched protocols instead of answering")
        except httptools.HttpParserError as exc:
            self._fail(self._problem or f"the server's answer is not valid HTTP/1.1 ({exc})")
        else:
            # A head, trailer, chunk size or extension that does not end: the parser holds a
            # partial line, so what came since the last head or body parsed is bounded (one read
            # past MAX_HEAD at most).
            if self._progress:
                self._progress = False
                self._received = 0
            else:
                self._received += len(data)
                if self._received > MAX_HEAD:
                    self._fail(_TOO_BIG)

    def eof_received(self) -> bool:
        return False  # close; connection_lost says what that means

    def connection_lost(self, exc: Exception | None) -> None:
        ours, self.closed = self.closed, True  # an abort of ours is no end of file
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._headers_done and not self._framed and exc is None and not ours:
            self._answer(True)  # a body that ends with the connection, as HTTP/1.0 allows
            return
        if ours:
            waiter.set_exception(TransportError("connection", "the connection was closed"))
            return
        if exc is not None:
            lost = f"the connection was lost ({reason(exc)})"
            waiter.set_exception(
                Unanswered("connection", lost)
                if not self._began
                else TransportError("connection", lost)
            )
        elif not self._began:
            waiter.set_exception(Unanswered("connection", _LOST))
        else:
            waiter.set_exception(TransportError("connection", _CUT))

    # httptools callbacks

    def on_message_begin(self) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():  # a second answer to one request: trust none after
            self.abort()
            raise _Enough
        self._began = True

    def on_status(self, status: bytes) -> None:
        self._reason += status
        self._count(len(status))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value))
        key = name.lower()
        if key in self._kept:
            self._headers.setdefault(key.decode("latin-1"), value.decode("latin-1"))
        elif key == b"content-length" or key == b"transfer-encoding":
            self._framed = True

    def on_headers_complete(self) -> None:
        self._headers_done = self._progress = True

    def on_body(self, body: bytes) -> None:
        room = self._limit - len(self._body)
        if len(body) > room:  # longer than is read: answer with its start, never drain the rest
            self._body += body[:room]
            self._answer(False)
            self.abort()
            raise _Enough
        self._body += body  # one buffer: a body of a million 1-byte chunks is no million objects
        self._progress = True

    def on_message_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200:  # an interim answer (100 Continue, 103 Early Hints): wait on
            self._reset()
            return
        transport = self._transport
        # An answer that came before the request was all written (a 413, say) leaves the
        # rest of it on the connection: no next request after that.
        unsent = transport is None or transport.get_write_buffer_size() > 0
        self.reusable = self._parser.should_keep_alive() and not unsent
        self._answer(True)

    def _count(self, size: int) -> None:
        """Bound the head when it arrived in one read (and was parsed in one go)."""
        self._head_size += size
        if self._head_size > MAX_HEAD:
            self._problem = _TOO_BIG
            raise _Enough

    def _answer(self, complete: bool) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        status = self._parser.get_status_code()
        phrase = self._reason.decode("utf-8", "replace")
        body = bytes(self._body)
        waiter.set_result(Answer(status, phrase, self._headers, body, complete))

    def _fail(self, message: str) -> None:
        waiter = self._waiter
        self.abort()
        if waiter is not None and not waiter.done():
            waiter.set_exception(TransportError("connection", message))


class Unanswered(TransportError):
    """The connection closed before a byte of the answer came (the request may not have been
    read at all)."""


class _Enough(Exception):
    """Raised in a callback to stop the parser once enough of a body was read."""


def reason(exc: BaseException) -> str:
    """What went wrong, in a few words: never empty (a bare `ConnectionResetError()` is)."""
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__

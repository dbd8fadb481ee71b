"""`Pool`: at most `limit` kept-alive connections to one origin, and the errors of connecting."""

from __future__ import annotations

import asyncio
import collections
import socket
import ssl
from collections.abc import Callable, Iterable
from typing import NamedTuple

from .connection import Answer, Connection, TransportError, Unanswered, reason


class Origin(NamedTuple):
    """Where the requests go: `host` as it is connected to, `authority` as the Host header says."""

    https: bool
    host: str
    port: int
    authority: str


class Pool:
    """At most `limit` connections to one origin; a request takes an idle one or opens one."""

    def __init__(
        self,
        origin: Origin,
        *,
        limit: int,
        connect_timeout: float,
        header_lines: bytes,
        body_limit: int,
        kept_headers: Iterable[str] = (),
    ) -> None:
        """`header_lines` go out with every request (each `Name: value\\r\\n`, Host among them);
        of each answer, the headers named in `kept_headers` are kept, and `body_limit` bytes."""
        self.origin = origin
        self._limit = max(1, limit)
        self._connect_timeout = connect_timeout
        self._lines = header_lines
        self._body_limit = body_limit
        self._kept = frozenset(name.lower().encode("latin-1") for name in kept_headers)
        self._idle: list[Connection] = []
        self._open: set[Connection] = set()
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._ssl: ssl.SSLContext | None = None
        self._closed = False

    async def request(
        self,
        method: bytes,
        target: bytes,
        body: bytes | None,
        on_sent: Callable[[], None] | None = None,
    ) -> Answer:
        """One exchange; `on_sent` is called as the request is written. Raises `TransportError`
        when no whole answer came (a timeout is the caller's: it cancels)."""
        head = method + b" " + target + b" HTTP/1.1\r\n" + self._lines
        if body is not None:
            head += b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        else:
            head += b"\r\n"
        connection, reused = await self._take()
        while True:
            try:
                answer = await connection.exchange(head, on_sent)
                break
            except Unanswered:
                self._drop(connection)
                if not (reused and method == b"GET"):
                    raise
                # A kept-alive connection the server closed as the request went: sent again,
                # once, on a new one, as aiohttp does for a GET (a PATCH is retried by the
                # engine's rules).
                connection, reused = await self._take(fresh=True)
            except BaseException:
                self._drop(connection)
                raise
        if connection.reusable and not self._closed:
            self._idle.append(connection)
            self._wake()
        else:
            self._drop(connection)
        return answer

    async def close(self) -> None:
        self._closed = True
        for connection in list(self._open):
            connection.abort()
        self._open.clear()
        self._idle.clear()
        while self._waiters:  # they find the pool closed
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    async def _take(self, *, fresh: bool = False) -> tuple[Connection, bool]:
        """A connection, and whether it served an answer before. After `close()` (a bug in the
        caller, not a fault of the server) this raises RuntimeError."""
        while True:
            if self._closed:
                raise RuntimeError("the client is closed")
            idle = self._idle
            while idle and not fresh:
                connection = idle.pop()
                if connection.usable:
                    return connection, True
                self._forget(connection)
            # A fresh one is asked for only just after a failed one left: there is room.
            if len(self._open) < self._limit:
                return await self._connect(), False
            fresh = False  # (never the case; but a wait must not end up skipping idle ones)
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                elif waiter.done() and not waiter.cancelled():
                    self._wake()  # woken, but leaving: the place goes to the next in line
                raise

    def _drop(self, connection: Connection) -> None:
        connection.abort()
        self._forget(connection)

    def _forget(self, connection: Connection) -> None:
        self._open.discard(connection)
        self._wake()

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def _connect(self) -> Connection:
        origin = self.origin
        loop = asyncio.get_running_loop()
        connection = Connection(self._body_limit, self._kept)
        self._open.add(connection)
        try:
            async with asyncio.timeout(self._connect_timeout):
                if origin.https:
                    await loop.create_connection(
                        lambda: connection,
                        origin.host,
                        origin.port,
                        ssl=self._ssl_context(),
                        server_hostname=origin.host,
                    )
                else:
                    await loop.create_connection(lambda: connection, origin.host, origin.port)
        except BaseException as exc:
            self._drop(connection)
            if isinstance(exc, Exception):
                raise _connect_error(origin, exc) from exc
            raise
        return connection

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl


def _connect_error(origin: Origin, exc: Exception) -> TransportError:
    where = f"{origin.host}:{origin.port}"
    if isinstance(exc, TimeoutError):
        return TransportError("timeout", f"no connection to {where} within the timeout")
    if isinstance(exc, socket.gaierror):
        return TransportError(
            "dns",
            f"the host {origin.host} is not known (its name does not resolve); check --base-url",
        )
    if isinstance(exc, ssl.SSLError):
        return TransportError(
            "connection", f"TLS with {where} failed ({exc.reason or reason(exc)})"
        )
    return TransportError("connection", f"cannot connect to {where} ({reason(exc)})")

"""Proxies of the tests' own on a free loopback port, for the client's proxy tests.

- `TinyProxy`: a real proxy. `make test` installs tinyproxy from Debian's packages when it is
  missing (`tools/ensure-tinyproxy`); without it these tests fail, they never skip.
- `ScriptedProxy`: an asyncio proxy in the test's own loop, for what tinyproxy cannot show or
  do: it records the head of each request it receives (a `CONNECT` included), and answers as
  the test says (an echo of the request in a 407, a close, a silence, a tunnel that stalls).

Tests import them from here (`from tests.proxy_server import ScriptedProxy, TinyProxy`).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Final, Literal

import pytest
import trustme

from tests.servers import ServerProcess

#: Every variable that names a proxy or the hosts reached around it.
PROXY_VARIABLES: Final = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


def no_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No proxy variable at all (the suite names loopback in `NO_PROXY`); the test sets its own."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


def trusted_tls(monkeypatch: pytest.MonkeyPatch, folder: Path) -> ssl.SSLContext:
    """A TLS server's context for `localhost`, its authority trusted through `SSL_CERT_FILE`."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(folder / "ca.pem"))
    return context


class TinyProxy(ServerProcess):
    """`with TinyProxy(tmp_path) as proxy:` starts tinyproxy with a config file of its own in
    `folder` and stops it; `login=("user", "password")` makes it ask for one (407 without it,
    401 to a wrong one).

    `url` is its address (`http://127.0.0.1:PORT`); `requests` the request lines it logged
    (`GET http://127.0.0.1:1234/v1/leads/a HTTP/1.1`, `CONNECT localhost:1234 HTTP/1.1`).
    """

    PROGRAM = "tinyproxy"
    INSTALLER = "tools/ensure-tinyproxy"
    READY = "Accepting connections"

    def __init__(
        self,
        folder: Path,
        login: tuple[str, str] | None = None,
        connect_ports: tuple[int, ...] = (),
    ) -> None:
        """`connect_ports`: the only ports `CONNECT` may reach (403 for others); all without."""
        super().__init__()
        self._folder = folder
        self.login = login
        self.connect_ports = connect_ports

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[str]:
        return [line.split("): ", 1)[1].strip() for line in self.log if "]: Request (" in line]

    def argv(self, binary: str) -> list[str]:
        config = self._folder / f"tinyproxy-{self.port}.conf"
        lines = [f"Port {self.port}", "Listen 127.0.0.1", "Allow 127.0.0.1", "Timeout 30",
                 "LogLevel Info", "MaxClients 100", "DisableViaHeader Yes"]  # fmt: skip
        lines += [f"ConnectPort {port}" for port in self.connect_ports]
        if self.login is not None:
            lines.append(f"BasicAuth {self.login[0]} {self.login[1]}")
        config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return [binary, "-d", "-c", str(config)]

    def folder(self) -> Path:
        return self._folder


#: What a `ScriptedProxy` does with a request: bytes to send back (then it closes), or
#: "tunnel" (answer a `CONNECT` 200 and carry bytes both ways), "close" (close without a word),
#: "reset" (drop the connection: a TCP reset),
#: "silent" (never answer), "stall" (answer a `CONNECT` 200, then never carry a byte),
#: "hang_up" and "drop" (answer a `CONNECT` 200, then close or reset the connection as the
#: client's TLS handshake arrives: an upstream gone mid-handshake).
Action = bytes | Literal["tunnel", "close", "reset", "silent", "stall", "hang_up", "drop"]
ESTABLISHED: Final = b"HTTP/1.1 200 Connection established\r\n\r\n"


class ScriptedProxy:
    """`async with ScriptedProxy(script) as proxy:` an asyncio proxy on 127.0.0.1; `script(head)`
    says what to do with each request (`Action`), given its head (request line and headers, as
    received). `heads` holds every head received; `url` is `http://127.0.0.1:PORT`."""

    def __init__(self, script: Callable[[bytes], Action]) -> None:
        self.script = script
        self.heads: list[bytes] = []
        self._server: asyncio.Server | None = None
        self._stop = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> ScriptedProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port: int = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        self._stop.set()
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.heads.append(head)
            action = self.script(head)
            if action == "tunnel":
                await self._tunnel(head, reader, writer)
            elif action in ("silent", "stall"):
                if action == "stall":
                    writer.write(ESTABLISHED)
                await self._stop.wait()
            elif action in ("hang_up", "drop"):
                writer.write(ESTABLISHED)
                await reader.read(1)  # the first byte of the client's TLS handshake
                if action == "drop":
                    _reset_on_close(writer)
            elif action == "reset":
                _reset_on_close(writer)
            elif isinstance(action, bytes):
                writer.write(action)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _tunnel(
        self, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        target = head.split(b" ", 2)[1].decode()
        host, _, port = target.rpartition(":")
        up_reader, up_writer = await asyncio.open_connection(host.strip("[]"), int(port))
        writer.write(ESTABLISHED)
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            up_writer.close()


def _reset_on_close(writer: asyncio.StreamWriter) -> None:
    """No linger: closing sends a reset, not a FIN."""
    socket_ = writer.get_extra_info("socket")
    socket_.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    writer.close()

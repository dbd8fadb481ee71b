"""A tinyproxy of the tests' own on a free loopback port, for the client's proxy tests.

`make test` installs tinyproxy from Debian's packages when it is missing
(`tools/ensure-tinyproxy`); without it these tests fail, they never skip. Tests import it from
here (`from tests.proxy_server import TinyProxy`).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
from pathlib import Path
from types import TracebackType

import pytest


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class TinyProxy:
    """`with TinyProxy(tmp_path) as proxy:` starts tinyproxy with a config file of its own in
    `folder` and stops it; `login=("user", "password")` makes it ask for one (407 without it,
    401 to a wrong one).

    `url` is its address (`http://127.0.0.1:PORT`); `requests` the request lines it logged
    (`GET http://127.0.0.1:1234/v1/leads/a HTTP/1.1`, `CONNECT localhost:1234 HTTP/1.1`).
    """

    READY_TIMEOUT = 20.0

    def __init__(
        self,
        folder: Path,
        login: tuple[str, str] | None = None,
        connect_ports: tuple[int, ...] = (),
    ) -> None:
        """`connect_ports`: the only ports `CONNECT` may reach (403 for others); all without."""
        self.folder = folder
        self.login = login
        self.connect_ports = connect_ports
        self.port = 0
        self.log: list[str] = []
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[str]:
        return [line.split("): ", 1)[1].strip() for line in self.log if "]: Request (" in line]

    def start(self) -> None:
        binary = shutil.which("tinyproxy") or "/usr/bin/tinyproxy"
        if not Path(binary).exists():
            pytest.fail("tinyproxy is missing: run tools/ensure-tinyproxy (make test does)")
        for _ in range(5):  # a free port may be taken by someone else before tinyproxy binds it
            self.port = free_port()
            if self._launch(binary):
                return
        pytest.fail("tinyproxy did not start:\n" + "".join(self.log[-20:]))

    def _launch(self, binary: str) -> bool:
        config = self.folder / f"tinyproxy-{self.port}.conf"
        lines = [f"Port {self.port}", "Listen 127.0.0.1", "Allow 127.0.0.1", "Timeout 30",
                 "LogLevel Info", "MaxClients 100", "DisableViaHeader Yes"]  # fmt: skip
        lines += [f"ConnectPort {port}" for port in self.connect_ports]
        if self.login is not None:
            lines.append(f"BasicAuth {self.login[0]} {self.login[1]}")
        config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        proc = subprocess.Popen(
            [binary, "-d", "-c", str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=self.folder,
        )
        ready = threading.Event()
        # Its log says when it accepts connections (an event, not a timer); the thread keeps
        # draining it so that tinyproxy never blocks on a full pipe.
        reader = threading.Thread(target=self._drain, args=(proc, ready), daemon=True)
        reader.start()
        self._proc, self._reader = proc, reader
        if ready.wait(self.READY_TIMEOUT) and proc.poll() is None:
            return True
        self.stop()
        return False

    def _drain(self, proc: subprocess.Popen[str], ready: threading.Event) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.log.append(line)
            if "Accepting connections" in line:
                ready.set()
        ready.set()  # it exited: start() looks at why

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()
            proc.wait(10)
            if self._reader is not None:
                self._reader.join(10)
            assert proc.stdout is not None
            proc.stdout.close()

    def __enter__(self) -> TinyProxy:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

"""Server programs the tests start themselves on a free loopback port (`redis-server`,
`tinyproxy`): the one way to start, wait for and stop them. Each one's own module says what
program it runs and how (`tests/redis_server.py`, `tests/proxy_server.py`).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType
from typing import Self

import pytest


def free_port() -> int:
    """A loopback port nobody listens on now (someone may take it before the test does)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class ServerProcess(ABC):
    """A server program on `127.0.0.1:port`, ready once its log says so.

    `with Server(...) as server:` starts it and stops it; `stop()` in between kills it and
    `start()` brings it back on the same port. `log` holds every line it logged.
    """

    READY_TIMEOUT = 20.0
    #: The program, looked up on PATH, then in /usr/bin.
    PROGRAM: str
    #: What installs it when it is missing (`make test` runs it).
    INSTALLER: str
    #: The log line that says it accepts connections.
    READY: str

    def __init__(self) -> None:
        self.port = 0
        self.log: list[str] = []
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    @abstractmethod
    def argv(self, binary: str) -> list[str]:
        """The command that runs it on `self.port`, logging to its standard output."""

    @abstractmethod
    def folder(self) -> Path:
        """Where it runs (where it may write)."""

    def start(self) -> None:
        binary = shutil.which(self.PROGRAM) or f"/usr/bin/{self.PROGRAM}"
        if not Path(binary).exists():
            pytest.fail(f"{self.PROGRAM} is missing: run {self.INSTALLER} (make test does)")
        for _ in range(5):  # a free port may be taken by someone else before the server binds it
            self.port = self.port or free_port()
            if self._launch(binary):
                return
            self.port = 0
        pytest.fail(f"{self.PROGRAM} did not start:\n" + "".join(self.log[-20:]))

    def _launch(self, binary: str) -> bool:
        proc = subprocess.Popen(
            self.argv(binary),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=self.folder(),
        )
        ready = threading.Event()
        # Reading its log is how to know it is ready (an event, not a timer); the thread keeps
        # draining it so that the server never blocks on a full pipe.
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
            if self.READY in line:
                ready.set()
        ready.set()  # it exited: start() looks at why

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()
            proc.wait(10)
            if self._reader is not None:
                self._reader.join(10)  # it reads to the end of the pipe, then the pipe can close
            assert proc.stdout is not None
            proc.stdout.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

"""The endpoints the clients are measured against, each a child process on a free loopback port.

- `FastServer`: `bench/fast_server.py`, a minimal asyncio endpoint that also counts and checks
  (same requests by checksum, same headers) and can play a strict rate limit.
- `Nginx`: the system's nginx, started by us with a config of our own in a temp dir; faster than
  any Python server, but all it can count is requests and connections (`stub_status`).

Both are context managers that stop their process on exit, whatever happens.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import select
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from harness import BENCH, PY, ROOT, BenchError, cpu_seconds, stop, track

NGINX_BODY: Final = '{"success":true,"data":{"_id":"x"}}'
_STATUS_PATH: Final = "/bench-nginx-status"


class FastServer:
    """bench/fast_server.py in its own process on a free port."""

    name = "fast_server"

    def __init__(self, *args: str) -> None:
        self.args = args
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0

    def __enter__(self) -> FastServer:
        self.proc = track(
            subprocess.Popen(
                [PY, str(BENCH / "fast_server.py"), "--port", "0", *self.args],
                stdout=subprocess.PIPE,
                text=True,
                cwd=ROOT,
            )
        )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 15)
        line = self.proc.stdout.readline() if ready else ""
        if not line.startswith("listening "):
            stop(self.proc)
            raise BenchError(f"fast_server did not start (said {line.strip()!r})")
        self.port = int(line.split()[2])
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            stop(self.proc)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _call(self, method: str, path: str) -> dict[str, Any]:
        if self.proc is None or self.proc.poll() is not None:
            raise BenchError("fast_server died")
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path)
            data: dict[str, Any] = json.loads(conn.getresponse().read())
        finally:
            conn.close()
        return data

    def stats(self) -> dict[str, Any]:
        stats = self._call("GET", "/stats")
        stats["connections"] -= 1  # the one this call came on
        return stats

    def reset(self) -> None:
        self._call("POST", "/reset")

    def cpu(self) -> float:
        assert self.proc is not None
        return cpu_seconds(self.proc.pid)


# --- nginx ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class NginxInstall:
    """An nginx binary found on this machine, and where it came from."""

    binary: str
    version: str  # "nginx/1.22.1"
    origin: str  # "Debian package nginx 1.22.1-9+deb12u9", or why that is unknown
    stub_status: bool  # built with the module that counts requests and connections

    def describe(self) -> str:
        return f"{self.version} at {self.binary}, {self.origin}"


def find_nginx() -> NginxInstall | str:
    """The nginx on PATH or in /usr/sbin; when there is none, a sentence saying so."""
    binary = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if binary is None:
        return "nginx is not installed (tools/ensure-nginx installs it)"
    built = subprocess.run([binary, "-V"], capture_output=True, text=True, check=False).stderr
    found = re.search(r"nginx version: (\S+)", built)
    return NginxInstall(
        binary=binary,
        version=found.group(1) if found else "version unknown",
        origin=_origin(Path(binary).resolve()),
        stub_status="http_stub_status_module" in built,
    )


def _origin(binary: Path) -> str:
    if shutil.which("dpkg-query") is None:
        return "not from a dpkg package (no dpkg here)"
    owner = subprocess.run(
        ["dpkg-query", "-S", str(binary)], capture_output=True, text=True, check=False
    )
    if owner.returncode != 0:
        return "not from a dpkg package (installed by hand)"
    package = owner.stdout.split(":", 1)[0].strip()
    shown = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True, check=False
    )
    return f"Debian package {package} {shown.stdout.strip()}"


def nginx_conf(port: int, workers: int, *, stub_status: bool) -> str:
    """All paths are relative to the prefix (`-p DIR`): nothing outside the temp dir is touched."""
    status = f"        location = {_STATUS_PATH} {{ stub_status; }}\n" if stub_status else ""
    return (
        f"worker_processes {workers};\n"
        "error_log error.log warn;\n"
        "pid nginx.pid;\n"
        "events { worker_connections 4096; }\n"
        "http {\n"
        "    access_log off;\n"
        "    server_tokens off;\n"
        "    client_body_temp_path temp/body;\n"
        "    proxy_temp_path temp/proxy;\n"
        "    fastcgi_temp_path temp/fastcgi;\n"
        "    uwsgi_temp_path temp/uwsgi;\n"
        "    scgi_temp_path temp/scgi;\n"
        # One connection per client task for the whole run, as with fast_server.
        "    keepalive_requests 10000000;\n"
        "    keepalive_timeout 300s;\n"
        "    server {\n"
        f"        listen 127.0.0.1:{port} backlog=1024;\n"
        "        default_type application/json;\n"
        # `return` reads and discards the request body, whatever the method; checked on start.
        f"        location /v1/leads/ {{ return 200 '{NGINX_BODY}'; }}\n"
        f"{status}"
        '        location / { return 404 \'{"error":"no route"}\'; }\n'
        "    }\n"
        "}\n"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_listening(proc: subprocess.Popen[Any], port: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return True
        time.sleep(0.02)
    return False


class Nginx:
    """Our own nginx (`-p DIR -c DIR/nginx.conf -g 'daemon off;'`) on a free loopback port.

    `worker_processes 1` by default, one process as fast_server is: one core for the server, the
    other for the client. Measured on 2 cores: at the engine's full speed one worker is 5% busy,
    so a second one cannot serve faster; it only adds a process that competes with the client
    (engine/bare 1.00 with one worker, 0.85 and noisier with two, same machine, same hour).
    """

    name = "nginx"

    def __init__(self, install: NginxInstall, tmp: Path, workers: int = 1) -> None:
        self.install = install
        self.tmp = tmp
        self.workers = workers
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.prefix = tmp
        self._base = (0, 0)

    def __enter__(self) -> Nginx:
        for _ in range(3):  # the port is free when picked; someone may take it before nginx binds
            if self._start(_free_port()):
                self.self_check()
                return self
        raise BenchError(f"nginx did not start: {self._errors()}")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            stop(self.proc)  # SIGTERM to the master: a fast shutdown, the workers go with it

    def _start(self, port: int) -> bool:
        prefix = self.tmp / f"nginx-{port}"
        (prefix / "temp").mkdir(parents=True)
        conf = prefix / "nginx.conf"
        conf.write_text(nginx_conf(port, self.workers, stub_status=self.install.stub_status))
        with open(prefix / "stderr.log", "wb") as err:
            argv = [self.install.binary, "-p", f"{prefix}/", "-c", str(conf), "-g", "daemon off;"]
            self.proc = track(subprocess.Popen(argv, stdout=err, stderr=err, cwd=prefix))
        self.prefix, self.port = prefix, port
        if _wait_listening(self.proc, port):
            return True
        stop(self.proc)
        if "Address already in use" in self._errors():
            return False
        raise BenchError(f"nginx did not start: {self._errors()}")

    def _errors(self) -> str:
        logs = [self.prefix / name for name in ("stderr.log", "error.log")]
        text = " ".join(p.read_text(errors="replace") for p in logs if p.exists())
        return " ".join(text.split())[-500:] or "no error logged"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def self_check(self) -> None:
        """Two PATCHes with bodies, pipelined on one connection, must get two 200s on it.

        Had nginx not read the first body, its bytes would be parsed as the next request.
        """
        body = b'{"firstName":"Name1","tags":["vip"],"customFields":{"revenue":"1"}}'
        request = (
            b"PATCH /v1/leads/abc HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json"
            + f"\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            sock.sendall(request * 2)
            answers = _read_answers(sock, 2)
        expected = (b"200", b"application/json", NGINX_BODY.encode(), False)
        if answers != [expected, expected]:
            raise BenchError(f"nginx answered {answers}, expected {expected} twice, kept alive")
        self.reset()
        stats = self.stats()
        if stats is not None and (stats["ok"], stats["connections"]) != (0, 0):
            raise BenchError(f"nginx status counts are off: {stats}")

    def _status(self) -> tuple[int, int]:
        """(connections accepted, requests) since start, the status request included."""
        if self.proc is None or self.proc.poll() is not None:
            raise BenchError(f"nginx died: {self._errors()}")
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", _STATUS_PATH)
            text = conn.getresponse().read().decode()
        finally:
            conn.close()
        accepts, _handled, requests = (int(n) for n in text.splitlines()[2].split())
        return accepts, requests

    def reset(self) -> None:
        if self.install.stub_status:
            self._base = self._status()

    def stats(self) -> dict[str, Any] | None:
        if not self.install.stub_status:
            return None
        accepts, requests = self._status()
        # Each status request opens a connection and is a request: the last one is not the run's.
        return {"ok": requests - self._base[1] - 1, "connections": accepts - self._base[0] - 1}

    def cpu(self) -> float:
        assert self.proc is not None
        return cpu_seconds(self.proc.pid, with_children=True)


def _read_answers(sock: socket.socket, count: int) -> list[tuple[bytes, bytes, bytes, bool]]:
    """(status, content type, body, closes) of the next `count` answers on `sock`."""
    data = b""
    answers: list[tuple[bytes, bytes, bytes, bool]] = []
    while len(answers) < count:
        end = data.find(b"\r\n\r\n")
        head = data[:end].lower() if end >= 0 else b""
        found = re.search(rb"\r\ncontent-length: *(\d+)", head)
        if found and len(data) >= end + 4 + int(found.group(1)):
            body_end = end + 4 + int(found.group(1))
            kind = re.search(rb"\r\ncontent-type: *([^\r;]+)", head)
            answers.append(
                (
                    head.split(b" ", 2)[1],
                    kind.group(1) if kind else b"",
                    data[end + 4 : body_end],
                    b"\r\nconnection: close" in head,
                )
            )
            data = data[body_end:]
            continue
        chunk = sock.recv(65536)
        if not chunk:
            raise BenchError(f"nginx closed the connection after {len(answers)} answers")
        data += chunk
    return answers

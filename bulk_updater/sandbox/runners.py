"""Three ways to run the sandbox: in the caller's event loop, in a thread, in the foreground.

- `Sandbox`: `async with` in the test's own loop. Cheapest, and the test can touch `state` freely.
- `SandboxThread`: `with` in a thread with its own loop, for synchronous tests and for tests that
  run the CLI in a subprocess. `wait_until` blocks on the state's notifications, never on a timer.
- `serve`: the `bulk-updater sandbox` command, until SIGINT or SIGTERM.

Each starts with `start_app`, which serves any `aiohttp.web` app on a port (the tests' own
answering servers use it too).

`set_rate` changes the limit while the sandbox serves, so a test can play an API whose limit drops
in the middle of a job and comes back.
"""

from __future__ import annotations

import asyncio
import signal
import ssl
import threading
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, TypedDict, Unpack

from aiohttp import web

from ..words import counted
from .app import HANDLER, SandboxOptions, create_app
from .faults import FaultPlan
from .leads import copy_leads, load_leads
from .ratelimit import HeaderStyle, Shape, retry_after_mode
from .recorded import SandboxState

__all__ = ["Sandbox", "SandboxThread", "serve", "start_app"]


class LimitShape(TypedDict, total=False):
    """The shape of the limit `serve` enforces (`create_app`'s options of the same names)."""

    shape: Shape
    halve_after: float | None
    restore_after: float | None


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def start_app(
    app: web.Application,
    host: str,
    port: int,
    *,
    shutdown_timeout: float = 1.0,
    tls: ssl.SSLContext | None = None,
) -> web.AppRunner:
    """`app` served on `host`:`port` (0: a free port, `runner.addresses[0][1]`), over `tls` if
    given, until the runner's `cleanup()`; a port that cannot be had leaves nothing running.

    `shutdown_timeout`: how long requests in flight may take to finish at the cleanup.
    """
    runner = web.AppRunner(
        app, access_log=None, handle_signals=False, shutdown_timeout=shutdown_timeout
    )
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, ssl_context=tls).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner


class Sandbox:
    """The sandbox served in the current event loop; `async with` starts and stops it.

    `port=0` picks a free port; `url` says which, once started. The leads are copied, so the
    caller's objects never change. `options` are those of `create_app`.
    """

    def __init__(
        self,
        leads: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        **options: Unpack[SandboxOptions],
    ) -> None:
        self.state = SandboxState(leads=copy_leads(leads))
        # Build the app now so that bad options fail at construction, not at start.
        self._app = create_app(self.state, **options)
        self._handler = self._app[HANDLER]
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. `http://127.0.0.1:41234`."""
        if self._url is None:
            raise RuntimeError("the sandbox is not running; use 'async with Sandbox(...)'")
        return self._url

    def set_rate(self, rate: float, *, burst: int | None = None) -> None:
        """Change the rate limit from now on (`burst` unchanged unless given); call in its loop.

        Requests already counted in the last second stay counted, so a lower limit bites at once.
        """
        limit = self._handler.limit
        limit.set(rate, limit.burst if burst is None else burst)

    async def __aenter__(self) -> Sandbox:
        if self._runner is not None:
            raise RuntimeError("the sandbox is already running")
        # In-flight handlers (a slow fault, the latency) get this long to finish at the stop.
        wait = self._handler.longest_answer() + 1.0
        runner = self._runner = await start_app(
            self._app, self._host, self._port, shutdown_timeout=wait
        )
        self._url = _url(self._host, runner.addresses[0][1])
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        runner, self._runner, self._url = self._runner, None, None
        if runner is not None:
            await runner.cleanup()


class SandboxThread:
    """The sandbox served by a background thread with its own event loop; `with` starts it.

    For synchronous tests and for tests that run the CLI in a subprocess. Takes the arguments of
    `Sandbox`.
    """

    def __init__(
        self,
        leads: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        **options: Unpack[SandboxOptions],
    ) -> None:
        self._sandbox = Sandbox(leads, port=port, host=host, **options)
        self.state = self._sandbox.state
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. `http://127.0.0.1:41234`."""
        if self._url is None:
            raise RuntimeError("the sandbox is not running; use 'with SandboxThread(...)'")
        return self._url

    def wait_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Block until `condition()` holds, re-checked at every notification; False on timeout."""
        with self.state.changed:
            return self.state.changed.wait_for(condition, timeout)

    def set_rate(self, rate: float, *, burst: int | None = None) -> None:
        """`Sandbox.set_rate` from any thread; the new limit holds for every later request."""
        loop = self._loop
        if self._url is None or loop is None:  # not serving: no other thread touches the limit
            self._sandbox.set_rate(rate, burst=burst)
            return
        # Run in the loop's thread, between two requests; a bad value raises here, in the caller's.
        asyncio.run_coroutine_threadsafe(self._set_rate(rate, burst), loop).result()

    async def _set_rate(self, rate: float, burst: int | None) -> None:
        self._sandbox.set_rate(rate, burst=burst)

    def __enter__(self) -> SandboxThread:
        if self._thread is not None:
            raise RuntimeError("the sandbox thread was already started")
        self._thread = threading.Thread(target=self._run, name="bulk-updater-sandbox", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            self._thread.join()
            raise self._error
        self._url = self._sandbox.url
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._thread is None:
            return
        self._url = None
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported in the caller's thread, not lost in this one
            self._error = exc
        finally:
            self._started.set()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        async with self._sandbox:
            self._loop = asyncio.get_running_loop()
            self._started.set()
            await self._stop.wait()


def serve(
    *,
    port: int,
    leads_file: str | None,
    api_key: str,
    rate: float,
    burst: int,
    retry_after: str,
    faults: FaultPlan,
    host: str = "127.0.0.1",
    headers: HeaderStyle | None = None,
    latency_ms: float = 0.0,
    seed: int | None = None,
    on_start: Callable[[Sandbox], None] | None = None,
    **limit: Unpack[LimitShape],
) -> None:
    """Serve the sandbox in the foreground until SIGINT or SIGTERM, then return.

    Prints one line, `sandbox: serving N leads at URL`, to stdout first: tools parse it.
    `on_start` then runs once, while the sandbox listens, to say more.
    """
    leads = load_leads(leads_file) if leads_file is not None else {}
    sandbox = Sandbox(
        leads,
        port=port,
        host=host,
        api_key=api_key,
        rate=rate,
        burst=burst,
        retry_after=retry_after_mode(retry_after),
        faults=faults,
        headers=headers,
        latency_ms=latency_ms,
        seed=seed,
        **limit,
    )
    asyncio.run(_serve(sandbox, on_start))


async def _serve(sandbox: Sandbox, on_start: Callable[[Sandbox], None] | None) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    handled = (signal.SIGINT, signal.SIGTERM)  # POSIX only, like the rest of the package (flock)
    for signum in handled:
        loop.add_signal_handler(signum, stop.set)
    try:
        async with sandbox:
            serving = counted(len(sandbox.state.leads), "lead")
            print(f"sandbox: serving {serving} at {sandbox.url}", flush=True)
            if on_start is not None:
                on_start(sandbox)
            await stop.wait()
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)

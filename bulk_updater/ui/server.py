"""`UiServer`: the page's server on 127.0.0.1, its private folder, and the sandbox it may start.

`async with UiServer(...) as server:` listens on a free port (or `port`), `server.url` is the
address to open, with the one-time token (`guard.py`); `server.browser_file()` is a private page
that leads there, for the browser's command line. Leaving the block stops a running job
gracefully (its report stays complete), stops the sandbox, and removes the private folder.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from types import TracebackType

from aiohttp import web
from pydantic import SecretStr

from ..sandbox import DEFAULT_SANDBOX_KEY, Sandbox, load_leads
from ..state.paths import state_dir
from .guard import TOKEN_PARAM, Guard, opener
from .kept import KeptJob
from .mapping import Remembered
from .routes import BASE_URL, SANDBOX, SESSION, add_routes
from .running import Connection
from .session import Session
from .workspace import Workspace

HOST = "127.0.0.1"
#: The longest header read: a browser that kept many runs' cookies still reaches the guard,
#: which expires them (aiohttp's default of 8190 bytes answers 400 before it).
MAX_FIELD = 64 * 1024


class UiServer:
    """The local page's server. `connection` is where rows go (None: the page asks for a key, sent
    to `base_url`); `sandbox_leads` are the leads "try it on the local sandbox" serves;
    `remembered` keeps the mappings, `jobs` the folder of a job left unfinished (both under the
    user's state folder by default)."""

    def __init__(
        self,
        *,
        connection: Connection | None,
        base_url: str,
        sandbox_leads: Path | None = None,
        port: int = 0,
        remembered: Remembered | None = None,
        jobs: Path | None = None,
    ) -> None:
        self._connection = connection
        self._base_url = base_url
        self._sandbox_leads = sandbox_leads
        self.requested_port = port
        self._remembered = remembered or Remembered()
        self._jobs = jobs or state_dir() / "ui-job"
        self.guard = Guard()
        self.workspace: Workspace | None = None
        self.session: Session | None = None
        self.port: int | None = None
        self._runner: web.AppRunner | None = None
        self._sandbox: Sandbox | None = None
        self._stack = contextlib.AsyncExitStack()
        self._sandboxes = contextlib.AsyncExitStack()

    @property
    def url(self) -> str:
        """The address to open once: it carries the token."""
        return f"http://{HOST}:{self.port}/?{TOKEN_PARAM}={self.guard.token}"

    def browser_file(self) -> Path:
        """A 0600 page in the private folder that sends the browser on to `url`: what to give
        the browser, so that the token is never in its command line (`ps` shows it to all)."""
        if self.workspace is None:
            raise RuntimeError("the server is not started")
        return self.workspace.write_private("open.html", opener(self.url))

    async def __aenter__(self) -> UiServer:
        # Closed in reverse: the folder last, the sandbox once the job is stopped, the job first.
        kept = KeptJob(self._jobs)
        kept.lock()
        self._stack.callback(kept.unlock)
        self.workspace = self._stack.enter_context(contextlib.closing(Workspace()))
        self._stack.push_async_callback(self._sandboxes.aclose)
        self.session = Session(self.workspace, self._connection, self._remembered, kept)
        app = web.Application(middlewares=[self.guard.middleware])
        app[SESSION] = self.session
        app[BASE_URL] = self._base_url
        app[SANDBOX] = self._start_sandbox
        add_routes(app)
        runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=5,
            max_field_size=MAX_FIELD,
        )
        await runner.setup()
        self._stack.push_async_callback(runner.cleanup)
        self._stack.push_async_callback(self.session.close)  # before the streams are cut
        try:
            site = web.TCPSite(runner, HOST, self.requested_port)
            await site.start()
        except BaseException:
            await self._stack.aclose()
            raise
        self.port = self.guard.port = runner.addresses[0][1]
        return self

    async def _start_sandbox(self) -> Connection:
        """The bundled sandbox with the sample leads, started once, stopped with the server."""
        if self._sandbox is None:
            leads = load_leads(self._sandbox_leads) if self._sandbox_leads is not None else {}
            sandbox = Sandbox(leads, api_key=DEFAULT_SANDBOX_KEY)
            await self._sandboxes.enter_async_context(sandbox)
            self._sandbox = sandbox
        return Connection(SecretStr(DEFAULT_SANDBOX_KEY), self._sandbox.url, sandbox=True)

    @property
    def sandbox(self) -> Sandbox | None:
        return self._sandbox

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.aclose()

"""The page's routes: its files, its state and event stream, and one POST per action.

Every answer to an action is the new state (or `{"error": ...}` with status 400, or 409 for a
start while a job starts or runs), so the page never guesses. Downloads name what they want
(`report`, `rejects`), never a path: the file is always the current job's own, or an earlier
job's, named by its number (`history.py`).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import Any, Final

from aiohttp import ClientPayloadError, web
from pydantic import SecretStr

from ..errors import BulkUpdaterError
from .detect import ReadOptions
from .resend import read_rejects, write_chosen
from .running import Connection
from .session import JobBusy, Session
from .wording import page_words

SESSION: Final = web.AppKey("session", Session)
StartSandbox = Callable[[], Awaitable[Connection]]
SANDBOX: Final = web.AppKey[StartSandbox]("sandbox")
BASE_URL: Final = web.AppKey("base_url", str)
#: The page's own files: nothing else is served from the package.
_STATIC: Final = {
    "app.js": "text/javascript",
    "done.js": "text/javascript",
    "app.css": "text/css",
    "favicon.svg": "image/svg+xml",
}
#: The shortest time between two pushes of the state while a job runs (the page needs no more).
_PUSH_EVERY: Final = 0.2
_CHUNK: Final = 1 << 20
#: A row's number: no row of a file has more than 18 digits, and `int()` takes them all.
_ROW: Final = re.compile(r"[0-9]{1,18}")

Action = Callable[[Session, dict[str, Any]], Awaitable[None] | None]


def _page_file(name: str) -> bytes:
    return resources.files(__package__).joinpath("static", name).read_bytes()


async def index(request: web.Request) -> web.Response:
    return web.Response(body=_page_file("index.html"), content_type="text/html", charset="utf-8")


async def static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in _STATIC:
        raise web.HTTPNotFound()
    return web.Response(body=_page_file(name), content_type=_STATIC[name], charset="utf-8")


async def favicon(request: web.Request) -> web.Response:
    return web.Response(body=_page_file("favicon.svg"), content_type="image/svg+xml")


def _state(session: Session) -> web.Response:
    return web.json_response(session.snapshot(), headers={"Cache-Control": "no-store"})


async def page_state(request: web.Request) -> web.Response:
    return _state(request.app[SESSION])


async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: the whole state, each time it changes (at most every 0.2 s)."""
    session = request.app[SESSION]
    stream = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
    )
    await stream.prepare(request)
    session.streams += 1
    try:
        while True:
            version = session.version
            data = json.dumps(session.snapshot(), ensure_ascii=False)
            try:
                await stream.write(f"data: {data}\n\n".encode())
            except ConnectionResetError:  # the page was closed or reloaded: nobody to tell
                return stream
            if not await session.wait_change(version):
                return stream
            await asyncio.sleep(_PUSH_EVERY)
    finally:
        session.streams -= 1
        session.changed()


async def upload(request: web.Request) -> web.Response:
    """The file, streamed to the private folder as it arrives; then read and checked."""
    session = request.app[SESSION]
    name = request.query.get("name", "")
    try:
        path = await session.workspace.save_upload(name, _chunks(request))
    except BulkUpdaterError as exc:
        return _refused(exc)
    except (ConnectionResetError, ClientPayloadError):
        # The page was closed or reloaded mid-upload: what came is removed already; a second
        # tab is told, and nobody is left to answer.
        session.upload_cut(name)
        return web.Response(status=400)
    except OSError as exc:  # a full disk: what came is removed already
        return web.json_response({"error": f"{name}: {exc.strerror or exc}"}, status=400)
    await session.open_file(path, name, ReadOptions())
    return _state(session)


async def _chunks(request: web.Request) -> AsyncIterator[bytes]:
    while chunk := await request.content.read(_CHUNK):
        yield chunk


async def read_again(session: Session, body: dict[str, Any]) -> None:
    """Read the file again with another encoding, sheet or header row."""
    encoding, sheet = body.get("encoding") or None, body.get("sheet") or None
    if not all(value is None or isinstance(value, str) for value in (encoding, sheet)):
        raise BulkUpdaterError("an encoding or a sheet is given by its name")
    options = ReadOptions(encoding, sheet, _header_row(body.get("header_row")))
    await session.read_again(options)


def _header_row(value: object) -> int | None:
    """The header's line number, or None (empty: the file's first); `Source` checks its range."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BulkUpdaterError("the header row is given by its line number")
    return value


def set_key(session: Session, body: dict[str, Any], base_url: str) -> None:
    key = str(body.get("key", "")).strip()
    if not key:
        raise BulkUpdaterError("paste the API key first")
    workspace = str(body.get("workspace_id", "")).strip() or None
    connection = Connection(SecretStr(key), base_url, workspace)
    connection.settings()  # a key a header cannot carry is refused now, with its reason
    session.use_connection(connection)


async def send_fixed(session: Session, body: dict[str, Any]) -> None:
    """The rejects the user fixed, and only those, as a new job."""
    with session.launching():
        await _send_fixed(session, body)


async def _send_fixed(session: Session, body: dict[str, Any]) -> None:
    job = session.job
    if job is None or job.active:
        raise BulkUpdaterError("no finished job to send fixed rows from")
    given = body.get("rows")
    if not isinstance(given, dict):
        raise BulkUpdaterError("the request's `rows` must map row numbers to cells")
    rows = {_row(n): _texts(given, n) for n in given}
    if not rows:
        raise BulkUpdaterError("fix a row of the table first")
    fixed = session.workspace.scratch(job.rejects.suffix)
    await asyncio.to_thread(write_chosen, job.rejects, job.rejects_options, rows, fixed)
    name = f"{job.record.name} (fixed rows)"
    options = ReadOptions(tags_separator=job.record.tags_separator)
    await session.start_file(fixed, options, name, job.record.columns)


def _action(run: Action) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        session = request.app[SESSION]
        try:
            body = await request.json() if request.can_read_body else {}
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return web.json_response({"error": "the request must be a JSON object"}, status=400)
        try:
            result = run(session, body)
            if result is not None:
                await result
        except JobBusy as exc:
            return _refused(exc, 409)
        except BulkUpdaterError as exc:
            return _refused(exc)
        return _state(session)

    return handle


def _refused(error: object, status: int = 400) -> web.Response:
    """An action refused, and why, in the page's words."""
    return web.json_response({"error": page_words(str(error))}, status=status)


def _texts(body: dict[str, Any], name: str) -> dict[str, str]:
    """`body[name]`, which must map text to text (cells, columns)."""
    value = body.get(name)
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise BulkUpdaterError(f"the request's `{name}` must map text to text")
    return value


def _row(value: object) -> int:
    # ASCII digits only: `str.isdigit()` takes `²` too, which `int()` refuses.
    text = str(value) if isinstance(value, int | str) and not isinstance(value, bool) else ""
    if _ROW.fullmatch(text) is None:
        raise BulkUpdaterError("a row must be given by its number, in digits 0-9")
    return int(text)


def set_tags_separator(session: Session, body: dict[str, Any]) -> None:
    value = body.get("separator")
    if not isinstance(value, str):
        raise BulkUpdaterError("the request's `separator` must be text, such as ; or ,")
    session.set_tags_separator(value)


def fix(session: Session, body: dict[str, Any]) -> None:
    session.fix_row(_row(body.get("row")), _texts(body, "cells"))


async def use_sandbox(request: web.Request) -> web.Response:
    session = request.app[SESSION]
    try:
        session.use_connection(await request.app[SANDBOX]())
    except (OSError, ValueError) as exc:  # the leads file: unreadable, or not a list of leads
        return _refused(f"the sandbox cannot start: {exc}")
    return _state(session)


async def key(request: web.Request) -> web.Response:
    base_url = request.app[BASE_URL]
    return await _action(lambda s, b: set_key(s, b, base_url))(request)


async def download(request: web.Request) -> web.FileResponse:
    job = request.app[SESSION].job
    what = request.match_info["what"]
    if job is None or what not in ("report", "rejects"):
        raise web.HTTPNotFound()
    return _attachment(job.report if what == "report" else job.rejects, what)


async def download_earlier(request: web.Request) -> web.FileResponse:
    """A job's report or rejects, from before the current job: named by the job's number."""
    number, what = request.match_info["number"], request.match_info["what"]
    if _ROW.fullmatch(number) is None:
        raise web.HTTPNotFound()
    earlier = {job.number: job for job in request.app[SESSION].earlier}.get(int(number))
    path = earlier.file(what) if earlier is not None else None
    if path is None:
        raise web.HTTPNotFound()
    return _attachment(path, f"{what}-job{number}")


def _attachment(path: Path, name: str) -> web.FileResponse:
    if not path.exists():
        raise web.HTTPNotFound()
    return web.FileResponse(
        path, headers={"Content-Disposition": f'attachment; filename="{name}{path.suffix}"'}
    )


async def rejects(request: web.Request) -> web.Response:
    job = request.app[SESSION].job
    if job is None or job.active or not job.rejects.exists():
        return web.json_response({"header": [], "rows": []})
    table = await asyncio.to_thread(read_rejects, job.rejects, job.rejects_options)
    return web.json_response(table)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", index)
    app.router.add_get("/static/{name}", static)
    app.router.add_get("/favicon.ico", favicon)  # asked for by a page that names no icon
    app.router.add_get("/api/state", page_state)
    app.router.add_get("/api/events", events)
    app.router.add_post("/api/upload", upload)
    app.router.add_post("/api/key", key)
    app.router.add_post("/api/sandbox", use_sandbox)
    app.router.add_post("/api/read", _action(read_again))
    app.router.add_post("/api/columns", _action(lambda s, b: s.set_columns(_texts(b, "columns"))))
    app.router.add_post("/api/tags-separator", _action(set_tags_separator))
    app.router.add_post("/api/check", _action(lambda s, b: s.start_check()))
    app.router.add_post("/api/fix", _action(fix))
    app.router.add_post("/api/start", _action(lambda s, b: s.start()))
    app.router.add_post("/api/stop", _action(lambda s, b: s.stop()))
    app.router.add_post("/api/resume", _action(lambda s, b: s.resume()))
    app.router.add_post("/api/send-fixed", _action(send_fixed))
    app.router.add_get("/api/download/{what}", download)
    app.router.add_get("/api/download/earlier/{number}/{what}", download_earlier)
    app.router.add_get("/api/rejects", rejects)

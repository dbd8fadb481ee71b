"""`skip_unchanged` writes ahead: the fields a row sets are forgotten in the state file, committed,
before its request goes out. So however a run ends (a kill, a stop, a `stream()` left early, a
file that cannot be written), the file never holds a value the API may no longer hold."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bulk_updater import BulkUpdater, LeadUpdate, Reply, Status, StopReason
from bulk_updater.engine import state_opening
from bulk_updater.state import StateFile
from tests.conftest import remembered
from tests.http_server import Answers

LEAD = "665d4e5f6a7b8c9d0e1f2a3b"
OTHER = "665d4e5f6a7b8c9d0e1f2a3c"
OK = {"success": True, "data": {"_id": LEAD}}
CONFLICT = {"success": False, "error": {"code": "CONFLICT", "message": "update in progress"}}


class Api:
    """A fake SendKit that applies every PATCH, calling `on_patch` first (with the update)."""

    def __init__(self, on_patch: Callable[[LeadUpdate], None] = lambda _: None) -> None:
        self.on_patch = on_patch
        self.leads: dict[str, dict[str, Any]] = {}
        self.sent: list[tuple[str, str | None]] = []

    async def send(self, update: LeadUpdate) -> Reply:
        self.sent.append((update.id, update.jobTitle))
        self.on_patch(update)
        self.leads.setdefault(update.id, {}).update(update.body())
        return Reply(200)


async def run(api: Api, state: Path, rows: list[tuple[str, str]], **options: Any) -> Any:
    async with BulkUpdater(
        sender=api, rate=0, skip_unchanged=True, state=state, **options
    ) as updater:
        return await updater.run([LeadUpdate(id=lead, jobTitle=title) for lead, title in rows])


@contextlib.contextmanager
def locked(state: Path) -> Iterator[Callable[[], None]]:
    """Another process's write lock on `state` (as an `sqlite3` shell's `BEGIN EXCLUSIVE`): taken
    by calling what this yields, let go of on leaving."""
    db = sqlite3.connect(state, isolation_level=None)
    try:
        yield lambda: db.execute("BEGIN EXCLUSIVE")
    finally:
        db.close()


async def test_a_request_goes_out_only_once_the_file_has_forgotten_what_it_sets(
    tmp_path: Path,
) -> None:
    """At the moment each PATCH arrives, the file (read by another process) no longer holds the
    value from before: a kill at that moment leaves "unknown", never the old value."""
    state = tmp_path / "st.sqlite3"
    ids = [f"lead{n}" for n in range(300)]
    await run(Api(), state, [(lead, "X") for lead in ids])
    seen: dict[str, Any] = {}

    def look(update: LeadUpdate) -> None:
        seen[update.id] = remembered(state).get(update.id, {}).get("jobTitle")

    await run(Api(look), state, [(lead, "Y") for lead in ids], concurrency=16)
    assert seen == dict.fromkeys(ids)
    assert remembered(state) == {lead: {"jobTitle": "Y"} for lead in ids}


async def _night(server: Answers, state: Path, title: str) -> str:
    async with (
        BulkUpdater(
            api_key="sk_test",
            base_url=server.url,
            rate=0,
            timeout=0.5,
            max_attempts=3,
            skip_unchanged=True,
            state=state,
        ) as updater,
        updater.stream([LeadUpdate(id=LEAD, jobTitle=title)]) as outcomes,
    ):
        (status,) = [o.status.value async for o in outcomes]
        return status


def applied_never_answered(held: dict[str, str], lead: str) -> Callable[..., Awaitable[Any]]:
    """A PATCH handler that applies the update, then never answers (until the client leaves)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        held[lead] = (await request.json())["jobTitle"]
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    return handler


async def test_a_retry_answered_409_after_a_timeout_forgets_the_field(tmp_path: Path) -> None:
    """Review 6, S2: the first attempt was applied but timed out, its retry got a 409: the lead
    may hold the row's value, so the next row going back to the old one is sent."""
    state = tmp_path / "st.sqlite3"
    path = f"/v1/leads/{LEAD}"
    held: dict[str, str] = {}
    async with Answers() as server:
        server.add("PATCH", path, payload=OK)  # night 0: X accepted and remembered
        assert await _night(server, state, "X") == "updated"
        server.add("PATCH", path, handler=applied_never_answered(held, LEAD))
        server.add("PATCH", path, status=409, payload=CONFLICT)  # the retry
        assert await _night(server, state, "Y") == "rejected"
        assert held[LEAD] == "Y"
        server.add("PATCH", path, payload=OK)
        assert await _night(server, state, "X") == "updated"  # not `unchanged`


async def test_leaving_a_stream_forgets_the_fields_of_requests_in_flight(tmp_path: Path) -> None:
    """Review 6, S5: a request cancelled when the caller leaves `stream()` may have been applied."""
    state = tmp_path / "st.sqlite3"
    held: dict[str, str] = {}
    settings: dict[str, Any] = {"api_key": "sk_test", "rate": 0, "skip_unchanged": True}
    async with Answers() as server:
        settings.update(base_url=server.url, state=state)
        for lead in (LEAD, OTHER):
            server.add("PATCH", f"/v1/leads/{lead}", payload=OK)
        async with BulkUpdater(**settings) as updater:
            await updater.run([LeadUpdate(id=lead, jobTitle="X") for lead in (LEAD, OTHER)])
        server.add("PATCH", f"/v1/leads/{LEAD}", payload=OK)
        server.add("PATCH", f"/v1/leads/{OTHER}", handler=applied_never_answered(held, OTHER))
        async with BulkUpdater(**settings) as updater:
            rows = [LeadUpdate(id=lead, jobTitle="Y") for lead in (LEAD, OTHER)]
            async with updater.stream(rows) as outcomes:
                async for _ in outcomes:
                    break  # ends the job: the request in flight is cancelled
        assert held[OTHER] == "Y"
        server.add("PATCH", f"/v1/leads/{OTHER}", payload=OK)
        async with (
            BulkUpdater(**settings) as updater,
            updater.stream([LeadUpdate(id=OTHER, jobTitle="X")]) as outcomes,
        ):
            assert [o.status async for o in outcomes] == [Status.UPDATED]


async def test_a_mark_that_cannot_be_written_stops_the_job_before_its_row_is_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review 6, S10 (a full disk, or a lock held too long): the row whose mark the file cannot
    take is not sent, the job stops (exit 3, resumable), and the file holds nothing stale."""
    state = tmp_path / "st.sqlite3"
    monkeypatch.setattr(state_opening, "StateFile", functools.partial(StateFile, give_up=0.2))
    await run(Api(), state, [(LEAD, "X")])
    with locked(state) as lock:
        api = Api(lambda _: lock())  # the first PATCH takes the lock: the next mark fails
        summary = await run(api, state, [(LEAD, "Y"), (LEAD, "Z")])
    assert api.sent == [(LEAD, "Y")]
    assert summary.stopped is StopReason.STATE_UNWRITABLE
    assert summary.stop_message == (
        f"{state}: the state file cannot be written (another process kept the state file locked "
        "for 0.2s; try again once it is done), and a row is sent only once it has forgotten the "
        "fields the row sets; once it can be written, rerun with --resume"
    )
    assert summary.counts[Status.ABORTED] == 1
    assert remembered(state) == {}  # X forgotten before Y went out; Y not remembered


async def test_a_stop_ends_the_writers_wait_for_another_process_lock(tmp_path: Path) -> None:
    """Review 6, S6: SIGTERM while another process holds the file's lock ends the run without
    waiting the 120s the writer would give it; what it could not write is not remembered, which
    is safe: the file forgot those fields before the requests went out."""
    state = tmp_path / "st.sqlite3"
    await run(Api(), state, [(lead, "X") for lead in (LEAD, OTHER)])
    api = Api()
    async with BulkUpdater(sender=api, rate=0, skip_unchanged=True, state=state) as updater:
        with locked(state) as lock:

            def lock_and_stop(update: LeadUpdate) -> None:
                lock()
                updater.stop("interrupted by SIGTERM")

            api.on_patch = lock_and_stop
            rows = [LeadUpdate(id=LEAD, jobTitle="Y"), LeadUpdate(id=LEAD, jobTitle="Z")]
            summary = await asyncio.wait_for(updater.run(rows), 60)  # only a guard
    assert summary.counts[Status.UPDATED] == 1
    assert summary.warnings == [
        f"state: {state}: the job stopped while another process kept it locked; from then on this "
        "run's accepted rows were not remembered, and are sent again next time"
    ]
    assert remembered(state) == {OTHER: {"jobTitle": "X"}}  # LEAD: Y went out, X forgotten

"""Shared test helpers: virtual time, fake senders, lead and row factories, CSV in and out.

Conventions:

- Virtual time: an async test that asks for the `virtual_time` fixture runs on a
  `VirtualTimeLoop`, whose clock jumps to the next timer (`pytest_asyncio_loop_factories` below
  picks the loop); `advance(seconds)` lets time pass there. Every other async test runs on a
  plain asyncio loop.
- Helpers are plain functions and classes, defined once in the `conftest.py` of the narrowest
  folder holding all their users and imported from there (`from tests.conftest import
  make_leads`): here for the whole suite, `tests/inputs/conftest.py` for input files,
  `tests/cli/conftest.py` for running the command. Fixtures are kept for what pytest must set
  up or tear down around a test (`virtual_time`, `tmp_path`, `redis_url`).
- HTTP: the client's handling of answers is tested with aioresponses (no sockets); what a mock
  cannot show goes to real servers on a loopback port that the test starts itself
  (`tests/http_server.py`: `Answers`, queued answers per method and path; `RawServer`, bytes
  no HTTP server would send, a closed connection, or no answer at all), and proxies to a real
  tinyproxy (`tests/proxy_server.py`).
- Proxies: the suite reaches its loopback servers directly. `NO_PROXY` (both spellings) names
  loopback and the machine's proxy variables are dropped, here, for every test and every
  process a test starts; a proxy test sets its own.
- Redis: `redis_url` is a real `redis-server` of the suite's own (started once on a free
  loopback port, flushed before each test that asks for it); a test that stops or configures
  its server starts a `RedisServer` of its own (`tests/redis_server.py`, with `RecordedStarts`,
  the starts a budget records). `make test` installs redis-server when it is missing
  (`tools/ensure-redis`); without it these tests fail, they never skip.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import csv
import json
import os
import random
import re
import selectors
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bulk_updater import LeadUpdate, Outcome, Reply, TransportError
from bulk_updater.answers import parse_retry_after, rate_headers
from bulk_updater.limits import Pacer
from bulk_updater.sandbox.ratelimit import HeaderStyle, RateLimit
from tests.redis_server import RedisServer

#: The hosts the suite's servers listen on, for `NO_PROXY`.
LOOPBACK_HOSTS = "127.0.0.1,localhost,::1"

for _name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
    os.environ.pop(_name, None)
    os.environ.pop(_name.lower(), None)
for _name in ("NO_PROXY", "no_proxy"):  # where both are set, the lowercase one is read
    os.environ[_name] = ",".join(filter(None, (os.environ.get(_name, ""), LOOPBACK_HOSTS)))

# ---------------------------------------------------------------------------------------------
# virtual time


class _VirtualSelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    """Polls real file descriptors without blocking; moves the virtual clock instead of waiting."""

    def __init__(self) -> None:
        super().__init__()
        self.loop: VirtualTimeLoop | None = None

    def select(self, timeout: float | None = None) -> list[Any]:
        events = super().select(0)
        if events or self.loop is None:
            return events  # type: ignore[no-any-return]
        if timeout is None:
            return super().select(0.001)  # type: ignore[no-any-return]
        self.loop.now += timeout
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock jumps straight to the next timer: sleeps cost no real time.

    Everything built on `loop.time()` and `asyncio.sleep` (the pacer, backoffs, 429 pauses, grace
    periods) runs exactly as in production, only without waiting. Only for tests with no real I/O.
    """

    def __init__(self) -> None:
        self.now = 0.0
        selector = _VirtualSelector()
        super().__init__(selector)
        selector.loop = self

    def time(self) -> float:
        return self.now


@pytest.hookimpl
def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """The loop an async test runs on: virtual time if it asks for `virtual_time`."""
    if "virtual_time" in getattr(item, "fixturenames", ()):
        return {"virtual_time": VirtualTimeLoop}
    return {"asyncio": asyncio.new_event_loop}


@pytest.fixture
async def virtual_time() -> VirtualTimeLoop:
    """Run the test in virtual time; the loop itself, for a test that moves its clock. Jitter
    (backoff's, the pacer's) draws from a seeded `random`, so a run is the same every time."""
    loop = asyncio.get_running_loop()
    assert isinstance(loop, VirtualTimeLoop), "virtual_time is for async tests"
    random.seed(0)
    return loop


async def advance(seconds: float) -> None:
    """Let `seconds` of virtual time pass (in a `virtual_time` test only: it costs no real time)."""
    loop = asyncio.get_running_loop()
    assert isinstance(loop, VirtualTimeLoop), "advance() is for virtual-time tests"
    await asyncio.sleep(seconds)


# ---------------------------------------------------------------------------------------------
# senders

Script = Callable[[LeadUpdate, int], Reply | Exception]


def always_ok(update: LeadUpdate, attempt: int) -> Reply | Exception:
    return Reply(200)


class FakeSender:
    """A `Sender` that answers from a script: `script(update, attempt_for_this_id)`.

    Records every call (loop time, id) and the highest number of calls in flight at once, overall
    and for one id.
    """

    def __init__(self, script: Script = always_ok, *, latency: float = 0.01) -> None:
        self.script = script
        self.latency = latency
        self.calls: list[tuple[float, str]] = []
        self.bodies: list[dict[str, Any]] = []
        self.attempts: collections.Counter[str] = collections.Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self._per_id: collections.Counter[str] = collections.Counter()
        self.max_in_flight_per_id = 0

    async def send(self, update: LeadUpdate) -> Reply:
        loop = asyncio.get_running_loop()
        self.calls.append((loop.time(), update.id))
        self.bodies.append(update.body())
        self.attempts[update.id] += 1
        attempt = self.attempts[update.id]
        self.in_flight += 1
        self._per_id[update.id] += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.max_in_flight_per_id = max(self.max_in_flight_per_id, self._per_id[update.id])
        try:
            if self.latency:
                await asyncio.sleep(self.latency)
            result = self.script(update, attempt)
        finally:
            self.in_flight -= 1
            self._per_id[update.id] -= 1
        if isinstance(result, Exception):
            raise result
        return result


class HoldFirstSender:
    """Holds lead `first` until `others` other requests were answered: its row finishes last.

    Answers 404 for the ids in `missing`, 200 otherwise; records the ids sent, in order.
    """

    def __init__(self, first: str, others: int, *, missing: Iterable[str] = ()) -> None:
        self.first = first
        self.others = others
        self.missing = frozenset(missing)
        self.answered = 0
        self.release = asyncio.Event()
        self.sent: list[str] = []

    async def send(self, update: LeadUpdate) -> Reply:
        self.sent.append(update.id)
        if update.id == self.first:
            await self.release.wait()
            return Reply(200)
        self.answered += 1
        if self.answered == self.others:
            self.release.set()
        if update.id in self.missing:
            return Reply(404, "NOT_FOUND", "Lead not found")
        return Reply(200)


class WatchedPacer(Pacer):
    """A pacer that says when it is opened and closed."""

    def __init__(self) -> None:
        super().__init__(0)
        self.calls: list[str] = []

    async def open(self) -> None:
        self.calls.append("open")

    async def close(self) -> None:
        self.calls.append("close")


class SimulatedApi:
    """A `Sender` that plays the sandbox's rate limit without sockets, for virtual-time jobs.

    The limit is the sandbox's own `RateLimit` (by default a sliding second of `rate + burst`,
    429 with `Retry-After` when the oldest request leaves it; any of its shapes; optional
    `xrl` / `ietf` headers);
    `set_rate()` changes it mid-job. Answers come after `latency` seconds, jittered by
    `jitter` either way. Records every arrival's loop time, counts the 429s and the most
    requests in flight at once.
    """

    def __init__(
        self,
        rate: float,
        burst: int = 0,
        *,
        headers: HeaderStyle | None = None,
        latency: float = 0.04,
        jitter: float = 0.2,
        seed: int = 1,
        **shape: Any,
    ) -> None:
        """`shape`: the rest of `RateLimit`'s settings (`shape`, `retry_after`, `halve_after`,
        `restore_after`)."""
        self.limit = RateLimit(rate=rate, burst=burst, headers=headers, **shape)
        # A `Retry-After` date is written and read by a wall clock that moves with the loop's, so
        # a job's waits are the same in every run (not rounded to where the real second is).
        self.limit.wall = self._wall
        self.latency = latency
        self.jitter = jitter
        self.rng = random.Random(seed)
        self.arrivals: list[float] = []
        self.refused = 0
        self.in_flight = 0
        self.max_in_flight = 0

    def set_rate(self, rate: float, burst: int = 0) -> None:
        self.limit.set(rate, burst)

    @staticmethod
    def _wall() -> float:
        return 1_800_000_000.0 + asyncio.get_running_loop().time()

    async def send(self, update: LeadUpdate) -> Reply:
        self.arrivals.append(asyncio.get_running_loop().time())
        answer = self.limit.admit()
        if answer is not None:
            self.refused += 1
        response = answer or web.json_response({"success": True, "data": {"_id": update.id}})
        self.limit.add_headers(response)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.latency:
                spread = self.rng.uniform(1 - self.jitter, 1 + self.jitter)
                await asyncio.sleep(self.latency * spread)
        finally:
            self.in_flight -= 1
        headers = rate_headers(response.headers)
        if answer is None:
            return Reply(200, headers=headers)
        now = datetime.fromtimestamp(self._wall(), UTC)
        retry_after = parse_retry_after(headers.get("Retry-After") if headers else None, now)
        return Reply(429, "RATE_LIMITED", "Too many requests", retry_after, headers)


def transport_error() -> TransportError:
    return TransportError("connection", "the server closed the connection without answering")


async def collect(stream: AsyncIterator[Outcome], into: list[Outcome]) -> None:
    """Read a stream of outcomes into `into`, which keeps what came before an exception."""
    async for outcome in stream:
        into.append(outcome)


# ---------------------------------------------------------------------------------------------
# leads, rows and ids

#: What the spec allows as a lead id: a plain token.
TOKEN_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")

#: Ids that must never reach the wire as they are (paths, queries, controls, non-ASCII, ...).
HOSTILE_IDS = [
    "../account",
    "a/b",
    "x?y=1",
    "%2e%2e%2f",
    "a#b",
    "a b",
    " 000000000000000000000000",
    "000000000000000000000000 ",
    "a\tb",
    "a\x01b",
    "a\x1bb",
    "a\x7fb",
    "a\nb",
    "a\r\nb",
    "\u2028",
    "..",
    ".",
    "/",
    "a\\b",
    "?",
    "#",
    "%00",
    "caf\u00e9",
    "a" * 129,
    "",
]


def make_leads(n: int) -> dict[str, dict[str, Any]]:
    """`n` leads with 24-hex ids, in the API's shape."""
    leads = {}
    for i in range(n):
        lead_id = f"{i:024x}"
        leads[lead_id] = {
            "_id": lead_id,
            "email": f"lead{i}@example.com",
            "firstName": f"First{i}",
            "lastName": f"Last{i}",
            "companyName": "Acme",
            "jobTitle": "Engineer",
            "tags": ["old"],
            "customFields": {"industry": "SaaS", "keep": str(i)},
            "createdAt": "2025-06-10T10:30:00.000Z",
            "updatedAt": "2025-06-10T10:30:00.000Z",
        }
    return leads


def make_rows(n: int) -> list[dict[str, str]]:
    """`n` library rows, one per lead `lead0`, `lead1`, ..., each setting a job title."""
    return [{"id": f"lead{i}", "jobTitle": f"T{i}"} for i in range(n)]


def interleaved(lead_ids: list[str], per_lead: int, seed: int | None) -> list[tuple[str, int]]:
    """(lead, k) for k in 0..per_lead-1, each lead's k increasing; round-robin or shuffled."""
    if seed is None:
        return [(lead, k) for k in range(per_lead) for lead in lead_ids]
    rng = random.Random(seed)
    pending = dict.fromkeys(lead_ids, 0)
    out = []
    while pending:
        lead = rng.choice(sorted(pending))
        out.append((lead, pending[lead]))
        pending[lead] += 1
        if pending[lead] == per_lead:
            del pending[lead]
    return out


# ---------------------------------------------------------------------------------------------
# files


def write_csv(
    path: Path, header: Sequence[str], rows: Iterable[Sequence[str] | Mapping[str, str]]
) -> Path:
    """A UTF-8 CSV file: the header, then one record per row (its cells, or a dict by column)."""
    with open(path, "w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        for row in rows:
            writer.writerow([row[c] for c in header] if isinstance(row, Mapping) else row)
    return path


def read_report(path: Path) -> list[dict[str, str]]:
    """A CSV report's records; reports are UTF-8 with a BOM, so that spreadsheets read them so."""
    with open(path, encoding="utf-8-sig", newline="") as file:
        return list(csv.DictReader(file))


def remembered(path: Path) -> dict[str, dict[str, Any]]:
    """What a state file of `skip_unchanged` holds, read with plain sqlite3: lead -> fields."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        return {lead: json.loads(blob) for lead, blob in db.execute("SELECT id, fields FROM leads")}


def integrity(path: Path) -> str:
    """SQLite's own check of a database file: `"ok"` when it is sound."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])


# ---------------------------------------------------------------------------------------------
# redis (the helpers are in tests/redis_server.py)


@pytest.fixture(scope="session")
def _redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_url(_redis_server: RedisServer) -> str:
    """The URL of the suite's Redis, emptied for this test."""
    _redis_server.flush()
    return _redis_server.url


def unmeasured(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """`env` (else this process's environment) for a child that a test may SIGKILL: without
    coverage's settings, so that coverage leaves it alone.

    Under `make test` every Python child writes a coverage data file as it exits, an SQLite file
    that coverage writes with its journal off; a SIGKILL in the middle of that write leaves a
    truncated file that `coverage combine` then reports as "database disk image is malformed".
    A child a test kills saves nothing anyway.
    """
    source = os.environ if env is None else env
    return {k: v for k, v in source.items() if not k.startswith("COVERAGE")}


@pytest.fixture(autouse=True)
def _state_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every test (and every child it starts) keeps its state, such as what `--resume` checks of
    a report, in a folder of its own, never the user's. Not through `monkeypatch`: a test's own
    `monkeypatch.undo()` would put the user's folder back."""
    folder = tmp_path_factory.mktemp("state-home")
    before = os.environ.get("XDG_STATE_HOME")
    os.environ["XDG_STATE_HOME"] = str(folder)
    yield folder
    if before is None:
        os.environ.pop("XDG_STATE_HOME", None)
    else:
        os.environ["XDG_STATE_HOME"] = before

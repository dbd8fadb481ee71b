"""`skip_unchanged`: the `Unchanged` rule and its `Remember` sink, against a fake API in process.

Each decision is checked against a plain model of the API (customFields merged, other fields
replaced) that sends a row exactly when the lead does not already hold what it sets, as left by
the earlier rows of the lead. The same against the real sandbox is `tests/e2e/test_sync.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import random
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from bulk_updater import (
    BulkUpdater,
    ConfigError,
    LeadUpdate,
    Outcome,
    Reply,
    StateError,
    StateLockedError,
    Status,
    TransportError,
)
from bulk_updater.inputs import Row
from bulk_updater.state import StateFile
from bulk_updater.state.fields import flatten
from tests.conftest import read_report, remembered, write_csv


class Api:
    """A fake SendKit: leads by id, the documented PATCH semantics, a script of failures."""

    def __init__(self, leads: dict[str, dict[str, Any]], *, latency: float = 0.001) -> None:
        self.leads = copy.deepcopy(leads)
        self.latency = latency
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.failing: set[tuple[str, str]] = set()  # (id, jobTitle) answered by a timeout
        self.applied_then_lost: set[tuple[str, str]] = set()  # applied, but no answer comes

    async def send(self, update: LeadUpdate) -> Reply:
        body = update.body()
        self.sent.append((update.id, body))
        await asyncio.sleep(self.latency)
        key = (update.id, str(body.get("jobTitle")))
        if key in self.failing:
            raise TransportError("timeout", "no answer")
        lead = self.leads.get(update.id)
        if lead is None:
            return Reply(404, "NOT_FOUND", "Lead not found")
        for name, value in body.items():
            if name == "customFields":
                lead["customFields"] = {**lead.get("customFields", {}), **value}
            else:
                lead[name] = value
        if key in self.applied_then_lost:
            raise TransportError("timeout", "no answer")
        return Reply(200)


def leads(n: int) -> dict[str, dict[str, Any]]:
    return {f"lead{i}": {"jobTitle": "old", "customFields": {"keep": i}} for i in range(n)}


async def night(
    api: Api, rows: list[dict[str, Any]], state: Path, **options: Any
) -> tuple[dict[Status, int], list[tuple[str, dict[str, Any]]]]:
    """One run with `skip_unchanged`: its counts and what it sent."""
    before = len(api.sent)
    async with BulkUpdater(
        sender=api, skip_unchanged=True, state=state, rate=0, backoff_base=0, **options
    ) as updater:
        summary = await updater.run(rows, report=state.with_suffix(".report.csv"))
    assert summary.state_file == str(state)
    return summary.counts, api.sent[before:]


async def test_the_second_night_sends_only_what_was_not_accepted(
    tmp_path: Path, virtual_time: object
) -> None:
    api = Api(leads(30))
    rows: list[dict[str, Any]] = [{"id": f"lead{i}", "jobTitle": f"T{i}"} for i in range(30)]
    rows += [{"id": "ghost", "jobTitle": "x"}]
    state = tmp_path / "state.sqlite3"
    counts, sent = await night(api, rows, state)
    assert (counts[Status.UPDATED], counts[Status.NOT_FOUND], len(sent)) == (30, 1, 31)
    counts, sent = await night(api, rows, state)
    assert (counts[Status.UNCHANGED], counts[Status.NOT_FOUND], counts[Status.UPDATED]) == (
        30,
        1,
        0,
    )
    assert sent == [("ghost", {"jobTitle": "x"})]
    report = read_report(state.with_suffix(".report.csv"))
    assert [r["status"] for r in report].count("unchanged") == 30  # one line per row
    assert remembered(state)["lead3"] == {"jobTitle": "T3"}
    assert "ghost" not in remembered(state)


async def test_the_last_row_wins_within_a_run(tmp_path: Path, virtual_time: object) -> None:
    api = Api(leads(2))
    state = tmp_path / "state.sqlite3"
    await night(api, [{"id": "lead0", "jobTitle": "x"}], state)
    rows = [{"id": "lead0", "jobTitle": j} for j in ("x", "y", "x", "x")]
    counts, sent = await night(api, rows, state)
    assert sent == [("lead0", {"jobTitle": "y"}), ("lead0", {"jobTitle": "x"})]
    assert counts[Status.UNCHANGED] == 2
    assert api.leads["lead0"]["jobTitle"] == "x"


async def test_custom_fields_are_compared_key_by_key_and_tags_as_a_list(
    tmp_path: Path, virtual_time: object
) -> None:
    api = Api(leads(1))
    state = tmp_path / "state.sqlite3"
    first = {"id": "lead0", "tags": ["a", "b"], "customFields": {"x": "1", "y": 2}}
    await night(api, [first], state)
    rows = [
        {"id": "lead0", "customFields.x": "1"},  # held: unchanged
        {"id": "lead0", "customFields": {"y": 2, "x": "1"}},  # held, in another order
        {"id": "lead0", "customFields": {"y": "2"}},  # a string is not the number 2
        {"id": "lead0", "tags": ["b", "a"]},  # a list is replaced whole
        {"id": "lead0", "city": "Oslo"},  # never set by this tool
    ]
    counts, sent = await night(api, rows, state)
    assert [body for _, body in sent] == [
        {"customFields": {"y": "2"}},
        {"tags": ["b", "a"]},
        {"city": "Oslo"},
    ]
    assert counts[Status.UNCHANGED] == 2


async def test_a_request_that_may_have_been_applied_forgets_what_it_set(
    tmp_path: Path, virtual_time: object
) -> None:
    """`failed` after an attempt: the API may hold either value, so the fields are sent again."""
    api = Api(leads(2))
    state = tmp_path / "state.sqlite3"
    api.applied_then_lost.add(("lead0", "y"))
    api.failing.add(("lead1", "y"))
    rows = [
        {"id": "lead0", "jobTitle": "x"},
        {"id": "lead0", "jobTitle": "y", "city": "Oslo"},  # applied, no answer: failed
        {"id": "lead0", "jobTitle": "x"},  # must be sent: the API now holds y
        {"id": "lead1", "jobTitle": "x", "city": "Rome"},
        {"id": "lead1", "jobTitle": "y"},  # never applied
        {"id": "lead1", "city": "Rome"},  # still known from row 4: unchanged
    ]
    counts, sent = await night(api, rows, state, max_attempts=2)
    assert counts[Status.FAILED] == 2
    assert [r for r, _ in sent].count("lead0") == 1 + 2 + 1
    assert api.leads["lead0"]["jobTitle"] == "x"
    assert counts[Status.UNCHANGED] == 1
    assert remembered(state)["lead0"] == {"jobTitle": "x"}  # city is not known any more
    assert remembered(state)["lead1"] == {"city": "Rome"}


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_every_decision_matches_a_model_of_the_api(
    tmp_path: Path, virtual_time: object, seed: int
) -> None:
    """Many rows per lead, spread over several lookahead batches and commits: a row is sent
    exactly when the model says the lead does not hold its values yet."""
    rng = random.Random(seed)
    api = Api(leads(12), latency=0.0)
    api.leads.pop("lead11")  # one lead does not exist: never remembered
    state = tmp_path / "state.sqlite3"
    known: dict[str, dict[str, Any]] = {}  # the model: what this tool set, per lead
    for _ in range(3):  # three nights, the state carried over
        rows = [_random_row(rng) for _ in range(900)]
        expected: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            update = LeadUpdate.model_validate(row)
            wanted = flatten(update)
            held = known.get(update.id, {})
            if all(k in held and _same(held[k], v) for k, v in wanted.items()):
                continue
            expected.setdefault(update.id, []).append(update.body())
            if update.id != "lead11":
                known[update.id] = {**held, **wanted}
        _, sent = await night(api, rows, state, concurrency=rng.choice([1, 4, 16]))
        by_lead: dict[str, list[dict[str, Any]]] = {}
        for lead, body in sent:
            by_lead.setdefault(lead, []).append(body)
        assert by_lead == expected
        assert remembered(state) == known


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _random_row(rng: random.Random) -> dict[str, Any]:
    row: dict[str, Any] = {"id": f"lead{rng.randrange(12)}"}
    if rng.random() < 0.6:
        row["jobTitle"] = rng.choice("xyz")
    if rng.random() < 0.4:
        row["customFields"] = {rng.choice("ab"): rng.choice([1, "1", True])}
    if len(row) == 1:
        row["tags"] = rng.sample(["p", "q"], k=rng.randint(0, 2))
    return row


async def test_resume_decides_first(tmp_path: Path, virtual_time: object) -> None:
    api = Api(leads(4))
    state = tmp_path / "state.sqlite3"
    report = tmp_path / "r.csv"
    rows = [{"id": f"lead{i}", "jobTitle": "new"} for i in range(4)]
    async with BulkUpdater(sender=api, rate=0, skip_unchanged=True, state=state) as updater:
        await updater.run(rows[:2], report=report, fingerprint="same")
        summary = await updater.run(rows, report=report, fingerprint="same", resume=True)
    assert summary.counts[Status.SKIPPED] == 2  # resume answers first: not `unchanged`
    assert summary.counts[Status.UPDATED] == 2
    assert summary.exit_code == 0


async def test_stream_yields_unchanged_rows_and_rejects_never_list_them(
    tmp_path: Path, virtual_time: object
) -> None:
    api = Api(leads(3))
    state = tmp_path / "state.sqlite3"
    rows = [{"id": f"lead{i}", "jobTitle": "new"} for i in range(3)] + [{"id": "nope", "city": "x"}]
    async with BulkUpdater(sender=api, rate=0, skip_unchanged=True, state=state) as updater:
        first: list[Outcome] = [o async for o in updater.stream(rows)]
        second: list[Outcome] = [o async for o in updater.stream(rows)]
        summary = await updater.run(rows, rejects=tmp_path / "rejects.jsonl")
    assert sorted(o.status for o in first).count(Status.UPDATED) == 3
    assert sorted(o.status.value for o in second) == [
        "not_found",
        "unchanged",
        "unchanged",
        "unchanged",
    ]
    assert all(o.attempts == 0 for o in second if o.status is Status.UNCHANGED)
    assert summary.counts[Status.UNCHANGED] == 3
    assert summary.exit_code == 1  # the missing lead
    rejects = (tmp_path / "rejects.jsonl").read_text().splitlines()
    assert len(rejects) == 1
    assert "nope" in rejects[0]


async def test_all_unchanged_is_success(tmp_path: Path, virtual_time: object) -> None:
    api = Api(leads(2))
    state = tmp_path / "state.sqlite3"
    rows = [{"id": "lead0", "jobTitle": "a"}, {"id": "lead1", "jobTitle": "b"}]
    await night(api, rows, state)
    async with BulkUpdater(sender=api, rate=0, skip_unchanged=True, state=state) as updater:
        summary = await updater.run(rows)
    assert summary.counts[Status.UNCHANGED] == 2
    assert (summary.all_updated, summary.exit_code, summary.requests) == (True, 0, 0)


async def test_lookups_are_one_query_per_batch_of_rows(
    tmp_path: Path, virtual_time: object
) -> None:
    api = Api(leads(1000), latency=0.0)
    state = tmp_path / "state.sqlite3"
    rows = [{"id": f"lead{i}", "jobTitle": "t"} for i in range(1000)]
    await night(api, rows, state)
    lookups: list[int] = []
    original = StateFile.lookup

    def counting(self: StateFile, ids: Any) -> Any:
        lookups.append(len(ids))
        return original(self, ids)

    StateFile.lookup = counting  # type: ignore[method-assign]
    try:
        counts, _ = await night(api, rows, state)
    finally:
        StateFile.lookup = original  # type: ignore[method-assign]
    assert counts[Status.UNCHANGED] == 1000
    assert len(lookups) == 4  # 256 rows per batch
    assert sum(lookups) == 1000


async def test_rows_the_rule_never_sees_are_left_alone(
    tmp_path: Path, virtual_time: object
) -> None:
    """Invalid rows pass through; an outcome for a row the rule did not pass on changes nothing."""
    from bulk_updater.engine.unchanged import Unchanged

    store = StateFile(tmp_path / "s.sqlite3")
    rule = Unchanged(store)
    bad = Row(1, __import__("bulk_updater").Invalid("x", "bad"))
    assert rule.admit(bad) is bad
    row = Row(2, LeadUpdate(id="a", city="x"))
    outcome = Outcome(row=2, id="a", status=Status.UPDATED)
    rule.record(outcome, row)  # never admitted: nothing recorded
    assert rule.ready(row) is row
    rule.close()
    store.close()
    assert remembered(tmp_path / "s.sqlite3") == {}


def test_skip_unchanged_needs_a_state_file_or_a_key() -> None:
    with pytest.raises(ConfigError, match="pass state="):
        BulkUpdater(sender=Api({}), skip_unchanged=True)
    updater = BulkUpdater(api_key="sk_x", skip_unchanged=True, base_url="http://127.0.0.1:9")
    assert updater.state_path().name.startswith("127.0.0.1-9.k")
    assert (
        BulkUpdater(sender=Api({}), state=Path("/tmp/x.sqlite3")).settings.state == "/tmp/x.sqlite3"
    )
    with pytest.raises(ConfigError, match="state: is empty"):
        BulkUpdater(sender=Api({}), state=" ")


def test_a_row_whose_id_an_earlier_rule_changed_is_looked_up_alone(tmp_path: Path) -> None:
    from bulk_updater.engine.unchanged import Unchanged

    store = StateFile(tmp_path / "s.sqlite3")
    store.begin("in")
    seq = store.change("resolved", {"city": "Oslo"})
    assert store.wait_committed(seq, timeout=10)
    rule = Unchanged(store)
    rule.prefetch([Row(1, LeadUpdate(id="as-read", city="Oslo"))])
    decided = rule.admit(Row(1, LeadUpdate(id="resolved", city="Oslo")))  # e.g. by email
    assert isinstance(decided, Outcome)
    assert decided.status is Status.UNCHANGED
    store.close()


async def test_an_input_that_raises_still_gets_every_row_read_first(
    tmp_path: Path, virtual_time: object
) -> None:
    api = Api(leads(3))

    def rows() -> Any:
        yield {"id": "lead0", "jobTitle": "a"}
        yield {"id": "lead1", "jobTitle": "b"}
        raise RuntimeError("the export broke")

    seen: list[Outcome] = []
    async with BulkUpdater(
        sender=api, rate=0, skip_unchanged=True, state=tmp_path / "s.sqlite3"
    ) as updater:
        with pytest.raises(RuntimeError, match="the export broke"):
            await updater.run(rows(), on_outcome=seen.append)
    assert sorted(o.id for o in seen) == ["lead0", "lead1"]
    # A row still waiting for its mark in the file when the job stops is not sent (`aborted`).
    assert {o.status for o in seen} <= {Status.UPDATED, Status.ABORTED}
    titles = {"lead0": "a", "lead1": "b"}
    assert remembered(tmp_path / "s.sqlite3") == {
        o.id: {"jobTitle": titles[o.id]} for o in seen if o.status is Status.UPDATED
    }


async def test_async_rows_are_compared_as_they_come(tmp_path: Path, virtual_time: object) -> None:
    """An async iterable's next row may be long in coming: each row is looked up alone."""
    api = Api(leads(2))
    state = tmp_path / "s.sqlite3"

    async def rows() -> Any:
        for lead, title in (("lead0", "a"), ("lead1", "b"), ("lead0", "a")):
            yield {"id": lead, "jobTitle": title}

    await night(api, [{"id": "lead1", "jobTitle": "b"}], state)
    counts, sent = await night(api, rows(), state)  # type: ignore[arg-type]
    assert sent == [("lead0", {"jobTitle": "a"})]
    assert counts[Status.UNCHANGED] == 2


async def test_changes_stay_in_memory_until_the_file_has_them_and_the_lead_is_idle(
    tmp_path: Path,
) -> None:
    """Step by step: a change committed while its lead still has a row in the pipeline is kept
    for that row (its lookup predates the commit), and dropped once the lead is idle."""
    from bulk_updater.engine.unchanged import Unchanged

    store = StateFile(tmp_path / "s.sqlite3", every=0.0)
    store.begin("in")
    rule = Unchanged(store)
    r1, r2 = Row(1, LeadUpdate(id="a", city="x")), Row(2, LeadUpdate(id="a", city="x"))
    rule.prefetch([r1, r2])
    assert rule.admit(r1) is r1
    assert rule.admit(r2) is r2  # deferred: r1 is in the pipeline
    rule.record(Outcome(row=1, id="a", status=Status.UPDATED, attempts=1), r1)
    assert store.wait_committed(1, timeout=10)
    rule.prefetch([Row(3, LeadUpdate(id="b", city="y"))])  # the file has it; `a` is not idle
    decided = await rule.ready(r2)  # type: ignore[misc]
    assert isinstance(decided, Outcome)
    assert decided.status is Status.UNCHANGED
    rule.record(decided, r2)
    r4 = Row(4, LeadUpdate(id="a", city="x"))
    rule.prefetch([r4])  # now dropped from memory, and read back from the file
    assert rule._changes == {}
    unchanged = rule.admit(r4)
    assert isinstance(unchanged, Outcome)
    assert unchanged.status is Status.UNCHANGED
    store.close()


async def test_a_state_file_that_cannot_be_started_is_closed(tmp_path: Path) -> None:
    from bulk_updater import StateError
    from bulk_updater.engine.state_opening import open_unchanged
    from bulk_updater.settings import Settings

    path = tmp_path / "s.sqlite3"
    StateFile(path).close()
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("DROP TABLE runs")
        db.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY)")  # damaged: no columns
        db.commit()
    with pytest.raises(StateError, match="cannot be used"):
        await open_unchanged(Settings.build(state=path), [])
    StateFile(path).close()  # and let go of: the next run may hold it


class GatedApi(Api):
    """An `Api` whose PATCHes setting `TitleA` wait for `gate`; `started` once one arrived."""

    def __init__(self, leads: dict[str, dict[str, Any]]) -> None:
        super().__init__(leads)
        self.started = asyncio.Event()
        self.gate = asyncio.Event()
        self.arrived: list[str] = []  # the jobTitle of every PATCH, as it arrives

    async def send(self, update: LeadUpdate) -> Reply:
        self.arrived.append(str(update.jobTitle))
        if update.jobTitle == "TitleA":
            self.started.set()
            await self.gate.wait()
        return await super().send(update)


async def test_two_runs_on_one_state_file_never_skip_what_the_api_does_not_hold(
    tmp_path: Path, virtual_time: object
) -> None:
    """Run A sets TitleA while run B wants TitleB on the same leads, on one state file: B is
    refused while A runs (before any request), so what the file remembers is what the API holds,
    and a rerun of A after B sends every row again."""
    api = GatedApi(leads(40))
    state = tmp_path / "state.sqlite3"
    titles = {
        run: [{"id": f"lead{i}", "jobTitle": f"Title{run}"} for i in range(40)] for run in "AB"
    }

    async def run(name: str) -> dict[Status, int]:
        async with BulkUpdater(
            sender=api, skip_unchanged=True, state=state, rate=0, concurrency=8
        ) as updater:
            return (await updater.run(titles[name])).counts

    first = asyncio.create_task(run("A"))
    await api.started.wait()
    with pytest.raises(StateLockedError, match="another run is using this state file"):
        await run("B")
    assert set(api.arrived) == {"TitleA"}
    api.gate.set()
    assert (await first)[Status.UPDATED] == 40
    assert (await run("B"))[Status.UPDATED] == 40
    assert all(lead["jobTitle"] == "TitleB" for lead in api.leads.values())
    counts = await run("A")  # the API holds TitleB: nothing may be skipped
    assert (counts[Status.UPDATED], counts[Status.UNCHANGED]) == (40, 0)
    assert all(lead["jobTitle"] == "TitleA" for lead in api.leads.values())
    assert all(fields == {"jobTitle": "TitleA"} for fields in remembered(state).values())


async def test_a_run_refused_by_the_state_lock_leaves_its_outputs_as_they_were(
    tmp_path: Path, virtual_time: object
) -> None:
    """Every lock is taken before any output is written: a run refused because another holds
    its state file (here through a link to it) truncates neither its report nor its rejects."""
    from bulk_updater import Source

    api = Api(leads(2))
    data = write_csv(tmp_path / "in.csv", ("id", "jobTitle"), [("lead0", "X"), ("nolead", "Y")])
    report, rejects, state = tmp_path / "r.csv", tmp_path / "rej.csv", tmp_path / "s.sqlite3"
    async with BulkUpdater(sender=api, rate=0) as updater:
        await updater.run(Source(data), report=report, rejects=rejects)
    before = report.read_bytes(), rejects.read_bytes()
    (tmp_path / "link.sqlite3").symlink_to(state.name)
    held = StateFile(state)  # another run
    try:
        for name in (state, tmp_path / "link.sqlite3"):
            async with BulkUpdater(sender=api, skip_unchanged=True, state=name, rate=0) as updater:
                with pytest.raises(StateLockedError, match="another run is using this state"):
                    await updater.run(Source(data), report=report, rejects=rejects)
    finally:
        held.close()
    assert (report.read_bytes(), rejects.read_bytes()) == before
    assert len(api.sent) == 2  # the first run's only


async def test_a_job_cancelled_while_its_state_file_opens_lets_go_of_it(tmp_path: Path) -> None:
    from bulk_updater.engine.state_opening import open_unchanged
    from bulk_updater.settings import Settings
    from bulk_updater.state.lock import in_use

    path = tmp_path / "s.sqlite3"
    StateFile(path).close()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # the opening thread waits for SQLite's lock
    waiting = threading.Event()
    handler = logging.Handler()
    handler.emit = lambda record: waiting.set()  # type: ignore[method-assign]
    logging.getLogger("bulk_updater").addHandler(handler)
    try:
        job = asyncio.create_task(open_unchanged(Settings.build(state=path), []))
        # the thread holds the file and says it waits for SQLite's lock
        assert await asyncio.to_thread(waiting.wait, 30)
    finally:
        logging.getLogger("bulk_updater").removeHandler(handler)
    assert in_use(path)
    (opening,) = (t for t in threading.enumerate() if t.name == "bulk-updater-state-open")
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job
    other.execute("ROLLBACK")
    other.close()
    await asyncio.to_thread(opening.join, 30)  # the thread opened the file, for no job: closed
    assert not opening.is_alive()
    assert not in_use(path)


async def test_a_state_file_of_another_key_is_refused_before_any_request(
    tmp_path: Path, virtual_time: object
) -> None:
    api = Api(leads(3))
    state = tmp_path / "state.sqlite3"
    rows = [{"id": f"lead{i}", "jobTitle": "T"} for i in range(3)]
    options = {"sender": api, "skip_unchanged": True, "state": state, "rate": 0}
    async with BulkUpdater(api_key="sk_one", **options) as updater:
        assert (await updater.run(rows)).counts[Status.UPDATED] == 3
    async with BulkUpdater(api_key="sk_two", **options) as updater:
        with pytest.raises(StateError, match="the state file of another account") as refused:
            await updater.run(rows)
    assert "sk_one" not in str(refused.value)
    assert "sk_two" not in str(refused.value)
    assert len(api.sent) == 3
    async with BulkUpdater(api_key="sk_one", **options) as updater:
        assert (await updater.run(rows)).counts[Status.UNCHANGED] == 3


async def test_damaged_entries_are_sent_and_rewritten_with_one_warning(
    tmp_path: Path, virtual_time: object
) -> None:
    api = Api(leads(10))
    state = tmp_path / "state.sqlite3"
    rows = [{"id": f"lead{i}", "jobTitle": f"T{i}"} for i in range(10)]
    await night(api, rows, state)
    with contextlib.closing(sqlite3.connect(state)) as db:
        db.execute("UPDATE leads SET fields = 'oops' WHERE id IN ('lead2', 'lead7')")
        db.commit()
    async with BulkUpdater(
        sender=api, skip_unchanged=True, state=state, rate=0, backoff_base=0
    ) as updater:
        summary = await updater.run(rows)
    assert (summary.counts[Status.UPDATED], summary.counts[Status.UNCHANGED]) == (2, 8)
    assert [lead for lead, _ in api.sent[10:]] == ["lead2", "lead7"]
    assert summary.warnings == [
        f"state: {state}: 2 damaged entries counted as unknown: their rows were sent, to be "
        "remembered afresh"
    ]
    assert remembered(state) == {f"lead{i}": {"jobTitle": f"T{i}"} for i in range(10)}
    counts, sent = await night(api, rows, state)
    assert (counts[Status.UNCHANGED], sent) == (10, [])


async def test_the_state_file_names_the_input_by_its_absolute_path(
    tmp_path: Path, virtual_time: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bulk_updater import Source

    monkeypatch.chdir(tmp_path)
    write_csv(tmp_path / "nightly.csv", ("id", "jobTitle"), [("lead0", "T")])
    state = tmp_path / "state.sqlite3"
    async with BulkUpdater(sender=Api(leads(1)), skip_unchanged=True, state=state) as updater:
        await updater.run(Source("nightly.csv"))
    store = StateFile(state, readonly=True)
    last = store.info().last_run
    store.close()
    assert last is not None
    assert last["input"] == str(tmp_path / "nightly.csv")

"""`Rules`: per-row rules applied in order, each asked only at the steps its protocols declare."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from bulk_updater import LeadUpdate, Outcome, Status
from bulk_updater.engine.admission import (
    Admission,
    Admitted,
    BeforeSend,
    Prefetch,
    Rules,
    Settles,
    Stops,
)
from bulk_updater.engine.outcomes import outcome_of
from bulk_updater.inputs import Row


def row(number: int) -> Row:
    return Row(number, LeadUpdate(id=f"lead{number}", jobTitle="CRO"))


class Passes(Admission):
    """Admits every row as it is; says what it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, int]] = []
        self.closed = False

    def admit(self, row: Row) -> Admitted:
        self.asked.append(("admit", row.number))
        return row

    def close(self) -> None:
        self.closed = True


class Skips(Passes):
    """Answers the rows it is given, without sending them."""

    def __init__(self, *numbers: int) -> None:
        super().__init__()
        self.numbers = numbers

    def admit(self, row: Row) -> Admitted:
        self.asked.append(("admit", row.number))
        if row.number in self.numbers:
            return outcome_of(row, Status.SKIPPED, "done before")
        return row


class DoesAll(Passes, BeforeSend, Prefetch, Settles, Stops):
    """A rule that declares every step."""

    def ready(self, row: Row) -> Admitted:
        self.asked.append(("ready", row.number))
        return row

    def prefetch(self, rows: list[Row]) -> None:
        self.asked.extend(("prefetch", row.number) for row in rows)

    def settled(self, row: Row, outcome: Outcome) -> Outcome:
        self.asked.append(("settled", row.number))
        return outcome

    def stopped(self, row: Row) -> Outcome | None:
        self.asked.append(("stopped", row.number))
        return outcome_of(row, Status.SKIPPED, "known") if row.number == 1 else None


class WaitsBeforeSend(Passes, BeforeSend):
    """Looks once the lead is free, and takes a while to."""

    def ready(self, row: Row) -> Awaitable[Admitted]:
        self.asked.append(("ready", row.number))
        return self._ready(row)

    async def _ready(self, row: Row) -> Admitted:
        await asyncio.sleep(0)
        return outcome_of(row, Status.UNCHANGED, "holds it already")


def test_a_rule_is_asked_only_at_the_steps_it_declares() -> None:
    plain, every = Passes(), DoesAll()
    rules = Rules([plain, every])
    assert len(rules.checks) == len(rules.prefetchers) == 1
    assert rules.checks[0] is rules.prefetchers[0] is every
    rules.prefetch([row(1), row(2)])
    assert rules.admit(row(2)) == row(2)
    assert rules.ready(row(2)) == row(2)
    assert rules.stopped(row(2)) is None
    assert plain.asked == [("admit", 2)]
    assert every.asked == [
        ("prefetch", 1),
        ("prefetch", 2),
        ("admit", 2),
        ("ready", 2),
        ("stopped", 2),
    ]


def test_the_first_rule_that_answers_decides_and_the_bookkeepers_are_told() -> None:
    skips, every = Skips(1), DoesAll()
    rules = Rules([skips, every])
    answered = rules.admit(row(1))
    assert isinstance(answered, Outcome)
    assert answered.status is Status.SKIPPED
    assert every.asked == [("settled", 1)]  # not asked to admit it: the row never reaches it
    assert rules.admit(row(2)) == row(2)
    assert every.asked == [("settled", 1), ("admit", 2)]


def test_a_stop_asks_the_rules_that_declare_it_for_a_known_outcome() -> None:
    every = DoesAll()
    rules = Rules([Passes(), every])
    kept = rules.stopped(row(1))
    assert kept is not None
    assert kept.message == "known"
    assert Rules([Passes()]).stopped(row(1)) is None


def test_one_rule_decides_by_its_own_admit() -> None:
    only = Skips(1)
    rules = Rules([only])
    assert rules.admit == only.admit
    assert not rules.checks
    assert not rules.prefetchers


async def test_a_check_that_waits_is_awaited_and_its_outcome_kept() -> None:
    waits = WaitsBeforeSend()
    rules = Rules([Passes(), waits, DoesAll()])
    pending = rules.ready(row(3))
    assert isinstance(pending, Awaitable)
    decided = await pending
    assert isinstance(decided, Outcome)
    assert decided.status is Status.UNCHANGED


def test_closing_the_rules_closes_every_rule() -> None:
    plain, every = Passes(), DoesAll()
    Rules([plain, every]).close()
    assert plain.closed
    assert every.closed


class KeepsFlags(Passes):
    """A rule with flags named like the steps' methods: it declares none of the steps."""

    def __init__(self) -> None:
        super().__init__()
        self.stopped = False
        self.ready = True
        self.prefetch = None


def test_a_step_is_declared_by_a_base_class_not_guessed_from_attributes() -> None:
    rule = KeepsFlags()
    rules = Rules([rule])
    assert (rules.checks, rules.prefetchers) == ([], [])
    assert rules.stopped(row(1)) is None
    assert rule.asked == []

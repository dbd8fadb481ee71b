"""Rows whose admission takes time, settled in input order; a stop takes every waiting row once."""

from __future__ import annotations

import asyncio

from bulk_updater import LeadUpdate
from bulk_updater.engine.admission import Admitted
from bulk_updater.engine.ordered import InOrder
from bulk_updater.inputs import Row


def row(number: int) -> Row:
    return Row(number, LeadUpdate(id=f"lead{number}", jobTitle="CRO"))


async def test_rows_are_settled_in_input_order_whatever_order_they_decide_in() -> None:
    settled: list[int] = []
    in_order = InOrder(lambda row, admitted: settled.append(row.number))
    runner = asyncio.create_task(in_order.run())
    loop = asyncio.get_running_loop()
    first: asyncio.Future[Admitted] = loop.create_future()
    second: asyncio.Future[Admitted] = loop.create_future()
    in_order.add(row(1), first)
    in_order.add(row(2), second)
    second.set_result(row(2))
    first.set_result(row(1))
    await in_order.drained.wait()
    assert settled == [1, 2]
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)


async def test_a_stop_while_run_awaits_a_decision_takes_the_row_once() -> None:
    """The decision arrives, and a stop takes the waiting rows, before `run()` wakes up to it:
    `run()` must find the row gone (it once popped an empty deque: a traceback, exit 1)."""
    settled: list[int] = []
    in_order = InOrder(lambda row, admitted: settled.append(row.number))
    taken: list[tuple[Row, Admitted | None]] = []
    stopped = asyncio.Event()
    gate: asyncio.Future[Admitted] = asyncio.get_running_loop().create_future()

    async def decide() -> Admitted:
        return await gate

    def stop(_: object) -> None:
        taken.extend(in_order.cancel())
        stopped.set()

    runner = asyncio.create_task(in_order.run())
    in_order.add(row(1), decide())
    decision = in_order.pending[0][1]
    # Called back before `run()` (which awaits the decision later): the stop comes first.
    decision.add_done_callback(stop)
    gate.set_result(row(1))
    await stopped.wait()  # `run()` woke up to the decision before this
    assert taken == [(row(1), row(1))]
    assert not runner.done()  # it waits for more rows, as after any drain
    assert settled == []  # the stop gives the row its outcome; `run()` settles it not again
    assert in_order.drained.is_set()
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)

"""The command tunes Python's collector for its job (`cli/job.py` `run_async`); the library,
which runs inside other programs, does not."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import asyncio, gc, json
from bulk_updater import BulkUpdater
from bulk_updater.cli.job import run_async
assert BulkUpdater  # the library, loaded: the collector is still as Python set it
before = gc.get_threshold()[0], gc.get_freeze_count()
async def inside():
    return gc.get_threshold()[0], gc.get_freeze_count()
print(json.dumps([before, run_async(inside())]))
"""


def test_the_command_freezes_what_start_up_made_and_collects_the_young_less_often() -> None:
    from bulk_updater.cli.job import YOUNG_COLLECTION

    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    (threshold, frozen), (threshold_in, frozen_in) = json.loads(done.stdout)
    assert (threshold, frozen) == (700, 0)
    assert threshold_in == YOUNG_COLLECTION
    assert frozen_in > 10_000  # the modules' objects, out of the collector's sight

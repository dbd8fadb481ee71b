"""The engine: `BulkUpdater` (the library's entry point) and the pipeline of one job.

- `updater`    `BulkUpdater`: settings, the HTTP session, `stream()` and `run()`
- `pipeline`   feeder, per-lead chains, workers and wind-down of one job
- `admission`  per-row rules applied before a row is sent (`Resume`)
- `sink`       what consumes outcomes: the tally, the report, the caller's callback
- `stream`     `OutcomeStream`, what `stream()` returns, and the streams an updater still runs
"""

from .stream import OutcomeStream
from .updater import BulkUpdater

__all__ = ["BulkUpdater", "OutcomeStream"]

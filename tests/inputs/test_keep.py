"""`Source(keep=...)`: the kept columns of a table or of JSON lines, found by name, carried as each
row's `ref` onto its `Outcome`."""

from __future__ import annotations

from pathlib import Path

import pytest

from bulk_updater import BulkUpdater, ConfigError, Source, Status
from tests.conftest import FakeSender, write_csv


async def test_a_sources_kept_cells_are_each_outcomes_ref(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "in.csv", ("", "CRM Id", "id", "city"),
                     [("", "C-1", "a", "Oslo"), ("", "C-2", "b/c", "Rome")])  # fmt: skip
    sender = FakeSender(latency=0)
    async with BulkUpdater(sender=sender, rate=0) as updater:
        source = Source(path, keep=["crm id", "City", "CRM Id"])
        assert source.keep == ["CRM Id", "city"]
        outcomes = sorted([o async for o in updater.stream(source)], key=lambda o: o.row)
    assert [(o.status, o.ref) for o in outcomes] == [
        (Status.UPDATED, {"CRM Id": "C-1", "city": "Oslo"}),
        (Status.INVALID, {"CRM Id": "C-2", "city": "Rome"}),
    ]
    assert sender.bodies == [{"city": "Oslo"}]


def test_a_missing_column_with_no_close_name_lists_the_columns(tmp_path: Path) -> None:
    header = ("id", "city", *(f"Extra {n}" for n in range(8)))
    path = write_csv(tmp_path / "in.csv", header, [("a", "Oslo", *("x",) * 8)])
    with pytest.raises(ConfigError) as refused:
        Source(path, keep=["Salesforce"])
    assert str(refused.value) == (
        f"--keep Salesforce: {path} has no such column (its columns are `id`, `city`, "
        "`Extra 0`, `Extra 1`, `Extra 2`, `Extra 3`, `Extra 4`, `Extra 5`, ...)"
    )

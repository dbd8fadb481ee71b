"""The input's lock in a library job: the same file to the same account is one run at a time;
another account, standard input and the caller's own rows are never held."""

from __future__ import annotations

from pathlib import Path

import pytest

from bulk_updater import BulkUpdater, InputLockedError, Outcome, Source, Status
from bulk_updater.sandbox import Sandbox
from tests.conftest import make_leads

KEY = "sk_test_input_lock"


async def test_a_second_run_of_the_same_input_and_account_is_refused(tmp_path: Path) -> None:
    leads = make_leads(3)
    path = tmp_path / "nightly.csv"
    path.write_text("id,jobTitle\n" + "".join(f"{lead},Y\n" for lead in leads))
    seen: list[str] = []
    async with Sandbox(leads, api_key=KEY) as sb, Sandbox(leads, api_key=KEY) as other:

        async def meanwhile(outcome: Outcome) -> None:
            if seen:
                return
            async with BulkUpdater(api_key=KEY, base_url=sb.url, rate=0) as second:
                with pytest.raises(InputLockedError, match="another run is sending this input"):
                    await second.run(Source(path))
                rows = [{"id": lead, "jobTitle": "Z"} for lead in leads]  # not a file: not held
                seen.append(str((await second.run(rows)).counts[Status.UPDATED]))
            async with BulkUpdater(api_key=KEY, base_url=other.url, rate=0) as elsewhere:
                seen.append(str((await elsewhere.run(Source(path))).counts[Status.UPDATED]))

        async with BulkUpdater(api_key=KEY, base_url=sb.url, rate=0, concurrency=1) as first:
            summary = await first.run(Source(path), on_outcome=meanwhile)
        async with BulkUpdater(api_key=KEY, base_url=sb.url, rate=0) as later:
            again = await later.run(Source(path))  # the first run let go of it
    assert seen == ["3", "3"]
    assert summary.counts[Status.UPDATED] == 3
    assert again.counts[Status.UPDATED] == 3

"""The input's lock in a library job: the same file to the same account is one run at a time;
another account, standard input and the caller's own rows are never held."""

from __future__ import annotations

from pathlib import Path

import pytest

from bulk_updater import BulkUpdater, InputLockedError, Outcome, Source, Status
from bulk_updater.account import key_digest
from bulk_updater.sandbox import Sandbox
from bulk_updater.state.inputlock import hold_input, input_lock_path
from bulk_updater.state.paths import Account
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


def test_the_same_input_with_another_key_is_another_run(tmp_path: Path) -> None:
    """Two workspace keys are two workspaces (no workspace id tells them apart): the lock is named
    by the key's digest as well, so an agency's shared list goes to each workspace at once."""
    path = str(tmp_path / "shared.csv")
    Path(path).write_text("id,jobTitle\n")
    label = "https://api.sendkit.ai"
    first = hold_input(path, "shared.csv", Account(label, key_digest("sk_workspace_one")))
    assert first is not None
    try:
        second = hold_input(path, "shared.csv", Account(label, key_digest("sk_workspace_two")))
        assert second is not None
        second.release()
        same = Account(label, key_digest("sk_workspace_one"))
        with pytest.raises(InputLockedError, match=r"api\.sendkit\.ai, key sha256 [0-9a-f]{16}"):
            hold_input(path, "shared.csv", same)
    finally:
        first.release()
    names = " ".join(p.name for p in input_lock_path(path, same).parent.iterdir())
    assert "sk_workspace" not in names

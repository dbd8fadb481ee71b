"""One name per API account (`bulk_updater.account`) and the default state file it names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bulk_updater.account import account_label, account_name
from bulk_updater.state import default_state_path, state_dir

KEY = "sk_live_7fQ2mX9pLr4TzW8cKj3N"


def test_the_name_tells_accounts_apart_and_never_holds_the_key() -> None:
    names = {
        account_name("https://api.sendkit.ai", None, KEY),
        account_name("https://api.sendkit.ai", None, KEY + "x"),
        account_name("https://api.sendkit.ai", "ws1", KEY),
        account_name("https://api.sendkit.ai", "ws/1", KEY),
        account_name("https://api.sendkit.ai", "ws_1", KEY),
        account_name("http://127.0.0.1:8765", None, KEY),
        account_name("http://127.0.0.1:8766", None, KEY),
    }
    assert len(names) == 7
    for name in names:
        assert KEY not in name
        assert re.fullmatch(r"[A-Za-z0-9._-]+", name), name
    assert account_name("https://api.sendkit.ai", None, KEY).startswith("api.sendkit.ai.k")
    assert account_name("http://127.0.0.1:8765", "ws1", KEY).startswith("127.0.0.1-8765.ws_ws1.k")


def test_the_state_directory_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert state_dir({"XDG_STATE_HOME": str(tmp_path)}) == tmp_path / "bulk-updater"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    home_state = tmp_path / "home" / ".local" / "state" / "bulk-updater"
    assert state_dir({}) == home_state
    assert state_dir({"XDG_STATE_HOME": "relative/path"}) == home_state  # invalid: ignored
    path = default_state_path("https://api.sendkit.ai", None, KEY, {"XDG_STATE_HOME": "/x"})
    assert path.parent == Path("/x/bulk-updater")
    assert path.suffix == ".sqlite3"


def test_the_label_says_which_account_without_the_key() -> None:
    assert account_label("https://api.sendkit.ai/", None) == "https://api.sendkit.ai"
    assert (
        account_label("https://api.sendkit.ai", "ws_1") == "https://api.sendkit.ai workspace ws_1"
    )

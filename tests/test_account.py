"""`account_id()`: one stable name per API account, whatever the spelling, never the key."""

from __future__ import annotations

import hashlib
import re

from bulk_updater.account import account_id, account_label

KEY = "sk_live_7fQ2mX9pLr4TzW8cKj3N"


def test_the_same_account_has_the_same_name_however_its_url_is_spelt() -> None:
    name = account_id("https://api.sendkit.ai", None, KEY)
    assert re.fullmatch(r"[0-9a-f]{32}", name)
    assert account_id("https://API.sendkit.ai/", None, KEY) == name
    assert account_id("https://api.sendkit.ai:443", None, KEY) == name
    assert account_id("https://api.sendkit.ai", "", KEY) == name


def test_another_key_workspace_or_api_is_another_account() -> None:
    names = {
        account_id("https://api.sendkit.ai", None, KEY),
        account_id("https://api.sendkit.ai", None, KEY + "x"),
        account_id("https://api.sendkit.ai", "ws_1", KEY),
        account_id("https://api.sendkit.ai", "ws_2", KEY),
        account_id("http://127.0.0.1:8765", None, KEY),
    }
    assert len(names) == 5


def test_the_name_holds_neither_the_key_nor_its_digest() -> None:
    name = account_id("https://api.sendkit.ai", "ws_1", KEY)
    digest = hashlib.sha256(KEY.encode()).hexdigest()
    assert KEY not in name
    assert digest[:16] not in name


def test_the_label_says_which_account_without_the_key() -> None:
    assert account_label("https://api.sendkit.ai/", None) == "https://api.sendkit.ai"
    assert (
        account_label("https://api.sendkit.ai", "ws_1") == "https://api.sendkit.ai workspace ws_1"
    )

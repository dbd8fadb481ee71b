"""What the README shows must work: its cron lines install, its library example type-checks
under `mypy --strict`, and its option table agrees with `Settings`."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from bulk_updater.settings import FLAGS, Settings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


def test_every_cron_entry_is_one_line_with_five_time_fields() -> None:
    entries = [
        line
        for block in blocks("cron")
        for line in block.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert entries, "the README shows no cron entry"
    for entry in entries:
        assert not entry.rstrip().endswith("\\"), f"cron has no line continuation: {entry!r}"
        fields = entry.split()
        assert len(fields) > 5, entry
        for field in fields[:5]:
            assert re.fullmatch(r"[0-9*/,\-]+|@\w+", field), (field, entry)
        assert "bulk-updater" in entry


@pytest.mark.parametrize("plugin", [False, True])
def test_the_library_example_passes_mypy_strict(tmp_path: Path, plugin: bool) -> None:
    """As a user's project sees it: the package's source with its `py.typed`, with or without
    pydantic's mypy plugin."""
    assert (ROOT / "bulk_updater" / "py.typed").exists()
    section = README.split("## Library", 1)[1]
    example = re.search(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert example is not None
    (tmp_path / "example.py").write_text(example.group(1), encoding="utf-8")
    config = tmp_path / "mypy.ini"
    config.write_text("[mypy]\nstrict = True\n" + ("plugins = pydantic.mypy\n" if plugin else ""))
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(config), "--no-incremental",
         "example.py"],
        cwd=tmp_path, env={"MYPYPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def option_table() -> dict[str, str]:
    """`--flag` -> its default, from the README's option table."""
    table: dict[str, str] = {}
    for line in README.split("## Command line", 1)[1].split("\n## ", 1)[0].splitlines():
        match = re.match(r"\|\s*`(--[a-z-]+)[^`]*`[^|]*\|\s*([^|]*)\|", line)
        if match:
            table[match.group(1)] = match.group(2).strip().strip("`")
    return table


def same_default(shown: str, value: object) -> bool:
    if value is None or value is False:  # not set, or a flag: no default to show
        return shown == ""
    if isinstance(value, int | float):
        try:
            return float(shown) == float(value)
        except ValueError:
            return False
    return shown == str(value)


def test_the_option_table_agrees_with_settings() -> None:
    table = option_table()
    for name, flag in FLAGS.items():
        assert flag in table, f"{flag} is missing from the README's option table"
        default = Settings.model_fields[name].default
        assert same_default(table[flag], default), (flag, table[flag], default)

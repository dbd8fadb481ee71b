"""What the README and `docs/` show must work: every example is a file of `docs/examples/` that
the pages include as it is, the library examples pass `mypy --strict` and run against the
sandbox, the cron lines install, the job file reads, the option table agrees with `Settings`,
and every link between the pages leads somewhere."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bulk_updater.sandbox import DEFAULT_SANDBOX_KEY, SandboxThread, load_leads
from bulk_updater.settings import FLAGS, Settings

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXAMPLES = DOCS / "examples"
PAGES = sorted([ROOT / "README.md", ROOT / "CONTRIBUTING.md", ROOT / "CHANGELOG.md",
                ROOT / "bench" / "README.md", *DOCS.rglob("*.md")])  # fmt: skip
LIBRARY_EXAMPLES = sorted(EXAMPLES.glob("*.py"))
INCLUDE = re.compile(r"<!-- include: (\S+) -->\n```\w*\n(.*?)```", flags=re.DOTALL)


def text(page: Path) -> str:
    return page.read_text(encoding="utf-8")


def blocks(page: Path, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text(page), flags=re.DOTALL)


def test_the_readme_is_a_landing_page() -> None:
    assert len(text(ROOT / "README.md").splitlines()) <= 160


# ---------------------------------------------------------------------------------------------
# examples: files, included as they are


def test_an_included_example_is_the_file_itself() -> None:
    included = 0
    for page in PAGES:
        for path, shown in INCLUDE.findall(text(page)):
            example = (page.parent / path).resolve()
            assert example.parent == EXAMPLES, f"{page.name} includes {path}, not an example"
            assert shown == text(example), f"{page.name} shows {path} other than it is"
            included += 1
    assert included >= len(LIBRARY_EXAMPLES)


def test_every_example_is_included_or_linked_from_a_page() -> None:
    shown = " ".join(text(page) for page in PAGES)
    for example in EXAMPLES.iterdir():
        assert f"examples/{example.name}" in shown, f"no page shows or links {example.name}"


@pytest.mark.parametrize("page", ["README.md", "docs/library.md"])
def test_a_library_example_is_shown_under_a_library_heading(page: str) -> None:
    section = text(ROOT / page).split("## Library", 1)
    assert len(section) == 2, f"{page} has no Library heading"
    assert re.search(r"<!-- include: \S+\.py -->\n```python\n", section[1]), page


def test_every_cron_entry_is_one_line_with_five_time_fields() -> None:
    shown = [block for page in PAGES for block in blocks(page, "cron")]
    files = [text(path) for path in EXAMPLES.glob("*.cron")]
    entries = [
        line
        for block in shown + files
        for line in block.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert files, "docs/examples holds no cron file"
    assert len(entries) >= 4, "the docs show fewer cron entries than they did"
    for entry in entries:
        assert not entry.rstrip().endswith("\\"), f"cron has no line continuation: {entry!r}"
        fields = entry.split()
        assert len(fields) > 5, entry
        for field in fields[:5]:
            assert re.fullmatch(r"[0-9*/,\-]+|@\w+", field), (field, entry)
        assert "bulk-updater" in entry


# ---------------------------------------------------------------------------------------------
# library examples: typed, and run against the sandbox


@pytest.mark.parametrize("plugin", [False, True])
def test_the_library_examples_pass_mypy_strict(tmp_path: Path, plugin: bool) -> None:
    """As a user's project sees them: the package's source with its `py.typed`, with or without
    pydantic's mypy plugin."""
    assert (ROOT / "bulk_updater" / "py.typed").exists()
    assert LIBRARY_EXAMPLES
    config = tmp_path / "mypy.ini"
    config.write_text("[mypy]\nstrict = True\n" + ("plugins = pydantic.mypy\n" if plugin else ""))
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(config), "--no-incremental",
         "--cache-dir", str(tmp_path / "cache"), *map(str, LIBRARY_EXAMPLES)],
        cwd=tmp_path, env={"MYPYPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


#: Each example's exit code, and fields it sets on leads of `samples/leads.json`.
RUNS: dict[str, tuple[int, dict[str, dict[str, Any]]]] = {
    "quickstart.py": (0, {
        "3c1f33c9df3f71ffa532a3df": {"jobTitle": "CRO", "tags": ["vip"]},
        "54fcaaefb10934a80be9bc7c": {"city": "Oslo"},
    }),
    # samples/updates.csv holds three ids that do not exist, as `make demo` shows: exit 1.
    "library.py": (1, {
        "15e851c739c4a57aea5c329f": {"jobTitle": "COO", "tags": ["vip"]},
        "bb37b2145a52f1c55e78901f": {"city": "Oslo"},
        "1df779718796889585136f03": {"tags": ["vip", "enterprise"]},
    }),
    "async_rows.py": (0, {
        "3439282443faf37d544b8b80": {"jobTitle": "Head of Procurement"},
        "6ef1a574e007ced5fa895c42": {"jobTitle": "CRO"},
    }),
    "shared_budget.py": (0, {
        "1912cd555b8bdbfc3ae0d723": {"jobTitle": "Partner Manager"},
        "3c1f33c9df3f71ffa532a3df": {"customFields": {"industry": "SaaS", "source": "website",
                                                      "employees": 250, "region": "EMEA"}},
    }),
}  # fmt: skip


def test_every_library_example_is_run() -> None:
    assert sorted(RUNS) == [path.name for path in LIBRARY_EXAMPLES]


@pytest.mark.parametrize("name", sorted(RUNS))
def test_a_library_example_runs_against_the_sandbox(
    name: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Run from a copy of the clone's folder, with the sandbox's key and address in the
    environment as a user's shell would hold them."""
    exit_code, expected = RUNS[name]
    shutil.copytree(ROOT / "samples", tmp_path / "samples")
    env = {"PATH": os.environ["PATH"], "SENDKIT_API_KEY": DEFAULT_SANDBOX_KEY}
    if name == "shared_budget.py":
        env["BULK_UPDATER_REDIS_URL"] = request.getfixturevalue("redis_url")
    with SandboxThread(load_leads(ROOT / "samples" / "leads.json")) as sandbox:
        env["SENDKIT_BASE_URL"] = sandbox.url
        done = subprocess.run(
            [sys.executable, str(EXAMPLES / name)],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == exit_code, done.stdout + done.stderr
        assert "Traceback" not in done.stderr, done.stderr
        for lead_id, fields in expected.items():
            lead = sandbox.state.leads[lead_id]
            assert {field: lead[field] for field in fields} == fields, lead_id


def test_the_job_file_example_reads(tmp_path: Path) -> None:
    """`--job docs/examples/nightly.toml` maps the export's headers and leaves the rest out."""
    export = tmp_path / "nightly.csv"
    export.write_text(
        "Person - SendKit ID,Organization - Name,Owner\n3c1f33c9df3f71ffa532a3df,Northwind,ann\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "bulk_updater", "run", str(export), "--job",
         str(EXAMPLES / "nightly.toml"), "--dry-run"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "companyName" in done.stdout
    assert "Owner" in done.stdout


# ---------------------------------------------------------------------------------------------
# the option table, and the links


def option_table() -> dict[str, str]:
    """`--flag` -> its default, from the option table of `docs/command-line.md`."""
    page = text(DOCS / "command-line.md")
    table: dict[str, str] = {}
    for line in page.split("## Options of `run`", 1)[1].split("\n## ", 1)[0].splitlines():
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
        assert flag in table, f"{flag} is missing from the option table of docs/command-line.md"
        default = Settings.model_fields[name].default
        assert same_default(table[flag], default), (flag, table[flag], default)


def anchors(page: Path) -> set[str]:
    """The anchors GitHub gives a page's headings."""
    headings = re.findall(r"^#+ (.+)$", re.sub(r"```.*?```", "", text(page), flags=re.DOTALL),
                          flags=re.MULTILINE)  # fmt: skip
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def test_every_link_between_the_pages_leads_somewhere() -> None:
    for page in PAGES:
        for target in re.findall(r"\]\(([^)\s]+)\)", text(page)):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            assert linked.exists(), f"{page.relative_to(ROOT)} links to {target}: no such file"
            if anchor:
                assert anchor in anchors(linked), f"{page.relative_to(ROOT)} links to {target}"

"""One import path: everything public comes from `bulk_updater`, listed in a sorted `__all__`."""

from __future__ import annotations

import importlib
import inspect
import pydoc
import subprocess
import sys
import types
from importlib.metadata import version
from pathlib import Path

import pytest

import bulk_updater
from bulk_updater import errors

# What users write `from bulk_updater import ...` for (spec, Library section).
USER_FACING = (
    "BulkUpdater",
    "LeadUpdate",
    "Outcome",
    "Status",
    "Summary",
    "Source",
    "__version__",
)


def test_all_is_sorted_and_unique() -> None:
    names = bulk_updater.__all__
    assert names == sorted(names)
    assert len(names) == len(set(names))


@pytest.mark.parametrize("name", bulk_updater.__all__)
def test_every_name_in_all_is_importable(name: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"from bulk_updater import {name}", namespace)  # the way users write it
    assert namespace[name] is getattr(bulk_updater, name)


@pytest.mark.parametrize("name", USER_FACING)
def test_user_facing_names_are_exported(name: str) -> None:
    assert name in bulk_updater.__all__


def test_every_exception_is_exported() -> None:
    exceptions = {
        name
        for name, obj in vars(errors).items()
        if inspect.isclass(obj) and issubclass(obj, Exception) and obj.__module__ == errors.__name__
    }
    assert {"BulkUpdaterError", "ConfigError", "InputError"} <= exceptions
    assert exceptions <= set(bulk_updater.__all__)


def test_every_exception_has_the_one_base_class() -> None:
    for name in bulk_updater.__all__:
        obj = getattr(bulk_updater, name)
        if inspect.isclass(obj) and issubclass(obj, Exception) and name != "TransportError":
            # TransportError is a row-level transport failure handled inside the job
            assert issubclass(obj, bulk_updater.BulkUpdaterError), name


def test_everything_imported_into_the_package_is_exported() -> None:
    """Like httpx's test_exported_members: a public name in the package namespace that is not
    a submodule must be listed in `__all__` (and nothing else may be)."""
    public = {
        name
        for name, obj in vars(bulk_updater).items()
        if not name.startswith("_") and not isinstance(obj, types.ModuleType)
    }
    assert public == set(bulk_updater.__all__) - {"__version__"}


def test_exported_objects_come_from_the_package() -> None:
    for name in bulk_updater.__all__:
        if name == "__version__":
            continue
        module = getattr(getattr(bulk_updater, name), "__module__", "")
        assert module.startswith("bulk_updater."), (name, module)


def test_public_classes_of_the_library_modules_are_exported() -> None:
    """Classes a user meets in results or raises (models, errors, sources) are all exported."""
    exported = set(bulk_updater.__all__)
    for module_name in ("models", "errors", "engine"):
        module = importlib.import_module(f"bulk_updater.{module_name}")
        for name, obj in vars(module).items():
            if name.startswith("_") or not inspect.isclass(obj):
                continue
            if obj.__module__ != module.__name__:
                continue  # imported there, defined elsewhere
            assert name in exported, f"bulk_updater.{module_name}.{name} is not in __all__"


def test_version_comes_from_the_package_metadata() -> None:
    assert bulk_updater.__version__ == version("bulk-updater")


def test_dir_and_help_show_the_public_names_before_they_are_loaded() -> None:
    assert set(bulk_updater.__all__) <= set(dir(bulk_updater))
    shown = pydoc.render_doc(bulk_updater, renderer=pydoc.plaintext)
    for name in ("BulkUpdater", "Outcome", "Source", "StateLockedError"):
        assert f"class {name}(" in shown, name


def test_an_attribute_error_while_a_name_loads_is_an_import_error_with_its_cause(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(name: str, package: str | None = None) -> types.ModuleType:
        raise AttributeError("'NoneType' object has no attribute 'loop'")

    monkeypatch.delitem(vars(bulk_updater), "BulkUpdater", raising=False)  # not loaded yet
    monkeypatch.setattr(bulk_updater, "_import_module", broken)
    with pytest.raises(ImportError, match=r"importing bulk_updater\.engine failed") as raised:
        exec("from bulk_updater import BulkUpdater", {})
    assert isinstance(raised.value.__cause__, AttributeError)


def test_mypy_refuses_a_misspelt_name(tmp_path: Path) -> None:
    """The lazy loading is hidden from type checkers: a misspelt import is an error there, and
    a real name keeps its exact type."""
    program = tmp_path / "program.py"
    program.write_text(
        "import bulk_updater\n"
        "from bulk_updater import BulkUpdatr\n"
        "reveal_type(bulk_updater.Summary)\n"
        "version: str = bulk_updater.__version__\n"
    )
    root = Path(bulk_updater.__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--config-file", "",
         "--cache-dir", str(tmp_path / "cache"), str(program)],
        cwd=tmp_path, env={"MYPYPATH": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert 'has no attribute "BulkUpdatr"' in done.stdout, done.stdout + done.stderr
    assert "bulk_updater.models.Summary" in done.stdout, done.stdout
    assert "Found 1 error in 1 file" in done.stdout, done.stdout

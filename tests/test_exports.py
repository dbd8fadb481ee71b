"""One import path: everything public comes from `bulk_updater`, listed in a sorted `__all__`."""

from __future__ import annotations

import importlib
import inspect
import types
from importlib.metadata import version

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

"""The trees in `errors.py`'s docstring are the package's exceptions, all of them, as they are.

The package's modules are walked and every exception class defined in them is collected; every
builtin exception a `raise` in the package names is collected from the source. Both must be in the
trees, every name in the trees must be one of them, and each drawn child must subclass its parent.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pydantic
import pytest

import bulk_updater
from bulk_updater import errors

PACKAGE = Path(bulk_updater.__file__).parent
# A line of a tree: the drawing (`│   └── `) before a name, then the name.
TREE_LINE = re.compile(r"^(?P<drawing>(?:[│ ]   )*(?:[├└]── )?)(?P<name>[A-Za-z][\w.]*)\s{2,}\S")
# Raised to end an iteration, as the iterator protocol asks: not errors.
PROTOCOL = {"StopIteration", "StopAsyncIteration"}


def package_exceptions() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for module in pkgutil.walk_packages([str(PACKAGE)], "bulk_updater."):
        if module.name.endswith("__main__"):  # it runs the command on import
            continue
        imported = importlib.import_module(module.name)
        for name, obj in vars(imported).items():
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseException)
                and obj.__module__ == imported.__name__
            ):
                assert found.setdefault(name, obj) is obj, f"two exceptions named {name}"
    return found


def raised_builtins() -> set[str]:
    """Builtin exception types that a `raise` in the package names."""
    names: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Raise) and node.exc is not None:
                exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                if isinstance(exc, ast.Name) and _is_builtin_exception(exc.id):
                    names.add(exc.id)
    return names - PROTOCOL


def _is_builtin_exception(name: str) -> bool:
    obj = getattr(builtins, name, None)
    return inspect.isclass(obj) and issubclass(obj, BaseException)


def drawn() -> list[tuple[str, str | None]]:
    """Each name in the trees, with the name it is drawn under (None at a tree's root)."""
    assert errors.__doc__ is not None
    edges: list[tuple[str, str | None]] = []
    stack: list[str] = []
    for line in errors.__doc__.splitlines():
        match = TREE_LINE.match(line)
        if match is None:
            stack = [] if not line.strip() else stack
            continue
        depth = len(match["drawing"]) // 4
        del stack[depth:]
        edges.append((match["name"], stack[-1] if stack else None))
        stack.append(match["name"])
    return edges


def resolve(name: str, ours: dict[str, type[BaseException]]) -> type[BaseException]:
    if name == "pydantic.ValidationError":
        return pydantic.ValidationError
    if name in ours:
        return ours[name]
    assert _is_builtin_exception(name), f"{name} is drawn in errors.py but is no exception"
    obj: type[BaseException] = getattr(builtins, name)
    return obj


def test_the_trees_are_read() -> None:
    names = [name for name, _ in drawn()]
    assert names[:2] == ["BulkUpdaterError", "ConfigError"]
    assert ("StateLockedError", "StateError") in drawn()
    assert ("pydantic.ValidationError", "ValueError") in drawn()


def test_every_exception_class_of_the_package_is_drawn() -> None:
    ours = package_exceptions()
    assert {"BulkUpdaterError", "TransportError", "Stopped", "Broken"} <= set(ours)
    missing = set(ours) - {name for name, _ in drawn()}
    assert not missing, f"add to the trees in errors.py: {sorted(missing)}"


def test_every_builtin_exception_the_package_raises_is_drawn() -> None:
    raised = raised_builtins()
    assert {"ValueError", "TypeError", "RuntimeError"} <= raised
    missing = raised - {name for name, _ in drawn()}
    assert not missing, f"add to the trees in errors.py: {sorted(missing)}"


def test_every_drawn_name_is_raised_or_defined() -> None:
    ours = package_exceptions()
    known = set(ours) | raised_builtins() | {"pydantic.ValidationError"}
    stale = {name for name, _ in drawn()} - known
    assert not stale, f"no longer in the package, remove from errors.py: {sorted(stale)}"


@pytest.mark.parametrize(("child", "parent"), [e for e in drawn() if e[1] is not None])
def test_each_drawn_child_subclasses_its_parent(child: str, parent: str) -> None:
    ours = package_exceptions()
    assert issubclass(resolve(child, ours), resolve(parent, ours))


def test_each_root_is_drawn_under_nothing_of_ours() -> None:
    ours = package_exceptions()
    for name, parent in drawn():
        if parent is None and name in ours:
            bases = {base.__name__ for base in ours[name].__mro__[1:]}
            assert not bases & set(ours), f"{name} is drawn as a root but subclasses one of ours"

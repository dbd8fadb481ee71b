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
from aiohttp import web

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


def package_sources() -> dict[Path, ast.Module]:
    """Every module of the package, `__main__.py` too (it is parsed, never imported)."""
    return {path: ast.parse(path.read_text(encoding="utf-8")) for path in PACKAGE.rglob("*.py")}


def raised_builtins() -> set[str]:
    """Builtin exception types that a `raise` in the package names."""
    names: set[str] = set()
    for tree in package_sources().values():
        for node in ast.walk(tree):
            if isinstance(node, ast.Raise) and node.exc is not None:
                exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                if isinstance(exc, ast.Name) and _is_builtin_exception(exc.id):
                    names.add(exc.id)
    return names - PROTOCOL


def raised_attributes() -> dict[str, type[BaseException]]:
    """What a `raise module.Name` (or `raise module.Name(...)`) in the package raises, by its
    name in the source, resolved in the namespace of the module that raises it."""
    found: dict[str, type[BaseException]] = {}
    for path, tree in package_sources().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Raise) and node.exc is not None:
                exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                if isinstance(exc, ast.Attribute) and exc.attr[:1].isupper():
                    namespace = vars(importlib.import_module(_module_name(path)))
                    obj = eval(ast.unparse(exc), namespace)  # a name the module has imported
                    assert inspect.isclass(obj), exc.attr
                    assert issubclass(obj, BaseException), exc.attr
                    found[ast.unparse(exc)] = obj
    return found


#: The `raise` sites whose exception is a variable or a call's result, by their source text (the
#: same in every module that has it), with what each raises: a new one is added here, and what
#: it raises drawn.
RAISED_THROUGH = {
    "_folder_error": "ConfigError (`report.meta`)",
    "_invalid": "BadRequest (`sandbox.contract`, `sandbox.search`)",
    "not_a_file": "StateError (`state`)",
    "error": "what reading the input raised, as it was (`inputs.rows`)",
    "failure": "what a worker or the input raised, as it was (`engine.pipeline`)",
    "named": "the BulkUpdaterError caught, naming the user's file (`ui`)",
    "proxy_forbids": "ConfigError (`client`)",
    "proxy_refused": "ConfigError (`client`)",
    "self._error": "what reading the input or starting the sandbox raised (OSError), as it was",
    "locked_error": "StateLockedError (`state`)",
    "stopped_error": "StateLockedError (`state`)",
    "self.calls.lose": "LimiterDown (`limits.schedule_calls`)",
    "timed_out": "TransportError (`client`)",
    "connect_refused": "TransportError (`client`)",
    "transport_error": "TransportError (`client`)",
}


def raised_through() -> set[str]:
    sites: set[str] = set()
    for tree in package_sources().values():
        for node in ast.walk(tree):
            if isinstance(node, ast.Raise) and node.exc is not None:
                exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                named = isinstance(exc, ast.Name) and exc.id[:1].isupper()
                attribute = isinstance(exc, ast.Attribute) and exc.attr[:1].isupper()
                if not named and not attribute:
                    sites.add(ast.unparse(exc))
    return sites


def exception_classes_in_source() -> set[str]:
    """Exception classes defined anywhere in the package's source: in a function or a class,
    in `__main__.py`; known by their bases (ours, builtins, or named `...Error`)."""
    known = set(package_exceptions())
    classes = [
        node for tree in package_sources().values() for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
    ]  # fmt: skip
    found: set[str] = set()
    while True:  # a class of a class found is found too
        more = {
            node.name for node in classes
            if any(_is_exception_base(base, known | found) for base in node.bases)
        } - found  # fmt: skip
        if not more:
            return found
        found |= more


def _is_exception_base(base: ast.expr, known: set[str]) -> bool:
    name = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "")
    return name in known or _is_builtin_exception(name) or name.endswith(("Error", "Exception"))


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


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


#: Drawn names of other packages' exceptions.
THIRD_PARTY: dict[str, type[BaseException]] = {
    "pydantic.ValidationError": pydantic.ValidationError,
    "aiohttp.web.HTTPNotFound": web.HTTPNotFound,
}
#: Builtins drawn although no `raise` names them: what the calls the package makes raise.
UNRAISED = {"OSError"}  # a write on a full disk, a port in use: from the OS calls themselves


def resolve(name: str, ours: dict[str, type[BaseException]]) -> type[BaseException]:
    if name in THIRD_PARTY:
        return THIRD_PARTY[name]
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
    assert set(names) >= UNRAISED


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


def test_every_exception_class_in_the_source_is_drawn() -> None:
    """Classes `package_exceptions()` cannot see (nested, in `__main__.py`) too."""
    missing = exception_classes_in_source() - {name for name, _ in drawn()}
    assert not missing, f"add to the trees in errors.py: {sorted(missing)}"


def test_every_exception_raised_as_an_attribute_is_drawn() -> None:
    raised = raised_attributes()
    assert "web.HTTPNotFound" in raised
    ours = package_exceptions()
    shown = {resolve(name, ours) for name, _ in drawn()}
    missing = {name for name, obj in raised.items() if obj not in shown}
    assert not missing, f"add to the trees in errors.py: {sorted(missing)}"


def test_every_raise_of_a_variable_is_listed() -> None:
    sites = raised_through()
    assert sites == set(RAISED_THROUGH), (
        f"list in RAISED_THROUGH (and draw what it raises): {sorted(sites - set(RAISED_THROUGH))}"
        f"; no longer in the package: {sorted(set(RAISED_THROUGH) - sites)}"
    )


def test_every_drawn_name_is_raised_or_defined() -> None:
    ours = package_exceptions()
    known = set(ours) | raised_builtins() | set(THIRD_PARTY) | UNRAISED
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

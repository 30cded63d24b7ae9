"""The shape of the package, drawn from its imports: no cycles, no command importing another
command, no module over the size limit. Static (ast), so it runs in milliseconds."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "worker"
MAX_LINES = 260
# Shared helpers under commands/ that every command may import; not commands themselves.
COMMAND_HELPERS = {"worker.commands.options"}


def _module_name(path: Path) -> str:
    parts = ["worker", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@functools.cache  # the files do not change during a test session
def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def _imports(path: Path, known: set[str]) -> set[str]:
    """The worker modules a module imports, at any depth (function-level imports count)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        found.update(name for name in names if name in known)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(path, known) - {name} for name, path in modules.items()}


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph.get(start, ()))
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, ()))
    return seen


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each group of modules that import one another, directly or through others."""
    cycles: list[list[str]] = []
    for node in sorted(graph):
        reach = _reachable(graph, node)
        if node in reach and not any(node in cycle for cycle in cycles):
            cycles.append(sorted(n for n in reach if node in _reachable(graph, n)))
    return cycles


def _is_package(name: str) -> bool:
    return _modules()[name].name == "__init__.py"


def test_the_finder_sees_a_cycle() -> None:
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    graph = {
        name: {dep for dep in deps if not _is_package(dep)} for name, deps in import_graph().items()
    }
    assert find_cycles(graph) == []


def _is_command(name: str) -> bool:
    return name.startswith("worker.commands.") and name not in COMMAND_HELPERS


def test_no_command_imports_another_command() -> None:
    offending = [
        (name, dep)
        for name, deps in import_graph().items()
        if _is_command(name)
        for dep in deps
        if _is_command(dep)
    ]
    assert offending == []


@pytest.mark.parametrize("name", sorted(_modules()))
def test_module_size(name: str) -> None:
    lines = _modules()[name].read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{name}: {lines} lines"


def _stage(name: str) -> str:
    """``worker.run.job`` -> ``worker.run``; a top-level module is its own node."""
    parts = name.split(".")
    return ".".join(parts[:2]) if len(parts) > 2 else name


def test_no_cycles_between_packages() -> None:
    """The stages only import downward: e.g. output never imports run while run imports it."""
    graph: dict[str, set[str]] = {}
    for name, deps in import_graph().items():
        graph.setdefault(_stage(name), set()).update(
            _stage(dep) for dep in deps if _stage(dep) != _stage(name)
        )
    assert find_cycles(graph) == []

"""The package's shape, read from its source with ``ast``: wings, import direction, no cycles.

Run ``python tests/test_architecture.py`` to print the import graph (one line per module with
the package modules it imports, ``*`` marking an import inside a function).

Wings, from the top: ``plugin.py`` → ``_harness`` (the pytest layer) → ``_report`` → ``_store``
→ ``stats`` → ``_engine`` (with ``hookspecs.py``). A module may import its own wing and the
wings below it. Only ``plugin.py`` and ``_harness`` may import pytest, ``_pytest`` or xdist.
The import cycle check counts imports inside functions but not ``if TYPE_CHECKING:`` blocks
(they never run); the wing order and the pytest check count both.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "pytest_crystallize"

# Rank of each wing: a module may import a module of the same or a lower rank.
WINGS = {"plugin": 6, "_harness": 5, "_report": 4, "_store": 3, "stats": 2, "_engine": 1}
FACADE = "__init__"  # the public API: lazy, may name any module
PYTEST_MODULES = ("pytest", "_pytest", "xdist")
PYTEST_WINGS = ("plugin", "_harness")


@dataclass(frozen=True)
class Import:
    source: str  # dotted module below the package, e.g. "_engine.run"
    target: str  # imported module: below the package ("_engine.context") or external ("numpy")
    internal: bool
    in_function: bool
    type_only: bool
    line: int
    commented: bool  # a comment on the line or the line before says why it is deferred


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def wing_of(module: str) -> str:
    head = module.split(".")[0]
    return "_engine" if head == "hookspecs" else head


def _resolve(source: str, is_package: bool, node: ast.ImportFrom, modules: set[str]) -> list[str]:
    """The package modules ``from ... import ...`` loads."""
    base = source.split(".") if source != FACADE else []
    if not is_package:
        base = base[:-1]
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    stem = [*base, *(node.module.split(".") if node.module else [])]
    found = []
    for alias in node.names:
        candidate = ".".join([*stem, alias.name])
        if candidate in modules:
            found.append(candidate)
        else:
            found.append(".".join(stem) or FACADE)
    return found


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        test = getattr(node, "test", None)
        if isinstance(node, ast.If) and (
            (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
            or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
        ):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def _function_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            lines.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    return lines


def read_imports(root: Path) -> Iterator[Import]:
    """Every import of every module below ``root`` (a package folder)."""
    files = sorted(root.rglob("*.py"))
    modules = {module_name(f, root) for f in files}
    for path in files:
        source = module_name(path, root)
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        tree = ast.parse(text, str(path))
        type_only, in_function = _type_checking_lines(tree), _function_lines(tree)

        def commented(line: int, lines: list[str] = lines) -> bool:
            own = lines[line - 1]
            before = lines[line - 2].strip() if line > 1 else ""
            return "#" in own or before.startswith("#")

        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [(alias.name, False) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                targets = [(node.module or "", False)]
            elif isinstance(node, ast.ImportFrom):
                is_package = path.name == "__init__.py"
                targets = [(t, True) for t in _resolve(source, is_package, node, modules)]
            else:
                continue
            for target, internal in targets:
                if target.split(".")[0] == root.name:
                    target, internal = target.partition(".")[2] or FACADE, True
                yield Import(
                    source,
                    target,
                    internal,
                    node.lineno in in_function,
                    node.lineno in type_only,
                    node.lineno,
                    commented(node.lineno),
                )


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (its modules in order, the first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (cycle := visit(start)) is not None:
            return cycle
    return None


def violations(root: Path) -> list[str]:
    """What breaks the architecture rules in the package at ``root``, one line each."""
    found: list[str] = []
    runtime: dict[str, set[str]] = {}
    for imp in read_imports(root):
        where = f"{imp.source}:{imp.line}"
        if not imp.internal:
            if imp.target.split(".")[0] in PYTEST_MODULES and (
                wing_of(imp.source) not in PYTEST_WINGS
            ):
                found.append(f"{where} imports {imp.target} outside the pytest layer")
            if imp.in_function and not imp.type_only and not imp.commented:
                found.append(f"{where} defers `import {imp.target}` without a comment saying why")
            continue
        if imp.source == FACADE or imp.target == imp.source:
            continue
        if not imp.type_only:
            runtime.setdefault(imp.source, set()).add(imp.target)
        if imp.in_function and not imp.type_only and not imp.commented:
            found.append(f"{where} defers the import of {imp.target} without a comment")
        if imp.target == FACADE:
            found.append(f"{where} imports the package facade; import the defining module")
            continue
        low, high = WINGS.get(wing_of(imp.target)), WINGS.get(wing_of(imp.source))
        if low is None or high is None:
            found.append(f"{where} imports {imp.target}, which belongs to no wing")
        elif low > high:
            found.append(
                f"{where} imports {imp.target}: {wing_of(imp.source)} may not depend on "
                f"{wing_of(imp.target)}, which sits above it"
            )
    cycle = find_cycle(runtime)
    if cycle is not None:
        found.append("import cycle: " + " -> ".join(cycle))
    return found


def private_access(root: Path) -> list[str]:
    """Uses of a private name (``x._name``, ``from m import _name``) that another module of the
    package defines and the using module does not."""
    defined: dict[str, set[str]] = {}
    trees = {}
    for path in sorted(root.rglob("*.py")):
        name = module_name(path, root)
        tree = trees[name] = ast.parse(path.read_text(encoding="utf-8"))
        own = defined.setdefault(name, set())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                own.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                own.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                own.add(node.id)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                own.add(node.value)  # __slots__ entries
    private = {n for names in defined.values() for n in names if _private(n)}
    found = []
    for name, tree in trees.items():
        for node in ast.walk(tree):
            used = []
            if isinstance(node, ast.Attribute) and _private(node.attr):
                used = [node.attr]
            elif isinstance(node, ast.ImportFrom) and node.level > 0:
                used = [a.name for a in node.names if _private(a.name)]
            for attr in used:
                if attr in private and attr not in defined[name]:
                    found.append(f"{name}:{node.lineno} uses {attr}, private to another module")
    return found


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


# --- the package ---------------------------------------------------------------------------


def test_the_package_keeps_its_wings_and_has_no_import_cycle() -> None:
    assert violations(PACKAGE) == []


def test_no_module_touches_another_modules_private_names() -> None:
    assert private_access(PACKAGE) == []


def test_every_module_belongs_to_a_wing() -> None:
    names = {module_name(p, PACKAGE) for p in PACKAGE.rglob("*.py")}
    loose = sorted(n for n in names if n != FACADE and WINGS.get(wing_of(n)) is None)
    assert loose == []


def test_no_module_is_over_400_lines() -> None:
    sizes = {p.name: len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    assert {name: n for name, n in sizes.items() if n > 400} == {}


def test_importing_frozen_context_loads_neither_pluggy_nor_numpy() -> None:
    code = (
        "import sys\n"
        "from pytest_crystallize import FrozenContext\n"
        "FrozenContext({'a': 1})\n"
        "print(sorted(m for m in ('pluggy', 'numpy', 'scipy') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


# --- the checker fails where it should -----------------------------------------------------


def make_package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "pkg"
    for name, body in {"__init__.py": "", **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.name != "__init__.py":
            (path.parent / "__init__.py").touch()
        path.write_text(textwrap.dedent(body))
    return root


def test_the_checker_reports_a_cycle_even_through_an_import_inside_a_function(
    tmp_path: Path,
) -> None:
    root = make_package(
        tmp_path,
        {
            "_engine/a.py": "from .b import B\n",
            "_engine/b.py": "def f():\n    # needed late\n    from .a import A\n",
        },
    )
    assert violations(root) == ["import cycle: _engine.a -> _engine.b -> _engine.a"]


def test_the_checker_ignores_type_checking_imports_for_cycles(tmp_path: Path) -> None:
    root = make_package(
        tmp_path,
        {
            "_engine/a.py": "from .b import B\n",
            "_engine/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from .a import A\n",
        },
    )
    assert violations(root) == []


def test_the_checker_reports_pytest_outside_the_pytest_layer(tmp_path: Path) -> None:
    root = make_package(
        tmp_path,
        {
            "_engine/a.py": "import pytest\n",
            "_report/b.py": "from _pytest.pathlib import import_path\n",
            "_harness/c.py": "import pytest\nimport xdist\n",
            "plugin.py": "import pytest\n",
        },
    )
    assert violations(root) == [
        "_engine.a:1 imports pytest outside the pytest layer",
        "_report.b:1 imports _pytest.pathlib outside the pytest layer",
    ]


def test_the_checker_reports_an_arrow_against_the_wing_order(tmp_path: Path) -> None:
    root = make_package(
        tmp_path,
        {
            "_engine/a.py": "from .._store.s import S\n",
            "_store/s.py": "from .._engine.a import A\n",  # the allowed direction
            "stats/__init__.py": "from .._report.r import R\n",
            "_report/r.py": "",
        },
    )
    assert violations(root) == [
        "_engine.a:1 imports _store.s: _engine may not depend on _store, which sits above it",
        "stats:1 imports _report.r: stats may not depend on _report, which sits above it",
        "import cycle: _engine.a -> _store.s -> _engine.a",
    ]


def test_the_checker_reports_an_uncommented_deferred_import(tmp_path: Path) -> None:
    root = make_package(
        tmp_path,
        {
            "_engine/a.py": "def f():\n    import numpy\n\ndef g():\n"
            "    import scipy  # lazy: import speed\n",
        },
    )
    assert violations(root) == ["_engine.a:2 defers `import numpy` without a comment saying why"]


def test_the_private_access_check_reports_another_modules_private(tmp_path: Path) -> None:
    root = make_package(
        tmp_path,
        {
            "_engine/a.py": "class A:\n    def __init__(self):\n        self._data = 1\n",
            "_engine/b.py": "from .a import A, _helper\n\ndef f(a):\n    return a._data\n",
        },
    )
    (root / "_engine" / "a.py").write_text(
        (root / "_engine" / "a.py").read_text() + "def _helper():\n    pass\n"
    )
    assert private_access(root) == [
        "_engine.b:1 uses _helper, private to another module",
        "_engine.b:4 uses _data, private to another module",
    ]


@pytest.mark.parametrize("module", ["_engine/x.py", "other/x.py"])
def test_a_module_outside_the_wings_is_reported(tmp_path: Path, module: str) -> None:
    root = make_package(
        tmp_path, {module: "", "_engine/y.py": f"from ..{module[:-3].replace('/', '.')} import z\n"}
    )
    expected = (
        []
        if module.startswith("_engine")
        else ["_engine.y:1 imports other.x, which belongs to no wing"]
    )
    assert violations(root) == expected


def knots(edges: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other, directly or not (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_knots_finds_each_group_of_mutual_imports() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"e"}, "e": {"d"}, "f": {"a"}}
    assert sorted(knots(edges)) == [["a", "b", "c"], ["d", "e"]]


def main(root: Path = PACKAGE) -> None:
    """Print the import graph of the package at ``root`` (``*``: imported inside a function),
    its groups of mutually importing modules, and what breaks the rules."""
    graph: dict[str, set[str]] = {}
    runtime: dict[str, set[str]] = {}
    for imp in read_imports(root):
        if imp.internal and not imp.type_only and imp.source != imp.target:
            graph.setdefault(imp.source, set()).add(imp.target + ("*" if imp.in_function else ""))
            runtime.setdefault(imp.source, set()).add(imp.target)
    for source in sorted(graph):
        print(f"{source} -> {', '.join(sorted(graph[source]))}")
    deferred = sum(t.endswith("*") for targets in graph.values() for t in targets)
    groups = knots(runtime)
    print(f"\n{len(graph)} importing modules, {deferred} imports inside functions")
    print(f"{len(groups)} group(s) of modules importing each other")
    for group in groups:
        print(f"  {len(group)} modules: {', '.join(group)}")
    problems = violations(root) + private_access(root)
    print(f"{len(problems)} violation(s) of the rules")
    for line in problems:
        print("  " + line)


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else PACKAGE)

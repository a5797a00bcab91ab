"""The public API: ``__all__`` is sorted and complete, and importing it stays cheap."""

from __future__ import annotations

import ast
import importlib
import types

import pytest
from _support import ROOT, run_python

import pytest_crystallize
from pytest_crystallize import stats

PACKAGE = "pytest_crystallize"


def type_checked_imports() -> dict[str, tuple[str, str]]:
    """What type checkers see: each name the ``if TYPE_CHECKING:`` block of ``__init__.py``
    imports, with the module and the name it imports it from."""
    tree = ast.parse((ROOT / PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    (block,) = (
        node
        for node in tree.body
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING")
    )
    names = {}
    for statement in block.body:
        assert isinstance(statement, ast.ImportFrom), ast.dump(statement)
        assert statement.level == 1, ast.dump(statement)
        module = ".".join(filter(None, [PACKAGE, statement.module]))
        for alias in statement.names:
            names[alias.asname or alias.name] = (module, alias.name)
    return names


def imported(module: str, name: str) -> object:
    """``from module import name`` in a fresh namespace."""
    namespace: dict[str, object] = {}
    exec(f"from {module} import {name}", namespace)
    return namespace[name]


def defining_module(value: object) -> str:
    """The module a class or function was defined in (a verifier factory: its function's)."""
    return str(getattr(getattr(value, "fn", value), "__module__", ""))


@pytest.mark.parametrize("module", [pytest_crystallize, stats], ids=lambda m: m.__name__)
def test_all_is_sorted_without_duplicates(module: types.ModuleType) -> None:
    assert module.__all__ == sorted(set(module.__all__))


def test_all_names_exactly_what_type_checkers_see() -> None:
    assert pytest_crystallize.__all__ == sorted(type_checked_imports())


def test_every_name_in_all_imports_as_the_object_type_checkers_see() -> None:
    for name, (module, original) in type_checked_imports().items():
        value = imported(PACKAGE, name)
        if module == PACKAGE:  # `from . import hookspecs`: a submodule
            assert value is importlib.import_module(f"{PACKAGE}.{original}"), name
        else:
            assert value is getattr(importlib.import_module(module), original), name
        if isinstance(value, type | types.FunctionType):
            assert value.__module__.startswith(f"{PACKAGE}."), (name, value.__module__)


def test_a_name_outside_all_cannot_be_imported_and_no_helper_leaks_into_the_namespace() -> None:
    with pytest.raises(ImportError, match="cannot import name 'Missing'"):
        imported(PACKAGE, "Missing")
    # The module's own globals (not dir(), which lists __all__): every public one is in
    # __all__, save submodules and the `from __future__ import annotations` flag.
    leaked = {
        name
        for name, value in vars(pytest_crystallize).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and type(value).__module__ != "__future__"
    }
    assert leaked <= set(pytest_crystallize.__all__)


def test_stats_exports_only_its_verifiers_classes_helpers_and_constants() -> None:
    for name in stats.__all__:
        value = imported(f"{PACKAGE}.stats", name)
        if name.isupper():  # a public constant, such as MAX_RESAMPLES
            assert type(value) in (int, float, str), name
        else:  # not a name stats merely imports, such as Any, functools or Mapping
            assert callable(value), name
            assert defining_module(value).startswith(f"{PACKAGE}."), (name, value)


def modules_loaded_by(code: str, prefix: str) -> list[str]:
    """The modules whose names start with ``prefix`` after running ``code`` afresh."""
    show = f"import sys; print(sorted(m for m in sys.modules if m.startswith({prefix!r})))"
    done = run_python("-c", f"{code}; {show}")
    return list(ast.literal_eval(done.stdout))


def test_importing_the_package_loads_none_of_the_library_until_a_name_is_used():
    assert modules_loaded_by("import pytest_crystallize", "pytest_crystallize.") == []
    used = modules_loaded_by("from pytest_crystallize import Experiment", "pytest_crystallize.")
    assert "pytest_crystallize._engine.experiment" in used


def test_the_library_imports_neither_scipy_nor_numpy_until_an_experiment_needs_them():
    code = "import pytest_crystallize as p; [getattr(p, name) for name in p.__all__]"
    assert [m for m in modules_loaded_by(code, "") if m in ("scipy", "numpy")] == []

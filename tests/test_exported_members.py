"""The public API: ``__all__`` is sorted and complete, and importing it stays cheap."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest_crystallize

ROOT = Path(__file__).resolve().parents[1]


def test_all_is_sorted_and_unique():
    assert pytest_crystallize.__all__ == sorted(pytest_crystallize.__all__)
    assert len(set(pytest_crystallize.__all__)) == len(pytest_crystallize.__all__)


def test_all_lists_exactly_the_public_names_of_the_package():
    public = {
        name
        for name in dir(pytest_crystallize)
        if not name.startswith("_")
        and not isinstance(getattr(pytest_crystallize, name), types.ModuleType)
        # `from __future__ import annotations` binds a compiler flag, not an API name
        and type(getattr(pytest_crystallize, name)).__module__ != "__future__"
    }
    assert set(pytest_crystallize.__all__) == public | {"hookspecs"}


def modules_loaded_by(code: str, prefix: str) -> list[str]:
    """The modules whose names start with ``prefix`` after running ``code`` afresh."""
    show = f"import sys; print(sorted(m for m in sys.modules if m.startswith({prefix!r})))"
    done = subprocess.run(
        [sys.executable, "-c", f"{code}; {show}"],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return list(ast.literal_eval(done.stdout))


def test_importing_the_package_loads_none_of_the_library_until_a_name_is_used():
    assert modules_loaded_by("import pytest_crystallize", "pytest_crystallize.") == []
    used = modules_loaded_by("from pytest_crystallize import Experiment", "pytest_crystallize.")
    assert "pytest_crystallize._engine.experiment" in used


def test_every_name_in_all_can_be_imported():
    for name in pytest_crystallize.__all__:
        assert getattr(pytest_crystallize, name) is not None, name


def test_the_library_imports_neither_scipy_nor_numpy_until_an_experiment_needs_them():
    code = "import pytest_crystallize as p; [getattr(p, name) for name in p.__all__]"
    assert [m for m in modules_loaded_by(code, "") if m in ("scipy", "numpy")] == []

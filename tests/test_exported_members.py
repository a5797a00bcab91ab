"""The public API: ``__all__`` is sorted and complete, and importing it stays cheap."""

from __future__ import annotations

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


def test_importing_the_package_loads_none_of_the_library_until_a_name_is_used():
    code = (
        "import sys; import pytest_crystallize; "
        "print(sorted(m for m in sys.modules if m.startswith('pytest_crystallize.')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_every_name_in_all_can_be_imported():
    for name in pytest_crystallize.__all__:
        assert getattr(pytest_crystallize, name) is not None, name


def test_importing_the_package_imports_neither_scipy_nor_numpy():
    code = (
        "import sys; import pytest_crystallize; "
        "print(sorted(m for m in ('scipy', 'numpy') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"

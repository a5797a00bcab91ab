"""Shared fixtures: a test's own working directory, and for the plugin's pytester tests an
isolated ini and a small experiment file. Constants and helpers are in ``_support.py``.

This module loads no plugins; the root ``conftest.py`` enables ``pytester``.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import sys
import textwrap
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import ModuleType

import numpy  # noqa: F401
import pytest
import scipy.stats  # noqa: F401
from _support import DEFAULT_EXPERIMENTS, INI, SummaryRows, experiment_source, parse_summary

import pytest_crystallize

# Inner runs are in-process, and pytester drops every module a run imported when it ends.
# numpy's C extension cannot be imported twice in one process, and a plugin module imported
# afresh by a later run would not be the one its package attribute points to (`from . import
# _collect` would see the first run's copy, with other stash keys). So import numpy, scipy and
# every module of the package once, before any run.
for _module in pkgutil.walk_packages(pytest_crystallize.__path__, "pytest_crystallize."):
    importlib.import_module(_module.name)


@pytest.fixture
def in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test in its own directory: what experiments write (``./data``...) stays there.
    Modules use it with ``pytestmark = pytest.mark.usefixtures("in_tmp_path")``."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def load(tmp_path: Path) -> Iterator[Callable[..., ModuleType]]:
    """``load(name, source)`` imports ``source`` as module ``name`` from a user folder on
    ``sys.path``, replacing a module of that name loaded before (an edit between two
    sessions); every module it loaded is dropped at the end."""
    loaded: set[str] = set()
    folder = tmp_path / "user_code"
    folder.mkdir()

    def load_module(name: str, source: str) -> ModuleType:
        path = folder / f"{name}.py"
        path.write_text(textwrap.dedent(source))
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        loaded.add(name)
        spec.loader.exec_module(module)
        return module

    sys.path.insert(0, str(folder))
    try:
        yield load_module
    finally:
        sys.path.remove(str(folder))
        for name in loaded:
            sys.modules.pop(name, None)


@pytest.fixture
def private_cache_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The step cache's signing key file goes to a temporary config dir, never the real
    home; no key or cache directory comes from the environment."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("CRYSTALLIZE_CACHE_KEY", raising=False)
    monkeypatch.delenv("CRYSTALLIZE_CACHE_DIR", raising=False)


@pytest.fixture
def write_ini(pytester: pytest.Pytester) -> Callable[[str], Path]:
    """``write_ini("crystallize = true")`` (re)writes the ini with extra lines."""

    def write(extra: str = "") -> Path:
        return pytester.makeini(INI.format(extra=extra))

    return write


@pytest.fixture
def ourtester(
    pytester: pytest.Pytester,
    write_ini: Callable[[str], Path],
    monkeypatch: pytest.MonkeyPatch,
) -> pytest.Pytester:
    """A pytester directory with its own ini, so no outer configuration leaks in.

    The processes a session starts (xdist workers, subprocess runs) are not measured by
    coverage: measuring them doubles the time of CI, while the code they run is measured in
    the in-process sessions (``-n 0``, ``-p no:xdist``) of the same tests.
    """
    write_ini("")
    monkeypatch.delenv("COVERAGE_PROCESS_CONFIG", raising=False)
    monkeypatch.delenv("COVERAGE_PROCESS_START", raising=False)
    return pytester


@pytest.fixture
def write_experiment(ourtester: pytest.Pytester) -> Callable[..., Path]:
    """``write_experiment(name="experiment_demo", **source_options)`` writes an experiment file."""

    def write(
        name: str = "experiment_demo",
        experiments: Mapping[str, Mapping[str, float]] = DEFAULT_EXPERIMENTS,
        **options: object,
    ) -> Path:
        source = experiment_source(experiments, **options)  # type: ignore[arg-type]
        return ourtester.makepyfile(**{name: source})

    return write


@pytest.fixture
def summary_rows() -> SummaryRows:
    """``summary_rows(result)``: the rows of the run's ``crystallize`` section by verdict id."""
    return lambda result: parse_summary(result.stdout.str())

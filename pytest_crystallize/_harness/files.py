"""Experiment files: importing one, finding its experiments, and its collector.

A file matching ``crystallize_files`` (or named on the command line) is imported once per
process; every module-level :class:`Experiment` (and each experiment of a module-level
:class:`ExperimentGraph`) becomes an :class:`~.collect.ExperimentNode`.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest
from _pytest.pathlib import import_path

from .._engine.errors import CrystallizeError
from .._engine.experiment import Experiment
from .._engine.graph import ExperimentGraph
from .._engine.runs import user_traceback
from .collect import REPLICATES, ExperimentNode


def _user_line(exc: BaseException, path: Path) -> str:
    """``file:line`` of the innermost frame of ``exc`` in ``path`` (the user's file)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename) == path]
    if not frames:
        return str(path)
    return f"{path}:{frames[-1].lineno}"


def load_experiments(config: pytest.Config, path: Path) -> dict[str, Experiment]:
    """Import ``path`` and return its module-level experiments by name, in definition order."""
    module = import_path(
        path,
        mode=config.getoption("importmode"),
        root=config.rootpath,
        consider_namespace_packages=config.getini("consider_namespace_packages"),
    )
    replicates = config.stash.get(REPLICATES, None)
    found: dict[str, Experiment] = {}
    seen: set[int] = set()
    for attr, value in vars(module).items():
        # A graph contributes its experiments in dependency order.
        members = (
            [(n, value.experiments[n]) for n in value.order]
            if isinstance(value, ExperimentGraph)
            else [(attr, value)]
        )
        for label, exp in members:
            if not isinstance(exp, Experiment) or id(exp) in seen:
                continue
            seen.add(id(exp))
            name = exp.name or label
            if name in found:
                msg = f"{path}: two experiments are named {name!r}; give each a unique name"
                raise CrystallizeError(msg)
            found[name] = exp.overridden(None, None, replicates) if replicates else exp
    return found


class ExperimentFile(pytest.File):
    """A file matching ``crystallize_files``: one collector per module-level Experiment."""

    def collect(self) -> Iterator[ExperimentNode]:
        try:
            experiments = load_experiments(self.config, self.path)
        except pytest.skip.Exception:
            raise
        except Exception as exc:
            where = _user_line(exc, self.path)
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            shown = user_traceback(exc) if not isinstance(exc, CrystallizeError) else ""
            msg = f"{where}: {detail}"
            if shown:
                msg += f"\n\n{shown}"
            raise self.CollectError(msg) from exc
        for name, experiment in experiments.items():
            yield ExperimentNode.from_parent(self, name=name, experiment=experiment)

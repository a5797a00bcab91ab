"""Experiment files: importing one, finding its experiments, and its collector.

A file matching ``crystallize_files`` (or named on the command line) is imported once per
process. Every module-level :class:`Experiment` becomes an :class:`~.collect.ExperimentNode`,
and so does each experiment of a module-level :class:`ExperimentGraph` (in dependency order)
and each one held in a module-level list, tuple or dict (one level deep).

When pytest's own python plugin would not collect the file, its collector is an
:class:`ExperimentModule`: the file's ``test_*`` functions and classes are collected as
ordinary tests too. When pytest collects the file itself (named on the command line or
matching ``python_files``), an :class:`ExperimentFile` yields the experiments only, so no test
is collected twice.
"""

from __future__ import annotations

import copy
import traceback
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType

import pytest
from _pytest.mark.structures import get_unpacked_marks
from _pytest.pathlib import fnmatch_ex, import_path

from .._engine.errors import CrystallizeError
from .._engine.experiment import Experiment
from .._engine.graph import ExperimentGraph
from .._engine.hypotheses import with_alpha
from .._engine.lifecycle import STARTED
from .._engine.runs import user_traceback
from .._engine.sequential import SequentialDesign
from .collect import REPLICATES, ExperimentNode
from .options import setting


def _user_line(exc: BaseException, path: Path) -> str:
    """``file:line`` of the innermost frame of ``exc`` in ``path`` (the user's file)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename) == path]
    if not frames:
        return str(path)
    return f"{path}:{frames[-1].lineno}"


def _import(config: pytest.Config, path: Path) -> ModuleType:
    """The module at ``path``, imported as pytest imports test modules (once per process:
    ``import_path`` returns the module already in ``sys.modules``)."""
    return import_path(
        path,
        mode=config.getoption("importmode"),
        root=config.rootpath,
        consider_namespace_packages=config.getini("consider_namespace_packages"),
    )


# --- finding the experiments --------------------------------------------------------------


def _candidates(attr: str, value: object) -> Iterator[tuple[str, str, object]]:
    """``(label, where, value)`` for a module attribute: itself, or what a list, tuple or dict
    holds. ``label`` names an unnamed experiment; ``where`` says where it was found."""
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield f"{attr}-{index}", f"{attr}[{index}]", item
    elif isinstance(value, dict):
        for index, (key, item) in enumerate(value.items()):
            label = key if isinstance(key, str) else f"{attr}-{index}"
            yield label, f"{attr}[{key!r}]", item
    else:
        yield attr, attr, value


def _members(label: str, value: object) -> Iterable[tuple[str, Experiment]]:
    """The experiments of one value: itself, or a graph's in dependency order."""
    if isinstance(value, ExperimentGraph):
        return [(name, value.experiments[name]) for name in value.order]
    return [(label, value)] if isinstance(value, Experiment) else []


def _with_design(exp: Experiment, sequential: str | int | None) -> Experiment:
    """``exp`` under the session's ``crystallize_sequential``: ``off`` drops its sequential
    design (the full design runs), a number of looks gives it ``SequentialDesign(looks)``,
    None keeps its own."""
    if sequential is None:
        return exp
    design = None if sequential == "off" else SequentialDesign(looks=int(sequential))
    if exp.sequential == design or (design is not None and not exp.hypotheses):
        return exp  # nothing to decide early without hypotheses
    made = copy.copy(exp)
    made.sequential = design
    try:
        made.validate()
    except CrystallizeError as exc:
        msg = (
            f"{exc} (the design is the session's, from --crystallize-sequential={sequential} "
            f"or ini crystallize_sequential: use fewer looks, or off)"
        )
        raise type(exc)(msg) from exc
    return made


def _session_view(
    exp: Experiment,
    name: str,
    replicates: int | None,
    alpha: float | None,
    sequential: str | int | None = None,
) -> Experiment:
    """``exp`` as the session runs it: with ``replicates`` (a quick look), with ``alpha``
    for every verifier not given an alpha of its own, and with the session's sequential
    design (``_with_design``); itself without any."""
    exp = _with_design(exp, sequential)
    hypotheses = None
    try:
        if alpha is not None:
            bound = [with_alpha(hyp, alpha) for hyp in exp.hypotheses]
            if any(new is not old for new, old in zip(bound, exp.hypotheses, strict=True)):
                hypotheses = bound
        if hypotheses is None and not replicates:
            return exp
        return exp.overridden(None, hypotheses, replicates, quick_look=bool(replicates))
    except CrystallizeError as exc:
        if alpha is None:
            raise
        msg = (
            f"experiment {name!r}: {str(exc).removeprefix(f'experiment {name!r}: ')} (alpha "
            f"{alpha:g} is the session's, from --crystallize-alpha or ini crystallize_alpha: "
            f"give this verifier an alpha of its own, or change the session's)"
        )
        raise type(exc)(msg) from exc


def experiments_in(
    module: ModuleType,
    path: Path,
    replicates: int | None,
    alpha: float | None = None,
    sequential: str | int | None = None,
) -> dict[str, Experiment]:
    """``module``'s experiments by name, in definition order, each object once, as the
    session runs them (with ``replicates``, ``alpha`` and ``sequential`` when given: see
    ``_session_view``).

    Two different experiments with one name are an error naming both places.
    """
    found: dict[str, Experiment] = {}
    where_found: dict[str, str] = {}
    seen: set[int] = set()
    for attr, value in vars(module).items():
        if attr.startswith("__") and isinstance(value, (list, tuple, dict)):
            continue  # __builtins__, __all__...: never a user's experiments
        for label, where, item in _candidates(attr, value):
            for member_label, exp in _members(label, item):
                if id(exp) in seen:
                    continue  # the same object twice (a variable and a list): once
                seen.add(id(exp))
                name = exp.name or member_label
                if name in found:
                    msg = (
                        f"{path}: two experiments are named {name!r}; give each a unique name "
                        f"(found as {where_found[name]} and {where})"
                    )
                    raise CrystallizeError(msg)
                where_found[name] = where
                found[name] = _session_view(exp, name, replicates, alpha, sequential)
    return found


def _overrides(config: pytest.Config) -> tuple[int | None, float | None, str | int | None]:
    """The session's replicates (a quick look), default alpha and sequential design (``off``
    or a number of looks), when set."""
    return (
        config.stash.get(REPLICATES, None),
        setting(config, "crystallize_alpha"),
        setting(config, "crystallize_sequential"),
    )


def load_experiments(config: pytest.Config, path: Path) -> dict[str, Experiment]:
    """Import ``path`` and return its module-level experiments by name, in definition order."""
    return experiments_in(_import(config, path), path, *_overrides(config))


# --- the collectors -------------------------------------------------------------------------


def _collect_error(node: pytest.File, exc: Exception) -> pytest.Collector.CollectError:
    """A collection error at the user's line, with the user's traceback (not the framework's)."""
    where = _user_line(exc, node.path)
    detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    shown = user_traceback(exc) if not isinstance(exc, CrystallizeError) else ""
    msg = f"{where}: {detail}"
    if shown:
        msg += f"\n\n{shown}"
    return node.CollectError(msg)


def _import_file(node: pytest.File) -> ModuleType:
    """Import the node's file; warn if importing it ran an experiment (a module-level run)."""
    before = STARTED.count
    try:
        return _import(node.config, node.path)
    except pytest.skip.Exception:
        raise
    except Exception as exc:
        raise _collect_error(node, exc) from exc
    finally:
        if STARTED.count > before:
            # What node.warn does, without its lookup of the module's object: on a Module
            # that would import the file again from inside its own import.
            warning = pytest.PytestCollectionWarning(_run_on_import(node, STARTED.count - before))
            warnings.warn_explicit(warning, category=None, filename=str(node.path), lineno=1)


def _run_on_import(node: pytest.File, runs: int) -> str:
    ran = f"experiment {STARTED.last!r}" + (f" and {runs - 1} more" if runs > 1 else "")
    return (
        f"{node.path.name} ran {ran} while being imported: a module-level run() (such as "
        f"`result = exp.run()` or `graph.run()`) executes on import in every process that "
        f"imports the file, once per xdist worker, on top of the chunks pytest --crystallize "
        f'runs. Guard it with `if __name__ == "__main__":` so it runs only as a script.'
    )


# Experiment name -> (file, where it was made), over the session: a name is unique in it.
_NAMED = pytest.StashKey[dict[str, tuple[Path, tuple[str, int] | None]]]()


def _experiment_nodes(node: pytest.File, module: ModuleType) -> Iterator[ExperimentNode]:
    try:
        experiments = experiments_in(module, node.path, *_overrides(node.config))
    except Exception as exc:
        raise _collect_error(node, exc) from exc
    named = node.config.stash.setdefault(_NAMED, {})
    for name, experiment in experiments.items():
        path, made = named.setdefault(name, (node.path, experiment.defined_at))
        if path != node.path:
            if made is not None and made == experiment.defined_at:
                continue  # one experiment imported into another file: collected where first seen
            root = node.config.rootpath
            first, second = (p.relative_to(root).as_posix() for p in (path, node.path))
            msg = (
                f"{second}: experiment {name!r} is also defined in {first}; an experiment name "
                f"is unique in a session (it names the verdicts, the reports, the step cache "
                f"and the data/{name} artifacts folder): rename one of them"
            )
            raise node.CollectError(msg)
        yield ExperimentNode.from_parent(node, name=name, experiment=experiment)


class ExperimentFile(pytest.File):
    """An experiment file pytest also collects as a test module: its experiments only."""

    def collect(self) -> Iterator[ExperimentNode]:
        module = _import_file(self)
        # The module's pytestmark applies to its experiments (pytest.Module does this itself).
        for mark in get_unpacked_marks(module):
            self.keywords[mark.name] = mark
            self.own_markers.append(mark)
        yield from _experiment_nodes(self, module)


class ExperimentModule(pytest.Module):
    """An experiment file pytest would not collect: its tests, then its experiments."""

    def _getobj(self) -> ModuleType:
        module = _import_file(self)
        self.config.pluginmanager.consider_module(module)  # as pytest.Module: pytest_plugins
        return module

    def collect(self) -> Iterator[pytest.Item | pytest.Collector]:
        yield from super().collect()
        yield from _experiment_nodes(self, self.obj)


def collector(parent: pytest.Collector, path: Path) -> pytest.File:
    """The collector for an experiment file: a module of tests too, unless pytest collects
    the file itself (it is named on the command line or matches ini ``python_files``)."""
    config = parent.config
    python_collects = config.pluginmanager.has_plugin("python") and (
        parent.session.isinitpath(path)
        or any(fnmatch_ex(pattern, path) for pattern in config.getini("python_files"))
    )
    if python_collects:
        return ExperimentFile.from_parent(parent, path=path)
    return ExperimentModule.from_parent(parent, path=path)

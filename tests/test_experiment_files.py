"""Experiment files leave nothing out: experiments in lists, tuples and dicts, ``test_*``
functions, ``pytestmark``; a module-level ``run()`` warns; without ``--crystallize``, a hint."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from _support import TWO_WORKERS, with_and_without_workers

# One condition, one replicate: one chunk item per experiment whatever the worker count,
# `<file>::<experiment>::baseline::chunk-0`.
HEADER = """\
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pytest_crystallize import Artifact, Experiment, ExperimentGraph, data_source, pipeline_step


@data_source
def noise(ctx):
    return float(ctx.rng.normal())


@pipeline_step()
def score(value, ctx):
    return value, {"score": value}


def build(name=None):
    return Experiment.builder(name).datasource(noise()).add_step(score()).replicates(1).build()
"""

CONTAINERS = """
@pipeline_step()
def save(value, ctx, *, out):
    out.write(json.dumps(value))
    return value, {"saved": value}


@pipeline_step()
def load(text, ctx):
    return json.loads(text), {"loaded": json.loads(text)}


def chain():
    numbers = Artifact("numbers.json")
    prep = (
        Experiment.builder("prep")
        .datasource(noise())
        .add_step(save(out=numbers))
        .outputs([numbers])
        .replicates(1)
        .build()
    )
    use = Experiment.builder("use").datasource(numbers).add_step(load()).replicates(1).build()
    return ExperimentGraph(use, prep)  # listed downstream first: collected prep first


solo = build("solo")
grid = [build("named"), build()]
pair = (solo, build("paired"))  # solo again: collected once
by_key = {"keyed": build(), 3: build()}
chained = [chain()]
"""

IN_ORDER = ["solo", "named", "grid-1", "paired", "keyed", "by_key-1", "prep", "use"]


def chunk_ids(result: pytest.RunResult) -> list[str]:
    """The chunk item ids ``--collect-only -q`` prints."""
    return [line for line in result.outlines if line.endswith("::chunk-0")]


# --- experiments in lists, tuples and dicts -------------------------------------------------


@with_and_without_workers
def test_experiments_in_module_level_lists_tuples_and_dicts_are_collected_once_each(
    ourtester: pytest.Pytester, dist: list[str]
) -> None:
    ourtester.makepyfile(experiment_many=HEADER + CONTAINERS)
    # Definition order (a graph's in dependency order); --collect-only never starts workers.
    listed = ourtester.runpytest("--crystallize", "--collect-only", "-q")
    ids = [f"experiment_many.py::{name}::baseline::chunk-0" for name in IN_ORDER]
    assert chunk_ids(listed) == ids

    result = ourtester.runpytest("--crystallize", "-rA", *dist)
    result.assert_outcomes(passed=len(ids), warnings=0)
    result.stdout.fnmatch_lines_random([f"PASSED {nodeid}" for nodeid in ids])


@with_and_without_workers
def test_two_experiments_with_one_name_in_a_variable_and_a_dict_are_a_collection_error(
    ourtester: pytest.Pytester, dist: list[str]
) -> None:
    ourtester.makepyfile(
        experiment_dup=HEADER + 'demo = build("demo")\nmore = {"x": build("demo")}\n'
    )
    result = ourtester.runpytest("--crystallize", *dist)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR collecting experiment_dup.py*",
            "*experiment_dup.py: two experiments are named 'demo'; give each a unique name "
            "(found as demo and more[[]'x'])",  # fnmatch: [[] matches a [
        ]
    )


@with_and_without_workers
def test_one_name_in_two_files_is_a_collection_error_naming_both_an_import_is_not(
    ourtester: pytest.Pytester, dist: list[str]
) -> None:
    ourtester.makepyfile(
        experiment_a=HEADER + 'demo = build("demo")\n',
        experiment_b=HEADER + 'demo = build("demo")\n',
        # The same experiment imported into another file is collected once, where first seen.
        experiment_c="from experiment_a import demo\n",
    )
    go_on = "--continue-on-collection-errors"  # as xdist does: the rest still runs
    result = ourtester.runpytest("--crystallize", "-rA", go_on, *dist)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR collecting experiment_b.py*",
            "experiment_b.py: experiment 'demo' is also defined in experiment_a.py; an "
            "experiment name is unique in a session (it names the verdicts, the reports, the "
            "step cache and the data/demo artifacts folder): rename one of them",
        ]
    )
    result.stdout.fnmatch_lines(["PASSED experiment_a.py::demo::baseline::chunk-0"])
    result.stdout.no_fnmatch_line("*experiment_c.py::demo*")


# --- test functions and classes, imported once per process ----------------------------------

MIXED = """
with Path(__file__).with_name("imports.log").open("a") as log:
    log.write(f"{os.getpid()}\\n")  # one line per import of this module


@pytest.fixture
def base():
    return 40


@pytest.mark.parametrize("extra", [1, 2])
def test_sum(base, extra):
    assert base + extra in (41, 42)


class TestGroup:
    def test_method(self, base):
        assert base == 40


demo = build("demo")
"""

MIXED_IDS = [
    "experiment_mixed.py::test_sum[1]",
    "experiment_mixed.py::test_sum[2]",
    "experiment_mixed.py::TestGroup::test_method",
    "experiment_mixed.py::demo::baseline::chunk-0",
]


@with_and_without_workers
@pytest.mark.parametrize(
    ("import_mode", "how"),
    [
        # Found by crystallize_files only: the experiment collector collects the tests too.
        pytest.param("prepend", "found", id="prepend-found"),
        pytest.param("importlib", "found", id="importlib-found"),
        # pytest collects the file itself: the experiment collector yields the experiments.
        pytest.param("prepend", "named", id="prepend-named"),
        pytest.param("importlib", "python_files", id="importlib-python_files"),
    ],
)
def test_test_functions_in_an_experiment_file_run_once_and_the_file_is_imported_once(
    ourtester: pytest.Pytester,
    write_ini: Callable[[str], Path],
    dist: list[str],
    import_mode: str,
    how: str,
) -> None:
    if how == "python_files":
        write_ini("python_files = test_*.py experiment_*.py")
    ourtester.makepyfile(experiment_mixed=HEADER + MIXED)
    named = ["experiment_mixed.py"] if how == "named" else []
    result = ourtester.runpytest(
        "--crystallize", f"--import-mode={import_mode}", "-rA", *dist, *named
    )
    result.assert_outcomes(passed=len(MIXED_IDS), warnings=0)
    result.stdout.fnmatch_lines_random([f"PASSED {nodeid}" for nodeid in MIXED_IDS])
    # Once in each process: the only one, or each worker and the controller (its verdicts).
    imports = Counter((ourtester.path / "imports.log").read_text().split())
    assert set(imports.values()) == {1}
    assert len(imports) == (3 if dist == TWO_WORKERS else 1)


# --- pytestmark -----------------------------------------------------------------------------


@with_and_without_workers
@pytest.mark.parametrize("how", ["found", "named"])
def test_a_module_level_pytestmark_applies_to_the_files_experiments(
    ourtester: pytest.Pytester, write_ini: Callable[[str], Path], dist: list[str], how: str
) -> None:
    write_ini("markers =\n    slow: takes long\n    nightly: runs at night")
    ourtester.makepyfile(
        experiment_single=HEADER + 'pytestmark = pytest.mark.slow\nsingle = build("single")\n',
        experiment_listed=HEADER
        + 'pytestmark = [pytest.mark.nightly, pytest.mark.slow]\nlisted = build("listed")\n'
        + "def test_listed():\n    pass\n",
        experiment_fast=HEADER + 'fast = build("fast")\n\ndef test_fast():\n    pass\n',
    )
    named = ["experiment_single.py", "experiment_listed.py", "experiment_fast.py"]
    result = ourtester.runpytest(
        "--crystallize", "-m", "not slow", "-rA", *dist, *(named if how == "named" else [])
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines_random(
        [
            "PASSED experiment_fast.py::fast::baseline::chunk-0",
            "PASSED experiment_fast.py::test_fast",
        ]
    )
    result.stdout.no_fnmatch_line("*experiment_single.py::*")
    result.stdout.no_fnmatch_line("*experiment_listed.py::*")


# --- a module-level run() -------------------------------------------------------------------


# Inner runs are in-process: the outer `filterwarnings = error` would make the warning an error.
@pytest.mark.filterwarnings("default::pytest.PytestCollectionWarning")
@with_and_without_workers
def test_a_module_level_run_warns_that_it_runs_in_every_process(
    ourtester: pytest.Pytester, dist: list[str]
) -> None:
    ourtester.makepyfile(experiment_script=HEADER + 'demo = build("demo")\nresult = demo.run()\n')
    result = ourtester.runpytest("--crystallize", *dist)
    # The warning comes from each process that collects the file: one per worker.
    result.assert_outcomes(passed=1, warnings=2 if dist == TWO_WORKERS else 1)
    result.stdout.fnmatch_lines(
        [
            "*PytestCollectionWarning: experiment_script.py ran experiment 'demo' while being "
            "imported: a module-level run() (such as `result = exp.run()` or `graph.run()`) "
            "executes on import in every process that imports the file, once per xdist worker, "
            "on top of the chunks pytest --crystallize runs. Guard it with "
            '`if __name__ == "__main__":` so it runs only as a script.',
        ]
    )


# --- without --crystallize ------------------------------------------------------------------


@with_and_without_workers
def test_an_experiment_file_named_without_the_flag_gets_a_one_line_hint(
    ourtester: pytest.Pytester, dist: list[str]
) -> None:
    ourtester.makepyfile(experiment_demo=HEADER + 'demo = build("demo")\n')
    result = ourtester.runpytest("experiment_demo.py", *dist)
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    hint = (
        "crystallize: experiment_demo.py holds experiments, which run only with --crystallize "
        "(or ini crystallize = true)"
    )
    result.stdout.fnmatch_lines([hint, "*no tests ran*"])
    assert result.outlines.count(hint) == 1
    # Found by pytest, not named: no hint.
    unnamed = ourtester.runpytest(*dist)
    unnamed.stdout.no_fnmatch_line("crystallize: *")

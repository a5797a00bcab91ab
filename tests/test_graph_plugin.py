"""Graphs under pytest: collection, the same verdicts however chunks are spread or selected,
the step cache for upstream runs, and one artifact version per session."""

from __future__ import annotations

import re

import pytest
from _support import (
    IN_PROCESS,
    NO_XDIST,
    TWO_WORKERS,
    builder_source,
    read_lines,
    same_verdicts_in_every_mode,
    treatments_source,
    verdict_lines,
)

# "prep" draws a number per run with a cacheable step that logs each execution to
# executions.txt and writes it as an artifact; "analyse" reads it and adds a positive,
# seed-dependent amount in "up" (a clear paired effect) and nothing in "flat" (a failed
# verdict). Neither "up" nor "flat" exists upstream, so both read prep's baseline files.
GRAPH_FILE = """\
from __future__ import annotations

import json
from pathlib import Path

from pytest_crystallize import (
    Artifact,
    ArtifactPlugin,
    Experiment,
    ExperimentGraph,
    data_source,
    hypothesis,
    pipeline_step,
    stats,
    treatment,
)

EXECUTIONS = Path(__file__).with_name("executions.txt")


@data_source
def noise(ctx):
    return float(ctx.rng.normal())


@pipeline_step(cacheable=True)
def draw(x, ctx, *, out, scale=1.0):
    with EXECUTIONS.open("a") as handle:
        handle.write(f"{ctx['condition']} {ctx['replicate']}\\n")
    out.write(json.dumps(x * scale))
    return x, {"x": x * scale}


@pipeline_step()
def shift(text, ctx, *, delta=0.0):
    value = json.loads(text) + delta * ctx.rng.uniform(0.5, 1.5)
    return value, {"v": value}


@hypothesis(verifier=stats.paired_t_test(alternative="greater"), metrics="v")
def higher(result):
    return result["p_value"]


<<GRAPH>>
"""


def module_level(replicates: int, plugins: str) -> str:
    """prep and analyse at module level, and the graph of the two."""
    calls = [f".plugins([{plugins}])"]
    prep = builder_source(
        "prep",
        source="noise()",
        steps=["draw(out=numbers)"],
        treatments=treatments_source({"wide": 2.0}, key="scale"),
        calls=[".outputs([numbers])", *calls],
        replicates=replicates,
    )
    analyse = builder_source(
        "analyse",
        source="numbers",
        steps=["shift()"],
        treatments=treatments_source({"up": 1.0, "flat": 0.0}),
        hypotheses="higher",
        calls=calls,
        replicates=replicates,
    )
    graph = "graph = ExperimentGraph(prep, analyse)"
    return f'numbers = Artifact("numbers.json"){prep}{analyse}\n{graph}\n'


# The same experiments, reachable only through the graph.
GRAPH_ONLY = """\
def build():
    numbers = Artifact("numbers.json")
    prep = (
        Experiment.builder("prep")
        .datasource(noise())
        .add_step(draw(out=numbers))
        .outputs([numbers])
        .build()
    )
    analyse = Experiment.builder("analyse").datasource(numbers).add_step(shift()).build()
    return prep, analyse


pipeline = ExperimentGraph(*reversed(build()))
"""


def graph_file(replicates: int = 8, plugins: str = "", graph: str | None = None) -> str:
    return GRAPH_FILE.replace("<<GRAPH>>", graph or module_level(replicates, plugins))


def chunk_ids(result: pytest.RunResult) -> list[str]:
    """The chunk item ids ``--collect-only -q`` prints."""
    return [line for line in result.stdout.lines if re.fullmatch(r"\S+::chunk-\d+", line)]


def analyse_rows(stdout: str) -> list[str]:
    """The rows of analyse's verdicts in the ``crystallize`` section."""
    return [line for line in stdout.splitlines() if line.startswith("analyse ")]


def executions(tester: pytest.Pytester) -> list[str]:
    return read_lines(tester.path / "executions.txt")


def test_a_module_level_graph_is_collected_once_per_experiment_in_dependency_order(
    ourtester: pytest.Pytester,
) -> None:
    ourtester.makepyfile(experiment_graph=graph_file())
    result = ourtester.runpytest("--crystallize", "--collect-only", "-q")
    assert chunk_ids(result) == [
        "experiment_graph.py::prep::baseline::chunk-0",
        "experiment_graph.py::prep::wide::chunk-0",
        "experiment_graph.py::analyse::baseline::chunk-0",
        "experiment_graph.py::analyse::up::chunk-0",
        "experiment_graph.py::analyse::flat::chunk-0",
    ]


def test_experiments_reachable_only_through_a_graph_are_collected_in_dependency_order(
    ourtester: pytest.Pytester,
) -> None:
    ourtester.makepyfile(experiment_graph=graph_file(graph=GRAPH_ONLY))
    result = ourtester.runpytest("--crystallize", "--collect-only", "-q")
    assert chunk_ids(result) == [
        "experiment_graph.py::prep::baseline::chunk-0",
        "experiment_graph.py::analyse::baseline::chunk-0",
    ]


def test_the_downstream_verdicts_are_the_same_however_chunks_are_spread_or_selected(
    ourtester: pytest.Pytester,
) -> None:
    ourtester.makepyfile(experiment_graph=graph_file())
    single, workers = {"passed": 6, "failed": 1}, {"passed": 18, "failed": 1}
    modes = {
        "-n 0": (IN_PROCESS, single),
        "-p no:xdist": (NO_XDIST, single),
        # 2 workers: prep 2 conditions x 4 chunks, analyse 3 conditions x 3 chunks.
        "-n 2": (TWO_WORKERS, workers),
        "-n 2 --dist worksteal": ([*TWO_WORKERS, "--dist", "worksteal"], workers),
        # Only the downstream is selected: its upstream runs are computed in-process.
        "-k analyse": ([*IN_PROCESS, "-k", "analyse"], {"passed": 4, "failed": 1, "deselected": 2}),
        # (xdist workers deselect, and the controller does not count it.)
        "-n 2 -k analyse": ([*TWO_WORKERS, "-k", "analyse"], {"passed": 10, "failed": 1}),
    }
    rows, verdicts = same_verdicts_in_every_mode(
        ourtester, modes, analyse_rows, "--crystallize-no-cache"
    )
    assert len(rows) == 2
    assert rows[0].split()[:3] == ["analyse", "higher", "up"]
    assert rows[0].split()[-1] == "PASSED"
    assert rows[1].split()[:3] == ["analyse", "higher", "flat"]
    assert "FAILED" in rows[1].split()[-2:]  # maybe with a "!" note: no variance
    failed, passed = verdicts
    assert failed.startswith("FAILED p=1 experiment_graph.py::analyse::higher::flat - ")
    assert passed.startswith("PASSED p=")
    assert "experiment_graph.py::analyse::higher::up - " in passed


def test_selecting_only_the_downstream_computes_just_the_upstream_runs_it_reads(
    ourtester: pytest.Pytester,
) -> None:
    ourtester.makepyfile(experiment_graph=graph_file())
    result = ourtester.runpytest("--crystallize", *IN_PROCESS, "-k", "analyse")
    result.assert_outcomes(passed=4, failed=1, deselected=2)
    # analyse's conditions read prep's baseline: 8 runs, each computed once, none of "wide".
    assert sorted(executions(ourtester)) == sorted(f"baseline {r}" for r in range(8))


def test_with_a_warm_cache_selecting_the_downstream_executes_no_upstream_step(
    ourtester: pytest.Pytester,
) -> None:
    ourtester.makepyfile(experiment_graph=graph_file())
    first = ourtester.runpytest("--crystallize", *IN_PROCESS)
    first.assert_outcomes(passed=6, failed=1)
    # Each prep run executed once; analyse's reads of prep's baseline hit the cache.
    assert len(executions(ourtester)) == 16
    again = ourtester.runpytest("--crystallize", *IN_PROCESS, "-k", "analyse")
    again.assert_outcomes(passed=4, failed=1, deselected=2)
    assert len(executions(ourtester)) == 16
    assert analyse_rows(again.stdout.str()) == analyse_rows(first.stdout.str())


def test_a_versioned_xdist_session_writes_one_new_version_per_experiment(
    ourtester: pytest.Pytester,
) -> None:
    ourtester.makepyfile(experiment_graph=graph_file(plugins="ArtifactPlugin(versioned=True)"))
    data = ourtester.path / "data"
    for session in range(2):
        result = ourtester.runpytest("--crystallize", *TWO_WORKERS)
        result.assert_outcomes(passed=18, failed=1)
        expected = [f"v{i}" for i in range(session + 1)]
        assert sorted(p.name for p in (data / "prep").iterdir()) == expected
        assert not (data / "analyse").exists()  # it writes no file, so it makes no folder
        newest = data / "prep" / f"v{session}"
        files = sorted(str(p.relative_to(newest)) for p in newest.rglob("numbers.json"))
        assert files == sorted(
            f"replicate_{r}/{c}/draw/numbers.json" for r in range(8) for c in ("baseline", "wide")
        )


def test_an_unversioned_session_leaves_no_file_of_a_previous_larger_session(
    ourtester: pytest.Pytester,
) -> None:
    ourtester.makepyfile(experiment_graph=graph_file(replicates=8))
    ourtester.runpytest("--crystallize", *TWO_WORKERS).assert_outcomes(passed=18, failed=1)
    version = ourtester.path / "data" / "prep" / "v0"
    assert len(list(version.rglob("numbers.json"))) == 16
    ourtester.makepyfile(experiment_graph=graph_file(replicates=3))
    # 3 replicates: prep 2 conditions x 3 chunks, analyse 3 conditions x 3 chunks.
    ourtester.runpytest("--crystallize", *TWO_WORKERS).assert_outcomes(passed=16, failed=1)
    files = sorted(str(p.relative_to(version)) for p in version.rglob("*") if p.is_file())
    assert files.pop(0) == ".crystallize-version"  # the plugin made it: it may empty it
    assert files == sorted(
        f"replicate_{r}/{c}/draw/numbers.json" for r in range(3) for c in ("baseline", "wide")
    )


def test_the_pipeline_example_passes_its_verdicts(ourtester: pytest.Pytester) -> None:
    ourtester.copy_example("experiment_pipeline.py")
    result = ourtester.runpytest("--crystallize", "-rA", *IN_PROCESS)
    result.assert_outcomes(passed=6)  # prepare: 1 chunk; compare_methods: 3 chunks, 2 verdicts
    assert result.ret == pytest.ExitCode.OK
    lines = verdict_lines(result.stdout.str())
    assert [line.split(" - ")[0].split()[-1] for line in lines] == [
        "experiment_pipeline.py::compare_methods::smaller_error::median",
        "experiment_pipeline.py::compare_methods::smaller_error::trimmed_mean",
    ]
    for line in lines:
        assert line.startswith("PASSED p=")
        assert float(line.split()[1].removeprefix("p=")) < 0.001

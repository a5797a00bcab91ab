"""Experiment graphs: dependency order, which upstream file a downstream run reads, bad input.

The rule under test (``pytest_crystallize._engine.graph``): a downstream run reads the upstream run
of the same replicate and of the condition with the same name, else the upstream baseline;
inside ``graph.run()`` the file is the one this graph run wrote.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from _support import from_json, to_json

from pytest_crystallize import (
    Artifact,
    ArtifactPlugin,
    BasePlugin,
    Experiment,
    ExperimentDefinitionError,
    ExperimentGraph,
    ExperimentInput,
    ParallelExecution,
    data_source,
    pipeline_step,
    treatment,
)
from pytest_crystallize._engine.errors import CrystallizeError

ORDER: list[str] = []  # experiments in the order their steps ran
UPSTREAM = {"offset": 0}  # changes what the upstream writes without changing its definition


@pytest.fixture(autouse=True)
def _fresh(in_tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ORDER.clear()
    monkeypatch.setitem(UPSTREAM, "offset", 0)


@data_source
def replicate_number(ctx):
    return ctx["replicate"]


@pipeline_step()
def produce(x, ctx, *, out, scale=1):
    """Upstream: writes ``{"value": ..., "condition": ...}`` and records the order."""
    ORDER.append(ctx["experiment_label"])
    value = x * scale + UPSTREAM["offset"]
    out.write({"value": value, "condition": ctx["condition"]})
    return x, {"value": value}


@pipeline_step()
def consume(data, ctx, *, bonus=0):
    """Downstream: records what it read."""
    ORDER.append(ctx["experiment_label"])
    return data, {"read": data["value"] + bonus}


@pipeline_step()
def combine(inputs, ctx):
    ORDER.append(ctx["experiment_label"])
    return inputs, {"sum": inputs["left"]["value"] + inputs["right"]["value"]}


paths_seen: list[Path] = []  # paths value_at received


@pipeline_step()
def value_at(path, ctx):
    paths_seen.append(path)
    return path, {"value": from_json(path)["value"]}


@pipeline_step()
def count(x, ctx):
    ORDER.append(ctx["experiment_label"])
    return x, {"x": x}


def upstream(
    name: str = "prep", *, replicates: int = 3, plugins: list[Any] | None = None
) -> tuple[Experiment, Artifact]:
    out = Artifact(f"{name}.json", loader=from_json, writer=to_json)
    exp = (
        Experiment.builder(name)
        .datasource(replicate_number())
        .add_step(produce(out=out))
        .initial_ctx({"experiment_label": name})
        .treatments([treatment("big", {"scale": 10}), treatment("huge", {"scale": 100})])
        .outputs([out])
        .plugins(plugins or [])
        .replicates(replicates)
        .build()
    )
    return exp, out


def downstream(
    source: Any, name: str = "analyse", *, replicates: int = 3, plugins: list[Any] | None = None
) -> Experiment:
    return (
        Experiment.builder(name)
        .datasource(source)
        .add_step(consume())
        .initial_ctx({"experiment_label": name})
        .treatments([treatment("big", {}), treatment("plus_one", {"bonus": 1})])
        .plugins(plugins or [])
        .replicates(replicates)
        .build()
    )


def metrics_of(result: Any) -> dict[str, dict[str, list[Any]]]:
    m = result.metrics
    return {"baseline": m.baseline.metrics} | {n: t.metrics for n, t in m.treatments.items()}


# --- order ---------------------------------------------------------------------------------


def test_the_graph_runs_upstream_before_downstream_whatever_order_they_are_given_in() -> None:
    prep, out = upstream(replicates=1)
    analyse = downstream(out, replicates=1)
    graph = ExperimentGraph(analyse, prep)
    assert graph.order == ["prep", "analyse"]
    results = graph.run()
    assert list(results) == ["prep", "analyse"]
    assert ORDER == ["prep"] * 3 + ["analyse"] * 3  # three conditions each


def test_an_independent_experiment_may_share_the_graph() -> None:
    prep, out = upstream(replicates=1)
    analyse = downstream(out, replicates=1)
    alone = (
        Experiment.builder("alone")
        .datasource(replicate_number())
        .add_step(count())
        .initial_ctx({"experiment_label": "alone"})
        .replicates(2)
        .build()
    )
    graph = ExperimentGraph(alone, analyse, prep)
    assert graph.upstream == {"alone": [], "analyse": ["prep"], "prep": []}
    assert graph.order.index("prep") < graph.order.index("analyse")
    results = graph.run()
    assert sorted(results) == ["alone", "analyse", "prep"]
    assert results["alone"].metrics.baseline.metrics == {"x": [0, 1]}
    assert ORDER.index("analyse") > max(i for i, name in enumerate(ORDER) if name == "prep")


def test_from_experiments_builds_the_same_graph() -> None:
    prep, out = upstream(replicates=1)
    analyse = downstream(out, replicates=1)
    graph = ExperimentGraph.from_experiments([analyse, prep], name="pipeline")
    assert (graph.name, graph.order) == ("pipeline", ["prep", "analyse"])


# --- which file a downstream run reads -------------------------------------------------------


def test_downstream_conditions_read_the_same_named_upstream_condition_else_its_baseline() -> None:
    prep, out = upstream()
    analyse = downstream(out)
    result = ExperimentGraph(prep, analyse).run()["analyse"]
    result.raise_for_errors()
    # "big" exists upstream (scale 10); "plus_one" does not, so it reads the baseline.
    assert metrics_of(result) == {
        "baseline": {"read": [0, 1, 2]},
        "big": {"read": [0, 10, 20]},
        "plus_one": {"read": [1, 2, 3]},
    }
    # Upstream treatments do not propagate: "huge" is not a downstream condition.
    assert result.conditions == ("baseline", "big", "plus_one")


def test_a_downstream_with_more_replicates_reads_the_upstream_replicate_modulo_its_count() -> None:
    prep, out = upstream(replicates=2)
    analyse = downstream(out, replicates=5)
    result = ExperimentGraph(prep, analyse).run()["analyse"]
    assert result.metrics.treatments["big"].metrics == {"read": [0, 10, 0, 10, 0]}


def test_a_graph_run_with_more_replicates_reads_each_upstream_replicate_of_this_run() -> None:
    prep, out = upstream(replicates=2)
    analyse = downstream(out, replicates=2)
    results = ExperimentGraph(prep, analyse).run(replicates=4)
    assert results["prep"].metrics.treatments["big"].metrics == {"value": [0, 10, 20, 30]}
    # This run's upstream has 4 replicates: downstream replicate 3 reads upstream replicate 3.
    assert metrics_of(results["analyse"])["big"] == {"read": [0, 10, 20, 30]}


def test_a_rerun_of_the_graph_reads_what_this_run_wrote() -> None:
    prep, out = upstream()
    graph = ExperimentGraph(prep, downstream(out))
    first = graph.run()["analyse"]
    UPSTREAM["offset"] = 1000
    second = graph.run()["analyse"]
    assert first.metrics.baseline.metrics == {"read": [0, 1, 2]}
    assert second.metrics.baseline.metrics == {"read": [1000, 1001, 1002]}
    assert second.metrics.treatments["big"].metrics == {"read": [1000, 1010, 1020]}


def test_a_versioned_rerun_reads_its_own_version_not_the_older_one_on_disk() -> None:
    prep, out = upstream(plugins=[ArtifactPlugin(versioned=True)])
    graph = ExperimentGraph(prep, downstream(out, plugins=[ArtifactPlugin(versioned=True)]))
    graph.run()
    UPSTREAM["offset"] = 1000
    second = graph.run()
    assert sorted(p.name for p in Path("data/prep").iterdir()) == ["v0", "v1"]
    assert from_json(Path("data/prep/v0/replicate_1/baseline/produce/prep.json"))["value"] == 1
    assert second["analyse"].metrics.baseline.metrics == {"read": [1000, 1001, 1002]}


class NewerVersionAppears(BasePlugin):
    """Before the downstream runs, another process writes a newer upstream version."""

    def before_run(self, experiment: Experiment) -> None:
        for replicate in range(3):
            for condition in ("baseline", "big"):
                folder = Path(f"data/prep/v9/replicate_{replicate}/{condition}/produce")
                folder.mkdir(parents=True, exist_ok=True)
                (folder / "prep.json").write_bytes(
                    to_json({"value": -1, "condition": "someone else's"})
                )


def test_a_newer_version_written_by_someone_else_does_not_leak_into_this_graph_run() -> None:
    prep, out = upstream(plugins=[ArtifactPlugin(versioned=True)])
    analyse = downstream(out, plugins=[NewerVersionAppears()])
    result = ExperimentGraph(prep, analyse).run()["analyse"]
    assert Path("data/prep/v9").is_dir()
    assert metrics_of(result)["baseline"] == {"read": [0, 1, 2]}
    assert metrics_of(result)["big"] == {"read": [0, 10, 20]}


def test_a_lone_downstream_run_computes_its_upstream_and_matches_the_graph() -> None:
    prep, out = upstream()
    analyse = downstream(out)
    in_graph = ExperimentGraph(prep, analyse).run()["analyse"]
    shutil.rmtree("data")
    ORDER.clear()
    alone = analyse.run()
    alone.raise_for_errors()
    assert metrics_of(alone) == metrics_of(in_graph)
    assert "prep" in ORDER  # the upstream runs were computed in this process


def test_a_lone_downstream_run_with_nothing_on_disk_needs_no_prior_upstream_run() -> None:
    _, out = upstream()
    analyse = downstream(out)
    alone = analyse.run()
    assert metrics_of(alone)["big"] == {"read": [0, 10, 20]}
    assert metrics_of(alone)["plus_one"] == {"read": [1, 2, 3]}


def test_experiment_input_reads_two_artifacts_from_two_upstream_experiments() -> None:
    left, left_out = upstream("left")
    right, right_out = upstream("right")
    both = (
        Experiment.builder("both")
        .datasource(ExperimentInput(left=left_out, right=right_out))
        .add_step(combine())
        .initial_ctx({"experiment_label": "both"})
        .treatments([treatment("big", {})])
        .replicates(3)
        .build()
    )
    graph = ExperimentGraph(both, right, left)
    assert graph.upstream["both"] == ["left", "right"]
    assert graph.order[-1] == "both"
    result = graph.run()["both"]
    assert metrics_of(result) == {"baseline": {"sum": [0, 2, 4]}, "big": {"sum": [0, 20, 40]}}
    assert metrics_of(both.run()) == metrics_of(result)


def test_experiment_input_needs_inputs_that_are_data_sources() -> None:
    with pytest.raises(CrystallizeError, match="ExperimentInput needs at least one input"):
        ExperimentInput()
    with pytest.raises(CrystallizeError, match=r"ExperimentInput\(x=...\) takes an Artifact"):
        ExperimentInput(x="data.json")


def test_artifact_datasource_gives_the_path_of_the_file_on_disk() -> None:
    prep, _ = upstream(replicates=2)
    prep.run()
    for condition, values in (("baseline", [0, 1]), ("big", [0, 10])):
        paths_seen.clear()
        reader = (
            Experiment.builder(f"reader_{condition}")
            .datasource(prep.artifact_datasource("produce", "prep.json", condition=condition))
            .add_step(value_at())
            .replicates(2)
            .build()
        )
        result = reader.run()
        result.raise_for_errors()
        assert result.metrics.baseline.metrics == {"value": values}
        assert paths_seen == [
            Path(f"data/prep/v0/replicate_{r}/{condition}/produce/prep.json") for r in range(2)
        ]


def test_artifact_datasource_before_the_upstream_ran_says_to_run_it_first() -> None:
    prep, _ = upstream(replicates=1)
    reader = (
        Experiment.builder("reader")
        .datasource(prep.artifact_datasource("produce", "prep.json"))
        .add_step(count())
        .initial_ctx({"experiment_label": "reader"})
        .build()
    )
    error = reader.run().errors["baseline_rep_0"]
    assert error.exc_type == "FileNotFoundError"
    assert "experiment 'prep' has no file 'prep.json' from step 'produce'" in error.message
    assert error.message.endswith("run it first")


def test_a_downstream_run_whose_upstream_run_failed_names_the_upstream_experiment() -> None:
    prep, out = upstream(replicates=2)
    analyse = downstream(out, replicates=2)
    UPSTREAM["offset"] = "not a number"  # type: ignore[assignment]  # x * scale + str raises
    results = ExperimentGraph(prep, analyse).run()
    assert len(results["prep"].errors) == 6
    error = results["analyse"].errors["baseline_rep_0"]
    assert error.stage == "data source"
    assert "the upstream experiment 'prep' failed in the run this one reads" in error.message
    assert "('baseline', replicate 0)" in error.message


# --- bad input -----------------------------------------------------------------------------


def test_a_cycle_is_refused_naming_both_experiments() -> None:
    a_out, b_out = Artifact("a.bin"), Artifact("b.bin")
    a = Experiment.builder("a").datasource(b_out).add_step(count()).outputs([a_out]).build()
    b = Experiment.builder("b").datasource(a_out).add_step(count()).outputs([b_out]).build()
    with pytest.raises(ExperimentDefinitionError) as info:
        ExperimentGraph(a, b)
    assert str(info.value) == (
        "graph 'ExperimentGraph' has a cycle: a -> b -> a; an experiment cannot read its own output"
    )


def test_an_experiment_reading_its_own_output_is_a_cycle() -> None:
    out = Artifact("self.bin")
    exp = Experiment.builder("selfish").datasource(out).add_step(count()).outputs([out]).build()
    with pytest.raises(ExperimentDefinitionError, match="cycle: selfish -> selfish"):
        ExperimentGraph(exp)


def test_a_consumer_of_an_artifact_nobody_produces_is_refused() -> None:
    orphan = Artifact("orphan.json")
    analyse = downstream(orphan)
    with pytest.raises(ExperimentDefinitionError) as info:
        ExperimentGraph(analyse, name="pipeline")
    assert str(info.value) == (
        "graph 'pipeline': experiment 'analyse' reads artifact 'orphan.json', which no "
        "experiment produces; list it in outputs=[...] of the experiment whose step writes it"
    )


def test_a_lone_consumer_of_an_artifact_nobody_produces_fails_its_runs_naming_the_artifact() -> (
    None
):
    result = downstream(Artifact("orphan.json"), replicates=1).run()
    error = result.errors["baseline_rep_0"]
    assert error.exc_type == "ExperimentDefinitionError"
    assert "artifact 'orphan.json'" in error.message
    assert "no experiment produces it" in error.message


def test_a_producer_missing_from_the_graph_is_refused() -> None:
    _, out = upstream()
    analyse = downstream(out)
    with pytest.raises(ExperimentDefinitionError) as info:
        ExperimentGraph(analyse)
    assert str(info.value) == (
        "graph 'ExperimentGraph': experiment 'analyse' reads artifact 'prep.json' of "
        "experiment 'prep', which is not in this graph; add it"
    )


def test_an_experiment_without_a_name_is_refused_in_a_graph() -> None:
    nameless = Experiment(replicate_number(), [count()], initial_ctx={"experiment_label": "x"})
    with pytest.raises(ExperimentDefinitionError) as info:
        ExperimentGraph(nameless)
    assert str(info.value) == (
        "every experiment in an ExperimentGraph needs a name: build it with "
        "Experiment.builder('name')"
    )


def test_two_experiments_with_one_name_are_refused_in_a_graph() -> None:
    prep, _ = upstream()
    twin, _ = upstream()  # also named "prep"
    with pytest.raises(ExperimentDefinitionError) as info:
        ExperimentGraph(prep, twin)
    assert (
        str(info.value) == "graph 'ExperimentGraph': two experiments are named 'prep'; rename one"
    )


def test_a_graph_takes_only_experiments() -> None:
    with pytest.raises(CrystallizeError, match="ExperimentGraph takes Experiment objects"):
        ExperimentGraph("prep")  # type: ignore[arg-type]


def test_an_upstream_that_never_writes_its_declared_artifact_is_named() -> None:
    out = Artifact("never.json")
    silent = (
        Experiment.builder("silent")
        .datasource(replicate_number())
        .add_step(count())
        .initial_ctx({"experiment_label": "silent"})
        .outputs([out])
        .build()
    )
    result = ExperimentGraph(silent, downstream(out, replicates=1)).run()["analyse"]
    message = result.errors["baseline_rep_0"].message
    assert "experiment 'silent' lists artifact 'never.json' in outputs" in message
    assert "wrote no file of that name (it wrote: none)" in message


def test_a_downstream_under_process_execution_reads_this_graph_runs_files() -> None:
    prep, out = upstream(plugins=[ArtifactPlugin(versioned=True)])
    analyse = downstream(
        out, plugins=[NewerVersionAppears(), ParallelExecution(2, executor_type="process")]
    )
    result = ExperimentGraph(prep, analyse).run()["analyse"]
    result.raise_for_errors()
    assert metrics_of(result)["big"] == {"read": [0, 10, 20]}

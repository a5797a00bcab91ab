"""``run(strategy="resume")``: skip the runs whose results are complete on disk, same result.

Each step execution appends a line to ``calls.txt`` in the test's directory, so the tests
count what was executed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _support import from_json, to_json

from pytest_crystallize import (
    Artifact,
    ArtifactPlugin,
    Experiment,
    ExperimentGraph,
    ParallelExecution,
    data_source,
    pipeline_step,
    treatment,
)
from pytest_crystallize._engine.errors import CrystallizeUsageError

CALLS = Path("calls.txt")
FAIL = {"condition": None}  # the condition whose replicate 1 raises, if any


@pytest.fixture(autouse=True)
def _fresh(in_tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(FAIL, "condition", None)


def calls() -> list[str]:
    lines = CALLS.read_text().splitlines() if CALLS.exists() else []
    CALLS.unlink(missing_ok=True)
    return lines


@data_source
def noise(ctx):
    return float(ctx.rng.normal())


@pipeline_step()
def work(x, ctx, *, delta=0.0, factor=1.0):
    with CALLS.open("a") as handle:
        handle.write(f"{ctx['condition']} {ctx['replicate']}\n")
    if ctx["condition"] == FAIL["condition"] and ctx["replicate"] == 1:
        raise RuntimeError("flaky")
    value = (x + delta) * factor
    return value, {"value": value}


def make(factor: float = 1.0, plugins: list[Any] | None = None) -> Experiment:
    return (
        Experiment.builder("resumable")
        .datasource(noise())
        .add_step(work(factor=factor))
        .treatments([treatment("plus", {"delta": 1.0}), treatment("minus", {"delta": -1.0})])
        .plugins(plugins or [])
        .replicates(4)
        .build()
    )


def test_resume_after_a_full_run_executes_nothing_and_returns_the_same_metrics() -> None:
    exp = make()
    full = exp.run()
    assert len(calls()) == 12
    resumed = exp.run(strategy="resume")
    assert calls() == []
    assert resumed.metrics == full.metrics
    assert resumed.conditions == full.conditions
    assert [(r.condition, r.replicate, r.seed) for r in resumed.runs] == [
        (r.condition, r.replicate, r.seed) for r in full.runs
    ]
    assert resumed.provenance["seeds"] == full.provenance["seeds"]


def test_resume_reruns_only_the_condition_that_failed_and_matches_a_full_run() -> None:
    exp = make()
    FAIL["condition"] = "plus"
    broken = exp.run()
    assert sorted(broken.errors) == ["plus_rep_1"]
    assert not Path("data/resumable/v0/plus/.crystallize_complete").exists()
    assert Path("data/resumable/v0/minus/.crystallize_complete").is_file()
    calls()
    FAIL["condition"] = None
    resumed = exp.run(strategy="resume")
    assert sorted(calls()) == [f"plus {r}" for r in range(4)]
    assert resumed.errors == {}
    assert Path("data/resumable/v0/plus/.crystallize_complete").is_file()
    full = exp.run()
    assert len(calls()) == 12
    assert resumed.metrics == full.metrics


def test_resume_under_process_execution_also_reruns_only_the_failed_condition() -> None:
    # fork: the workers see the module flag as the test set it
    executor = ParallelExecution(max_workers=2, executor_type="process", mp_context="fork")
    exp = make(plugins=[executor])
    FAIL["condition"] = "minus"
    assert sorted(exp.run().errors) == ["minus_rep_1"]
    calls()
    FAIL["condition"] = None
    resumed = exp.run(strategy="resume")
    assert sorted(calls()) == [f"minus {r}" for r in range(4)]
    assert resumed.metrics == make().run().metrics


def test_resume_after_a_changed_definition_recomputes_everything() -> None:
    make(factor=1.0).run()
    calls()
    changed = make(factor=2.0)
    resumed = changed.run(strategy="resume")
    assert len(calls()) == 12
    full = changed.run()
    calls()
    assert resumed.metrics == full.metrics


def test_resume_with_more_replicates_than_on_disk_recomputes() -> None:
    exp = make()
    exp.run(replicates=2)
    calls()
    resumed = exp.run(strategy="resume")
    assert len(calls()) == 12
    assert resumed.replicates == 4


def test_resume_continues_the_newest_version_when_versioned() -> None:
    exp = make(plugins=[ArtifactPlugin(versioned=True)])
    exp.run()
    exp.run()
    calls()
    resumed = exp.run(strategy="resume")
    assert calls() == []
    assert sorted(p.name for p in Path("data/resumable").iterdir()) == ["v0", "v1"]
    assert resumed.metrics == exp.run().metrics


def test_resume_with_nothing_on_disk_runs_everything() -> None:
    result = make().run(strategy="resume")
    assert len(calls()) == 12
    assert result.errors == {}


def test_an_unknown_strategy_is_a_clear_error() -> None:
    with pytest.raises(CrystallizeUsageError) as info:
        make().run(strategy="bogus")
    assert str(info.value) == (
        "run(strategy=...) takes 'rerun' (the default) or 'resume', got 'bogus'"
    )
    assert calls() == []


# --- graphs ----------------------------------------------------------------------------


@pipeline_step()
def publish(x, ctx, *, out, scale=1.0):
    with CALLS.open("a") as handle:
        handle.write(f"prep {ctx['condition']} {ctx['replicate']}\n")
    out.write(x * scale)
    return x, {"x": x * scale}


@pipeline_step()
def read(x, ctx, *, delta=0.0):
    with CALLS.open("a") as handle:
        handle.write(f"analyse {ctx['condition']} {ctx['replicate']}\n")
    return x, {"y": x + delta}


def graph(scale: float = 1.0) -> ExperimentGraph:
    out = Artifact("x.json", loader=from_json, writer=to_json)
    prep = (
        Experiment.builder("prep")
        .datasource(noise())
        .add_step(publish(out=out, scale=scale))
        .outputs([out])
        .replicates(3)
        .build()
    )
    analyse = (
        Experiment.builder("analyse")
        .datasource(out)
        .add_step(read())
        .treatments([treatment("plus", {"delta": 1.0})])
        .replicates(3)
        .build()
    )
    return ExperimentGraph(prep, analyse)


def test_graph_resume_skips_both_experiments_and_gives_equal_metrics() -> None:
    pipeline = graph()
    full = pipeline.run()
    assert len(calls()) == 3 + 6
    resumed = pipeline.run(strategy="resume")
    assert calls() == []
    assert list(resumed) == ["prep", "analyse"]
    for name in ("prep", "analyse"):
        assert resumed[name].metrics == full[name].metrics, name
    assert resumed["prep"].artifacts == full["prep"].artifacts


def test_graph_resume_reruns_only_the_downstream_when_the_upstream_is_complete() -> None:
    pipeline = graph()
    full = pipeline.run()
    calls()
    for folder in Path("data/analyse/v0").iterdir():  # as if analyse had been interrupted
        if folder.is_dir():
            (folder / ".crystallize_complete").unlink()
    resumed = pipeline.run(strategy="resume")
    assert sorted(calls()) == sorted(
        f"analyse {c} {r}" for c in ("baseline", "plus") for r in range(3)
    )
    assert resumed["analyse"].metrics == full["analyse"].metrics


def test_graph_resume_recomputes_the_downstream_when_the_upstream_definition_changed() -> None:
    graph().run()
    calls()
    changed = graph(scale=10.0)
    resumed = changed.run(strategy="resume")
    assert len(calls()) == 3 + 6  # prep changed, so what analyse read changed too
    full = changed.run()
    calls()
    for name in ("prep", "analyse"):
        assert resumed[name].metrics == full[name].metrics, name


def test_a_lone_downstream_resume_recomputes_when_its_upstream_definition_changed() -> None:
    graph().run()
    calls()
    analyse = graph(scale=10.0).experiments["analyse"]
    resumed = analyse.run(strategy="resume")
    assert sorted(c for c in calls() if c.startswith("analyse")) == sorted(
        f"analyse {c} {r}" for c in ("baseline", "plus") for r in range(3)
    )
    assert resumed.metrics == analyse.run().metrics

"""The tutorial runs unchanged as a script and gives what its "What you get" list promises."""

from __future__ import annotations

import ast
import runpy
from pathlib import Path

import pytest
from _support import ROOT, run_python

from pytest_crystallize import Experiment, ParallelExecution, pipeline_step

SCRIPT = ROOT / "examples" / "tutorial" / "tutorial_script.py"


pytestmark = pytest.mark.usefixtures("in_tmp_path")


@pytest.fixture(scope="module")
def tutorial(tmp_path_factory):
    """The tutorial's module namespace (running it prints, which pytest captures)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path_factory.mktemp("tutorial"))
        return runpy.run_path(str(SCRIPT), run_name="tutorial_script")


def printed_list(stdout: str, label: str) -> list[float]:
    for line in stdout.splitlines():
        if line.startswith(f"{label}:"):
            return ast.literal_eval(line.split(":", 1)[1].strip())
    msg = f"no line starting with {label!r} in:\n{stdout}"
    raise AssertionError(msg)


def test_the_tutorial_script_runs_and_prints_what_the_tutorial_promises(tmp_path):
    done = run_python(str(SCRIPT), cwd=tmp_path)
    assert printed_list(done.stdout, "baseline total") == [0.0] * 12
    assert printed_list(done.stdout, "boost_total total") == [30.0] * 12
    hypothesis_line = next(
        line for line in done.stdout.splitlines() if line.startswith("hypothesis results:")
    )
    assert "'boost_total'" in hypothesis_line
    assert "p_value" in hypothesis_line
    assert "significant" in hypothesis_line
    assert "errors: {}" in done.stdout
    assert not list(tmp_path.rglob("replicate_*"))  # no step added an artifact


def test_the_tutorial_gives_per_replicate_metrics_and_a_hypothesis_summary(tutorial):
    result = tutorial["result"]
    assert result.errors == {}
    assert result.metrics.baseline.metrics["total"] == [0.0] * 12
    assert result.metrics.treatments["boost_total"].metrics["total"] == [30.0] * 12

    evaluated = result.get_hypothesis("order_by_p_value")
    assert evaluated is not None
    verdict = evaluated.results["boost_total"]
    assert set(verdict) == {"p_value", "significant"}
    assert bool(verdict["significant"]) is True
    assert evaluated.ranking["best"] == "boost_total"


def test_the_tutorial_treatment_works_called_and_uncalled(tutorial):
    def run(treatments):
        return (
            Experiment.builder("basic")
            .datasource(tutorial["fetch_numbers"]())
            .add_step(tutorial["add_delta"]())
            .add_step(tutorial["summarize"]())
            .plugins([ParallelExecution(max_workers=4)])
            .treatments(treatments)
            .hypotheses([tutorial["order_by_p_value"]])
            .replicates(12)
            .build()
            .run()
        )

    boost_total = tutorial["boost_total"]
    called = run([boost_total()])
    uncalled = run([boost_total])
    assert called.metrics.treatments["boost_total"].metrics["total"] == [30.0] * 12
    assert called.metrics.baseline.metrics == uncalled.metrics.baseline.metrics
    assert called.metrics.treatments["boost_total"] == uncalled.metrics.treatments["boost_total"]
    assert (
        called.get_hypothesis("order_by_p_value").results
        == uncalled.get_hypothesis("order_by_p_value").results
    )


@pipeline_step()
def save_total(data, ctx):
    """The tutorial's `summarize`, saving the total as a file too."""
    total = sum(data)
    ctx.artifacts.add("total.txt", f"{total}".encode())
    return data, {"total": total}


def test_artifacts_a_step_adds_land_under_data_basic_v0(tutorial, tmp_path):
    result = (
        Experiment.builder("basic")
        .datasource(tutorial["fetch_numbers"]())
        .add_step(tutorial["add_delta"]())
        .add_step(save_total())
        .plugins([ParallelExecution(max_workers=4)])
        .treatments([tutorial["boost_total"]()])
        .replicates(12)
        .build()
        .run()
    )
    assert result.errors == {}
    expected = {"baseline": b"0.0", "boost_total": b"30.0"}
    for condition, content in expected.items():
        paths = result.artifacts["total.txt"][condition]
        assert len(paths) == 12
        for replicate, path in enumerate(paths):
            file = Path(
                "data/basic/v0", f"replicate_{replicate}", condition, "save_total/total.txt"
            )
            assert path == file
            assert (tmp_path / file).read_bytes() == content
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("total.txt"))
    assert len(written) == 24

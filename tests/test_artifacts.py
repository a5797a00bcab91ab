"""Artifacts: where the ArtifactPlugin writes them, versions, listing, executors, bad input.

Steps are defined at module level so that process execution can pickle them. Every test
runs in its own directory (the ArtifactPlugin writes ``./data``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _support import from_json, to_json

from pytest_crystallize import (
    Artifact,
    ArtifactPlugin,
    Experiment,
    ExperimentDefinitionError,
    ExperimentGraph,
    ParallelExecution,
    SerialExecution,
    data_source,
    pipeline_step,
    treatment,
)
from pytest_crystallize._engine.errors import CrystallizeUsageError

pytestmark = pytest.mark.usefixtures("in_tmp_path")


@data_source
def replicate_number(ctx):
    return ctx["replicate"]


@pipeline_step()
def write_both(x, ctx, *, summary, scale=1):
    """Writes ``raw.txt`` through ctx.artifacts and ``summary.json`` through a bound Artifact."""
    ctx.artifacts.add("raw.txt", f"{ctx['condition']}:{x}".encode())
    summary.write({"value": x * scale, "condition": ctx["condition"]})
    return x, {"value": x * scale}


@pipeline_step()
def write_raw(x, ctx):
    ctx.artifacts.add("raw.txt", str(x).encode())
    return x, {"value": x}


@pipeline_step()
def write_big(x, ctx):
    ctx.artifacts.add("big.bin", b"x" * 4096)
    ctx.artifacts.add("small.txt", b"s")
    return x, {"value": x}


@pipeline_step()
def write_with(x, ctx, *, out):
    out.write(x)
    return x, {"value": x}


@pipeline_step()
def read_bytes(data, ctx):
    return data, {"size": len(data)}


def producer(
    replicates: int = 3, plugins: list[Any] | None = None, name: str = "produce"
) -> tuple[Experiment, Artifact]:
    summary = Artifact("summary.json", loader=from_json, writer=to_json)
    exp = (
        Experiment.builder(name)
        .datasource(replicate_number())
        .add_step(write_both(summary=summary))
        .treatments([treatment("scaled", {"scale": 10})])
        .outputs([summary])
        .plugins(plugins or [])
        .replicates(replicates)
        .build()
    )
    return exp, summary


def expected_path(exp: str, replicate: int, condition: str, step: str, file: str) -> Path:
    return Path("data", exp, "v0", f"replicate_{replicate}", condition, step, file)


def version_dirs(exp: str) -> list[str]:
    return sorted(p.name for p in Path("data", exp).iterdir() if p.name.startswith("v"))


def test_both_ways_of_writing_land_at_data_experiment_version_replicate_condition_step_file() -> (
    None
):
    exp, _ = producer()
    result = exp.run()
    result.raise_for_errors()
    for replicate in range(3):
        for condition, scale in (("baseline", 1), ("scaled", 10)):
            raw = expected_path("produce", replicate, condition, "write_both", "raw.txt")
            assert raw.read_bytes() == f"{condition}:{replicate}".encode()
            summary = expected_path("produce", replicate, condition, "write_both", "summary.json")
            assert from_json(summary) == {"value": replicate * scale, "condition": condition}


def test_result_artifacts_lists_every_replicates_path_per_artifact_and_condition() -> None:
    exp, _ = producer(replicates=4)
    result = exp.run()
    assert sorted(result.artifacts) == ["raw.txt", "summary.json"]
    for name in ("raw.txt", "summary.json"):
        assert sorted(result.artifacts[name]) == ["baseline", "scaled"]
        for condition in ("baseline", "scaled"):
            assert list(result.artifacts[name][condition]) == [
                expected_path("produce", r, condition, "write_both", name) for r in range(4)
            ]


def test_the_manifest_maps_each_artifact_to_the_steps_that_wrote_it() -> None:
    exp, _ = producer()
    exp.run()
    manifest = from_json(Path("data/produce/v0/_manifest.json"))
    assert manifest == {"raw.txt": ["write_both"], "summary.json": ["write_both"]}
    metadata = from_json(Path("data/produce/v0/metadata.json"))
    assert (metadata["name"], metadata["replicates"]) == ("produce", 3)
    assert metadata["conditions"] == ["baseline", "scaled"]


def test_versioned_runs_write_v0_v1_v2_and_each_lists_its_own_version() -> None:
    exp, _ = producer(plugins=[ArtifactPlugin(versioned=True)])
    for number in range(3):
        result = exp.run()
        assert version_dirs("produce") == [f"v{i}" for i in range(number + 1)]
        paths = result.artifacts["raw.txt"]["baseline"]
        assert {p.parts[2] for p in paths} == {f"v{number}"}
        assert all(p.is_file() for p in paths)


def test_retention_keeps_the_newest_versions_and_drops_big_files_of_the_older_kept_ones() -> None:
    plugin = ArtifactPlugin(versioned=True, artifact_retention=2, big_file_threshold_mb=0.001)
    exp = (
        Experiment.builder("retained")
        .datasource(replicate_number())
        .add_step(write_big())
        .plugins([plugin])
        .replicates(2)
        .build()
    )
    for _ in range(4):
        exp.run()
    assert version_dirs("retained") == ["v2", "v3"]
    newest = Path("data/retained/v3/replicate_0/baseline/write_big")
    older = Path("data/retained/v2/replicate_0/baseline/write_big")
    assert (newest / "big.bin").stat().st_size == 4096
    assert (newest / "small.txt").is_file()
    assert not (older / "big.bin").exists()  # 4 KB > 0.001 MB
    assert (older / "small.txt").is_file()
    assert Path("data/retained/v2/baseline/results.json").is_file()


def test_retention_of_zero_or_less_keeps_every_version() -> None:
    exp, _ = producer(plugins=[ArtifactPlugin(versioned=True, artifact_retention=0)])
    for _ in range(4):
        exp.run()
    assert version_dirs("produce") == ["v0", "v1", "v2", "v3"]


EXECUTORS: dict[str, Callable[[], Any]] = {
    "serial": SerialExecution,
    "threads": lambda: ParallelExecution(max_workers=2, executor_type="thread"),
    "processes": lambda: ParallelExecution(max_workers=2, executor_type="process"),
}


@pytest.mark.parametrize("executor", list(EXECUTORS))
def test_files_written_under_every_executor_land_and_are_listed(executor: str) -> None:
    exp, _ = producer(replicates=4, plugins=[EXECUTORS[executor]()])
    result = exp.run()
    result.raise_for_errors()
    for name in ("raw.txt", "summary.json"):
        for condition in ("baseline", "scaled"):
            listed = list(result.artifacts[name][condition])
            assert listed == [
                expected_path("produce", r, condition, "write_both", name) for r in range(4)
            ]
            assert all(p.is_file() for p in listed)
    assert from_json(expected_path("produce", 3, "scaled", "write_both", "summary.json")) == {
        "value": 30,
        "condition": "scaled",
    }


def test_an_unversioned_rerun_with_fewer_replicates_leaves_no_stale_replicate_dirs() -> None:
    exp, _ = producer(replicates=5)
    exp.run()
    assert len(list(Path("data/produce/v0").glob("replicate_*"))) == 5
    result = exp.run(replicates=2)
    assert sorted(p.name for p in Path("data/produce/v0").glob("replicate_*")) == [
        "replicate_0",
        "replicate_1",
    ]
    assert from_json(Path("data/produce/v0/metadata.json"))["replicates"] == 2
    assert len(result.artifacts["raw.txt"]["baseline"]) == 2


def test_apply_writes_no_files() -> None:
    exp, _ = producer()
    exp.apply()
    assert not Path("data").exists()


# --- under pytest -n 2 -------------------------------------------------------------------

ARTIFACT_FILE = """\
from __future__ import annotations

from pytest_crystallize import Artifact, Experiment, data_source, pipeline_step, treatment


@data_source
def number(ctx):
    return ctx["replicate"]


@pipeline_step()
def write(x, ctx, *, out, scale=1):
    ctx.artifacts.add("raw.txt", str(x * scale).encode())
    out.write(str(-x * scale))
    return x, {"value": x * scale}


negated = Artifact("negated.txt")
writer = (
    Experiment.builder("writer")
    .datasource(number())
    .add_step(write(out=negated))
    .treatments([treatment("scaled", {"scale": 10})])
    .outputs([negated])
    .replicates(6)
    .build()
)
"""

# The controller records the artifact paths the chunk reports carry back from the workers.
LISTING_CONFTEST = """\
from __future__ import annotations

import json

LISTED = []


def pytest_runtest_logreport(report):
    for run in getattr(report, "crystallize_runs", None) or []:
        for step, name, path in run["artifacts"]:
            LISTED.append([run["condition"], run["replicate"], step, name, path])


def pytest_sessionfinish(session):
    if not hasattr(session.config, "workerinput"):
        with open("listed.json", "w") as handle:
            json.dump(sorted(LISTED), handle)
"""


def test_files_written_by_xdist_workers_land_and_their_paths_reach_the_controller(
    ourtester: pytest.Pytester,
) -> None:
    ourtester.makepyfile(experiment_writer=ARTIFACT_FILE)
    ourtester.makeconftest(LISTING_CONFTEST)
    result = ourtester.runpytest("--crystallize", "-n", "2")
    result.assert_outcomes(passed=6)  # 2 workers: 3 chunks of 2 replicates per condition
    root = ourtester.path / "data" / "writer" / "v0"
    expected = []
    for condition, scale in (("baseline", 1), ("scaled", 10)):
        for replicate in range(6):
            folder = root / f"replicate_{replicate}" / condition / "write"
            assert (folder / "raw.txt").read_text() == str(replicate * scale)
            assert (folder / "negated.txt").read_text() == str(-replicate * scale)
            for name in ("negated.txt", "raw.txt"):
                path = Path("data", "writer", "v0", f"replicate_{replicate}", condition, "write")
                expected.append([condition, replicate, "write", name, str(path / name)])
    listed = json.loads((ourtester.path / "listed.json").read_text())
    assert listed == sorted(expected)


# --- bad input ---------------------------------------------------------------------------


def test_a_writer_that_returns_something_other_than_bytes_fails_the_run_naming_the_artifact() -> (
    None
):
    out = Artifact("numbers.bin", writer=lambda obj: obj)  # returns the int itself
    exp = (
        Experiment.builder("bad_writer")
        .datasource(replicate_number())
        .add_step(write_with(out=out))
        .outputs([out])
        .replicates(2)
        .build()
    )
    result = exp.run()
    assert sorted(result.errors) == ["baseline_rep_0", "baseline_rep_1"]
    error = result.errors["baseline_rep_1"]
    assert (error.stage, error.where) == ("step", "write_with")
    assert "artifact 'numbers.bin' of experiment 'bad_writer'" in error.message
    assert "returned int 1" in error.message
    assert "a writer must return bytes" in error.message
    assert not Path("data/bad_writer/v0/replicate_0").exists()


def test_the_default_writer_refuses_an_object_and_asks_for_a_writer() -> None:
    out = Artifact("value.bin")
    exp = (
        Experiment.builder("default_writer")
        .datasource(replicate_number())
        .add_step(write_with(out=out))
        .outputs([out])
        .build()
    )
    error = exp.run().errors["baseline_rep_0"]
    assert "artifact 'value.bin' of experiment 'default_writer'" in error.message
    assert "the default writer takes bytes or str, got int" in error.message
    assert "give the Artifact a writer" in error.message


def test_adding_a_str_to_ctx_artifacts_fails_in_the_step_that_did_it() -> None:
    @pipeline_step()
    def text(x, ctx):
        ctx.artifacts.add("note.txt", "not bytes")
        return x

    exp = Experiment.builder("str_add").datasource(replicate_number()).add_step(text()).build()
    error = exp.run().errors["baseline_rep_0"]
    assert (error.stage, error.where) == ("step", "text")
    assert "artifact 'note.txt' must be bytes, got str" in error.message


def broken_loader(path: Path) -> Any:
    raise ValueError(f"cannot parse {path.name}")


def test_a_loader_that_raises_fails_the_downstream_run_naming_the_artifact_and_producer() -> None:
    raw = Artifact("raw.txt", loader=broken_loader)
    upstream = (
        Experiment.builder("upstream")
        .datasource(replicate_number())
        .add_step(write_raw())
        .outputs([raw])
        .replicates(2)
        .build()
    )
    downstream = (
        Experiment.builder("downstream")
        .datasource(raw)
        .add_step(read_bytes())
        .replicates(2)
        .build()
    )
    for result in (ExperimentGraph(upstream, downstream).run()["downstream"], downstream.run()):
        assert sorted(result.errors) == ["baseline_rep_0", "baseline_rep_1"]
        error = result.errors["baseline_rep_1"]
        assert (error.stage, error.where) == ("data source", "raw.txt")
        assert error.message == (
            "the loader of artifact 'raw.txt' (produced by experiment 'upstream', condition "
            "'baseline', replicate 1) raised ValueError: cannot parse raw.txt"
        )


def test_an_artifact_in_the_outputs_of_two_experiments_is_refused_naming_both() -> None:
    raw = Artifact("raw.txt")
    Experiment.builder("first").datasource(replicate_number()).add_step(write_raw()).outputs(
        [raw]
    ).build()
    builder = (
        Experiment.builder("second")
        .datasource(replicate_number())
        .add_step(write_raw())
        .outputs([raw])
    )
    with pytest.raises(ExperimentDefinitionError) as info:
        builder.build()
    assert str(info.value) == (
        "artifact 'raw.txt' is produced by experiment 'first'; experiment 'second' cannot "
        "produce it too: give each its own Artifact"
    )


def test_a_loader_or_writer_that_is_not_callable_is_refused() -> None:
    with pytest.raises(CrystallizeUsageError, match=r"Artifact\('x.bin', writer=...\) must be"):
        Artifact("x.bin", writer="json")  # type: ignore[arg-type]


def test_outputs_takes_only_artifacts() -> None:
    builder = (
        Experiment.builder("outs")
        .datasource(replicate_number())
        .add_step(write_raw())
        .outputs(["raw.txt"])
    )
    with pytest.raises(CrystallizeUsageError) as info:
        builder.build()
    assert str(info.value) == (
        "experiment 'outs': outputs=[...] takes Artifact objects, got 'raw.txt'"
    )

"""Plugins: BasePlugin hooks and their order, defaults and replacements, logging, artifacts."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from _support import raises_message

from pytest_crystallize import (
    ArtifactPlugin,
    BasePlugin,
    CrystallizeUsageError,
    Experiment,
    ExperimentDefinitionError,
    LoggingPlugin,
    ParallelExecution,
    SeedPlugin,
    SerialExecution,
    data_source,
    pipeline_step,
    treatment,
)

pytestmark = pytest.mark.usefixtures("in_tmp_path")


@data_source
def one(ctx):
    return 1


@pipeline_step
def first(data, ctx):
    return data + 1


@pipeline_step
def second(data, ctx):
    return data, {"value": data}


@pipeline_step
def save(data, ctx):
    ctx.artifacts.add("value.txt", str(data).encode())
    return data


class StepRecorder(BasePlugin):
    """Overrides only before_step."""

    def __init__(self, label: str, log: list[tuple[str, str, int, str]]) -> None:
        self.label = label
        self.log = log

    def before_step(self, experiment, step, ctx):
        self.log.append((self.label, ctx["condition"], ctx["replicate"], step.name))


def build(plugins=None, *, name="plugins", steps=None, replicates=2, treatments=None):
    return Experiment(
        one(),
        steps if steps is not None else [first(), second()],
        plugins=plugins,
        name=name,
        replicates=replicates,
        treatments=treatments if treatments is not None else [treatment("t", {"x": 1})],
    )


# --- BasePlugin ---------------------------------------------------------------------------


def test_a_plugin_overriding_only_before_step_is_called_once_per_step_per_run_in_list_order():
    log: list[tuple[str, str, int, str]] = []
    exp = build([StepRecorder("a", log), StepRecorder("b", log)])
    exp.run()

    expected_steps = [
        (condition, replicate, step)
        for replicate in range(2)
        for condition in ("baseline", "t")
        for step in ("first", "second")
    ]
    assert [entry[1:] for entry in log if entry[0] == "a"] == expected_steps
    assert [entry[1:] for entry in log if entry[0] == "b"] == expected_steps
    assert [entry[0] for entry in log] == ["a", "b"] * len(expected_steps)

    log.clear()
    build([StepRecorder("b", log), StepRecorder("a", log)]).run()
    assert [entry[0] for entry in log] == ["b", "a"] * len(expected_steps)


def test_only_the_hooks_a_plugin_overrides_are_registered():
    recorder = StepRecorder("a", [])
    hook = build([recorder]).plugin_manager().hook
    assert recorder in [impl.plugin for impl in hook.before_step.get_hookimpls()]
    for name in ("before_run", "before_replicate", "after_step", "after_run"):
        impls = getattr(hook, name).get_hookimpls()
        assert recorder not in [impl.plugin for impl in impls], name


class Lifecycle(BasePlugin):
    def __init__(self) -> None:
        self.events: list[str] = []

    def init_hook(self, experiment):
        self.events.append(f"init {experiment.name}")

    def before_run(self, experiment):
        self.events.append("before_run")

    def before_replicate(self, ctx):
        self.events.append(f"before_replicate {ctx['condition']} {ctx['replicate']}")

    def after_step(self, step, data):
        self.events.append(f"after_step {step.name} {data!r}")

    def after_run(self, result):
        self.events.append(f"after_run {len(result.runs)}")


def test_lifecycle_hooks_run_in_order_and_may_take_a_subset_of_their_arguments():
    plugin = Lifecycle()
    exp = build([plugin], replicates=1, treatments=[])
    assert plugin.events == ["init plugins"]
    exp.run()
    assert plugin.events == [
        "init plugins",
        "before_run",
        "before_replicate baseline 0",
        "after_step first 2",
        "after_step second 2",
        "after_run 1",
    ]


# --- defaults and replacements ------------------------------------------------------------


def test_the_default_plugins_are_added():
    exp = build()
    kinds = [type(p) for p in exp.plugins]
    assert sorted(k.__name__ for k in kinds) == [
        "ArtifactPlugin",
        "LoggingPlugin",
        "SeedPlugin",
        "SerialExecution",
    ]


def test_a_plugin_you_pass_replaces_the_default_of_its_kind():
    mine = SeedPlugin(seed=1)
    artifacts = ArtifactPlugin(root_dir="elsewhere")
    exp = build([mine, artifacts])

    assert [p for p in exp.plugins if isinstance(p, SeedPlugin)] == [mine]
    assert [p for p in exp.plugins if isinstance(p, ArtifactPlugin)] == [artifacts]
    assert exp.get_plugin(SeedPlugin) is mine
    assert exp.run().provenance["root_seed"] == 1


def test_an_execution_plugin_you_pass_replaces_serial_execution():
    exp = build([ParallelExecution(max_workers=2)])
    assert [type(p).__name__ for p in exp.plugins if "Execution" in type(p).__name__] == [
        "ParallelExecution"
    ]


def test_two_execution_plugins_are_rejected():
    with raises_message(
        ExperimentDefinitionError,
        "experiment 'plugins' has 2 execution plugins (SerialExecution, ParallelExecution); "
        "keep one",
    ):
        build([SerialExecution(), ParallelExecution()])


def test_a_plugin_class_instead_of_an_instance_is_rejected():
    with pytest.raises(
        CrystallizeUsageError,
        match=re.escape("plugins() takes BasePlugin instances, got <class"),
    ) as excinfo:
        build([SeedPlugin])  # type: ignore[list-item]
    assert "did you forget the parentheses?" in str(excinfo.value)


# --- LoggingPlugin ------------------------------------------------------------------------


def test_the_default_logging_plugin_is_quiet(caplog):
    caplog.set_level(logging.DEBUG, logger="pytest_crystallize")
    build(replicates=12).run()
    records = [r for r in caplog.records if r.name == "pytest_crystallize"]
    assert 1 <= len(records) <= 2
    assert all(r.levelno == logging.INFO for r in records)


def test_a_verbose_logging_plugin_logs_every_step(caplog):
    caplog.set_level(logging.DEBUG, logger="pytest_crystallize")
    build([LoggingPlugin(verbose=True)], replicates=3).run()
    records = [r for r in caplog.records if r.name == "pytest_crystallize"]
    step_lines = [r for r in records if r.levelno == logging.DEBUG]
    assert len(step_lines) == 2 * 2 * 3 * 2  # start + done, 2 steps, 3 replicates, 2 conditions
    assert len(records) == len(step_lines) + 2


def test_failed_runs_are_logged_as_one_warning(caplog):
    @pipeline_step
    def broken(data, ctx):
        msg = "broken step"
        raise RuntimeError(msg)

    caplog.set_level(logging.DEBUG, logger="pytest_crystallize")
    build(steps=[broken()], replicates=5).run()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "10 of 10 runs failed" in warnings[0].getMessage()


# --- ArtifactPlugin -----------------------------------------------------------------------


def replicate_dirs(version: Path) -> list[str]:
    return sorted(p.name for p in version.iterdir() if p.name.startswith("replicate_"))


def test_a_smaller_rerun_leaves_no_files_of_the_earlier_larger_run(tmp_path):
    build(steps=[first(), save()], replicates=5).run()
    version = tmp_path / "data" / "plugins" / "v0"
    assert replicate_dirs(version) == [f"replicate_{i}" for i in range(5)]

    result = build(steps=[first(), save()], replicates=2).run()
    assert replicate_dirs(version) == ["replicate_0", "replicate_1"]
    assert sorted(p.parent.name for p in (tmp_path / "data").rglob("value.txt")) == ["save"] * 4
    assert result.artifacts["value.txt"]["baseline"] == (
        Path("data/plugins/v0/replicate_0/baseline/save/value.txt"),
        Path("data/plugins/v0/replicate_1/baseline/save/value.txt"),
    )


def test_a_versioned_artifact_plugin_writes_a_new_version_per_run(tmp_path):
    for _ in range(3):
        result = build([ArtifactPlugin(versioned=True)], steps=[first(), save()]).run()
    base = tmp_path / "data" / "plugins"
    assert sorted(p.name for p in base.iterdir()) == ["v0", "v1", "v2"]
    for version in ("v0", "v1", "v2"):
        assert replicate_dirs(base / version) == ["replicate_0", "replicate_1"]
    assert result.artifacts["value.txt"]["t"][1] == Path(
        "data/plugins/v2/replicate_1/t/save/value.txt"
    )
    assert (tmp_path / result.artifacts["value.txt"]["t"][1]).read_bytes() == b"2"


def test_the_artifact_root_directory_can_be_changed(tmp_path):
    build([ArtifactPlugin(root_dir=tmp_path / "out")], steps=[first(), save()]).run()
    assert (tmp_path / "out/plugins/v0/replicate_0/baseline/save/value.txt").read_bytes() == b"2"
    assert not (tmp_path / "data").exists()

"""Experiment lifecycle hooks (pluggy project ``"crystallize"``).

Plugins subclass :class:`~pytest_crystallize.BasePlugin` and override the hooks they need; a
hook counts as implemented only when the subclass overrides it, so unused hooks cost nothing.
A hook implementation may take any subset of the arguments below, by name.

Order for one ``experiment.run()``: ``before_run`` (once, in the calling process), then for
each run (condition x replicate, in whatever process or thread executes it):
``before_replicate`` -> data source -> for each step ``before_step`` -> step ->
``save_artifacts`` (when the step added files) -> ``after_step``;
then ``after_run`` (once, in the calling process). Per-run hooks execute where the run does:
keep per-run state on the context, not on the plugin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from ._engine.context import FrozenContext
    from ._engine.experiment import Experiment
    from ._engine.results import Result
    from ._engine.run import RunPlan
    from ._engine.runs import RunResult
    from ._engine.steps import PipelineStep

hookspec = pluggy.HookspecMarker("crystallize")
hookimpl = pluggy.HookimplMarker("crystallize")


@hookspec
def init_hook(experiment: Experiment) -> None:
    """Called once when the experiment is constructed.

    Example::

        def init_hook(self, experiment):
            self.name = experiment.name
    """


@hookspec
def before_run(experiment: Experiment) -> None:
    """Called once before any run starts, in the process that called ``run()``."""


@hookspec
def before_replicate(experiment: Experiment, ctx: FrozenContext) -> None:
    """Called for each run after its treatment was applied, before the data source.

    ``ctx["condition"]``, ``ctx["replicate"]`` and ``ctx["seed"]`` identify the run. Example::

        def before_replicate(self, ctx):
            torch.manual_seed(ctx["seed"])
    """


@hookspec
def before_step(experiment: Experiment, step: PipelineStep, ctx: FrozenContext) -> None:
    """Called before each step of each run."""


@hookspec
def after_step(experiment: Experiment, step: PipelineStep, data: Any, ctx: FrozenContext) -> None:
    """Called after each step of each run with the data the step produced."""


@hookspec(firstresult=True)
def save_artifacts(
    experiment: Experiment, step: PipelineStep, ctx: FrozenContext, files: dict[str, bytes]
) -> dict[str, str] | None:
    """Store the files ``step`` added with ``ctx.artifacts.add``; return ``{name: path}``.

    Called only after a step that added files, where the run executes. The default
    ``ArtifactPlugin`` writes them under ``data/<experiment>/v<N>/...``.
    """


@hookspec
def after_run(experiment: Experiment, result: Result) -> None:
    """Called once after every run finished, with the aggregated result."""


@hookspec(firstresult=True)
def run_experiment_loop(experiment: Experiment, plan: RunPlan) -> list[RunResult] | None:
    """Execute every run of ``plan``; return their results in plan order.

    Implemented by execution plugins (``SerialExecution``, ``ParallelExecution``); an
    experiment has exactly one. ``plan.execute(i)`` runs run ``i`` in this process and never
    raises for a failing run (the failure is recorded on its ``RunResult``).
    """


HOOK_NAMES = frozenset(
    {
        "init_hook",
        "before_run",
        "before_replicate",
        "before_step",
        "after_step",
        "save_artifacts",
        "after_run",
        "run_experiment_loop",
    }
)

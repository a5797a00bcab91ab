"""One ``experiment.run()`` from start to end: the lifecycle around the run plan.

``before_run``, the runs already complete on disk (``strategy="resume"``), each step's
``setup``, the execution plugin's loop over the plan (for a sequential design, look by look
until the registered look judge stops it), ``teardown``, the hypotheses evaluated on
the metrics, the verdicts of the registered judge (:mod:`.judging`), ``after_run``. A
hypothesis that cannot be evaluated raises with the result (and its verdicts) attached, so
nothing computed is lost; one whose runs failed or lack a metric value gets an error for that
treatment instead of a verdict on partial data (:mod:`.gate`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, NamedTuple

from .artifacts import ArtifactPlugin
from .context import BASELINE_CONDITION, FrozenContext
from .errors import HypothesisError, MissingMetricError
from .gate import evaluate_complete
from .hypotheses import check_metrics
from .judging import judged, look_judged
from .results import ExperimentMetrics, Result, build_artifacts, build_metrics
from .run import RunPlan
from .runs import RunResult

if TYPE_CHECKING:
    from .experiment import Experiment
    from .steps import PipelineStep
    from .verdict import Verdict


class RunsStarted:
    """How many experiment runs this process started, and the last one's name: the pytest
    layer compares ``count`` around importing an experiment file to spot a module-level
    ``run()``, which would execute on import in every process (every xdist worker)."""

    __slots__ = ("count", "last")

    def __init__(self) -> None:
        self.count = 0
        self.last = ""


STARTED = RunsStarted()


def conduct(exp: Experiment, upstream: Mapping[tuple[str, str, int], str]) -> Result:
    """Run every run of ``exp`` (``upstream``: files a graph run produced) into a Result."""
    STARTED.count += 1
    STARTED.last = exp.artifact_name
    hook = exp.plugin_manager().hook
    plan = RunPlan(exp)
    plan.upstream.known.update(upstream)
    hook.before_run(experiment=exp)
    done = _completed(exp) if exp.strategy == "resume" else []
    if done:
        finished = {(r.condition, r.replicate) for r in done}
        names = plan.condition_names
        plan.runs = [r for r in plan.runs if (names[r[0]], r[1]) not in finished]
    initial = FrozenContext(exp.initial_ctx)
    started: list[PipelineStep] = []
    try:
        for step in exp.steps:
            step.setup(initial)
            started.append(step)
        if exp.sequential is not None:
            runs, looked = _run_looks(exp, plan, done)
        else:
            runs = hook.run_experiment_loop(experiment=exp, plan=plan) if plan.runs else []
            looked = None
    finally:
        for step in started:
            step.teardown(initial)
    if done:
        runs = [*done, *runs]
    if done or looked is not None:
        order = {name: i for i, name in enumerate(plan.condition_names)}
        runs = sorted(runs, key=lambda r: (r.replicate, order[r.condition]))
    return _finish(exp, plan, runs, looked)


class _Looked(NamedTuple):
    """Where a sequential run stopped: the look (1-based), the replicates per condition it
    used, the schedule, and the look judge's verdicts (``None`` when no look judge is
    registered: the run went on to the last look and the plain judge decides)."""

    look: int
    used: int
    schedule: tuple[int, ...]
    verdicts: tuple[Verdict, ...] | None


def _run_looks(
    exp: Experiment, plan: RunPlan, done: list[RunResult]
) -> tuple[list[RunResult], _Looked]:
    """Run a sequential design look by look: every condition's replicates of look ``k``,
    then the registered look judge, until it stops the experiment or the last look. The
    runs after the deciding look are never started. Returns only the runs made here."""
    hook = exp.plugin_manager().hook
    assert exp.sequential is not None  # the caller checked
    schedule = exp.sequential.schedule(exp.replicates)
    remaining = list(plan.runs)
    made: list[RunResult] = []
    start = 0
    try:
        for look, used in enumerate(schedule, 1):
            plan.runs = [r for r in remaining if start <= r[1] < used]
            if plan.runs:
                made += hook.run_experiment_loop(experiment=exp, plan=plan)
            start = used
            decided = look_judged(exp, [*done, *made], look)
            if decided is not None and (decided[0] or look == len(schedule)):
                return made, _Looked(look, used, schedule, decided[1])
    finally:
        plan.runs = remaining
    return made, _Looked(len(schedule), schedule[-1], schedule, None)


def _completed(experiment: Experiment) -> list[RunResult]:
    plugin = experiment.get_plugin(ArtifactPlugin)
    return plugin.completed_runs(experiment) if plugin is not None else []


def _finish(
    experiment: Experiment, plan: RunPlan, runs: list[RunResult], looked: _Looked | None = None
) -> Result:
    names = plan.condition_names
    replicates = plan.replicates if looked is None else looked.used
    if looked is not None:  # a stopped design: the replicates not run are absent, not errors
        runs = [r for r in runs if r.replicate < replicates]
    by_condition = build_metrics(runs, names, replicates)
    result = Result(
        metrics=ExperimentMetrics(
            baseline=by_condition[BASELINE_CONDITION],
            treatments={n: by_condition[n] for n in names[1:]},
        ),
        runs=tuple(runs),
        errors={r.error.key: r.error for r in runs if r.error is not None},
        artifacts=build_artifacts(runs),
        provenance={
            "root_seed": plan.root_seed,
            "pipeline_signature": experiment.pipeline.signature(),
            "seeds": {n: list(c.seeds) for n, c in by_condition.items()},
        },
        replicates=replicates,
        conditions=tuple(names),
        sequential=None
        if looked is None
        else {
            "looks": len(looked.schedule),
            "schedule": list(looked.schedule),
            "stopped_at_look": looked.look,
            "replicates_used": looked.used,
        },
    )
    hook = experiment.plugin_manager().hook
    try:
        check_metrics(experiment.hypotheses, by_condition, experiment.artifact_name)
        evaluated = evaluate_complete(
            experiment.hypotheses,
            by_condition,
            runs,
            names,
            replicates,
            experiment.correction or "holm",
        )
    except (MissingMetricError, HypothesisError) as error:
        result = replace(result, verdicts=_verdicts(experiment, result, looked))
        error.result = result
        hook.after_run(experiment=experiment, result=result)
        raise
    metrics = ExperimentMetrics(result.metrics.baseline, result.metrics.treatments, evaluated)
    result = replace(result, metrics=metrics)
    result = replace(result, verdicts=_verdicts(experiment, result, looked))
    hook.after_run(experiment=experiment, result=result)
    return result


def _verdicts(
    experiment: Experiment, result: Result, looked: _Looked | None
) -> tuple[Verdict, ...]:
    """The deciding look's verdicts for a sequential design, else the registered judge's."""
    if looked is not None and looked.verdicts is not None:
        return looked.verdicts
    return judged(experiment, result)

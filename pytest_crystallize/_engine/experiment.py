"""Treatments, Experiment, its builder, and the run plan (one run = condition x replicate)."""

from __future__ import annotations

import copy
import functools
import hashlib
import inspect
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from .artifacts import ArtifactPlugin, DiskArtifact
from .builder import ExperimentBuilder
from .context import (
    BASELINE_CONDITION,
    RESERVED_KEYS,
    FrozenContext,
)
from .correction import check_correction
from .errors import (
    CrystallizeUsageError,
    ExperimentDefinitionError,
    HypothesisError,
    MissingMetricError,
)
from .execution import SerialExecution
from .hypotheses import Hypothesis, check_metrics, evaluate
from .inputs import Artifact
from .plugins import BasePlugin, LoggingPlugin, PluginManager, SeedPlugin, overrides
from .results import (
    ExperimentMetrics,
    Result,
    RunResult,
    build_artifacts,
    build_metrics,
)
from .run import RunPlan
from .steps import (
    DataSource,
    Pipeline,
    PipelineStep,
    coerce_component,
)
from .treatments import Treatment, coerce_treatment


def _check_replicates(value: Any, experiment: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        msg = (
            f"experiment {experiment!r}: replicates must be a positive int, got {value!r} "
            f"({type(value).__name__}); use 1 or more replicates"
        )
        raise ExperimentDefinitionError(msg)
    return value


def _loop_is_running() -> bool:
    asyncio = sys.modules.get("asyncio")
    if asyncio is None:  # never imported: no loop can be running (and importing it is slow)
        return False
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


# --- experiment ---------------------------------------------------------------------------


class Experiment:
    """A data source, a pipeline, a baseline plus treatments, N replicates and hypotheses.

    The constructor validates everything it can; ``run()`` executes every run and returns a
    :class:`Result`. Default plugins (``ArtifactPlugin``, ``SeedPlugin``, ``LoggingPlugin``,
    ``SerialExecution``) are added for each kind the ``plugins`` list lacks.
    """

    def __init__(
        self,
        datasource: Any,
        pipeline: Pipeline | Iterable[Any],
        plugins: Iterable[BasePlugin] | None = None,
        *,
        description: str | None = None,
        name: str | None = None,
        initial_ctx: Mapping[str, Any] | None = None,
        treatments: Iterable[Any] | None = None,
        hypotheses: Iterable[Hypothesis] | None = None,
        replicates: int = 1,
        correction: str | None = None,
        outputs: Iterable[Any] | None = None,
    ) -> None:
        if name is not None and (not isinstance(name, str) or not name):
            msg = f"an experiment name must be a non-empty str, got {name!r}"
            raise CrystallizeUsageError(msg)
        self.name = name
        self.description = description
        label = name or "<unnamed>"
        if datasource is None:
            msg = f"experiment {label!r} has no data source; call .datasource(...) before .build()"
            raise ExperimentDefinitionError(msg)
        self.datasource: DataSource = coerce_component(datasource, DataSource, "datasource()")
        self.pipeline = pipeline if isinstance(pipeline, Pipeline) else Pipeline(pipeline)
        self.initial_ctx = dict(initial_ctx or {})
        all_treatments = [coerce_treatment(t) for t in (treatments or [])]
        self._all_treatments = all_treatments
        self.baseline_treatment = next(
            (t for t in all_treatments if t.name == BASELINE_CONDITION), None
        )
        self.treatments = [t for t in all_treatments if t.name != BASELINE_CONDITION]
        self.hypotheses = list(hypotheses or [])
        self.replicates = replicates
        self.correction = correction
        self.strategy = "rerun"  # run(strategy="resume") reuses complete conditions on disk
        self.outputs = _claim_outputs(self, list(outputs or []), label)
        self.plugins = _with_defaults(list(plugins or []), label)
        self._pm: PluginManager | None = None
        self.validate()
        self.plugin_manager().hook.init_hook(experiment=self)

    @classmethod
    def builder(cls, name: str | None = None) -> ExperimentBuilder:
        """A fluent builder: ``Experiment.builder("name").datasource(...)...build()``."""
        return ExperimentBuilder(cls, name)

    @property
    def artifact_name(self) -> str:
        """The experiment's name, or its id when it has none."""
        return self.name or self.id

    @property
    def id(self) -> str:
        return hashlib.sha256(self.pipeline.signature().encode()).hexdigest()[:16]

    @property
    def steps(self) -> list[PipelineStep]:
        return self.pipeline.steps

    def get_plugin(self, cls: type[Any]) -> Any:
        """Return the first plugin that is an instance of ``cls``, or ``None``."""
        return next((p for p in self.plugins if isinstance(p, cls)), None)

    def plugin_manager(self) -> PluginManager:
        if self._pm is None:
            self._pm = PluginManager(self.plugins)
        return self._pm

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_pm"] = None
        return state

    # --- validation ---------------------------------------------------------------------

    def validate(self) -> None:
        """Raise :class:`ExperimentDefinitionError` for anything that would make runs fail."""
        label = self.name or "<unnamed>"
        _check_replicates(self.replicates, label)
        reserved = sorted(RESERVED_KEYS.intersection(self.initial_ctx))
        if reserved:
            msg = (
                f"experiment {label!r}: initial_ctx sets the reserved key {reserved[0]!r}; "
                f"{', '.join(sorted(RESERVED_KEYS))} are set for each run by the experiment"
            )
            raise ExperimentDefinitionError(msg)
        seen: set[str] = set()
        for listed in self._all_treatments:  # as given, a treatment named baseline included
            if listed.name in seen:
                msg = f"experiment {label!r}: two treatments are named {listed.name!r}; rename one"
                raise ExperimentDefinitionError(msg)
            seen.add(listed.name)
        components: list[DataSource | PipelineStep] = [self.datasource, *self.pipeline.steps]
        for name, t in self.conditions():
            payload = t.apply_map if t is not None else {}
            for key in payload:
                if key in RESERVED_KEYS:
                    msg = (
                        f"experiment {label!r}: treatment {name!r} sets the reserved key "
                        f"{key!r}; {', '.join(sorted(RESERVED_KEYS))} are set for each run"
                    )
                    raise ExperimentDefinitionError(msg)
                for comp in components:
                    if key in comp.params:
                        msg = (
                            f"experiment {label!r}: treatment {name!r} sets {key!r}, but step "
                            f"{comp.name!r} receives {key}={comp.params[key]!r} explicitly, so "
                            f"the treatment would have no effect; remove the explicit argument "
                            f"(put the default in initial_ctx) or rename the key"
                        )
                        raise ExperimentDefinitionError(msg)
            if t is not None and t.is_callable:
                continue  # its keys are known only when it runs
            available = set(self.initial_ctx) | set(payload) | RESERVED_KEYS
            for comp in components:
                missing = [k for k in comp.required_context() if k not in available]
                if missing:
                    msg = (
                        f"experiment {label!r}: {_kind(comp)} {comp.name!r} needs {missing[0]!r},"
                        f" which is not passed as {comp.name}({missing[0]}=...), has no default "
                        f"and is not in the context of condition {name!r}; pass it explicitly, "
                        f"add it to initial_ctx, or set it in every treatment"
                    )
                    raise ExperimentDefinitionError(msg)
        self._validate_hypotheses(label)

    def _validate_hypotheses(self, label: str) -> None:
        if self.correction is not None:
            check_correction(self.correction, f"experiment {label!r}: correction")
        names: set[str] = set()
        for hyp in self.hypotheses:
            if not isinstance(hyp, Hypothesis):
                msg = (
                    f"experiment {label!r}: hypotheses() takes Hypothesis objects (made by "
                    f"@hypothesis or Hypothesis(...)), got {hyp!r} ({type(hyp).__name__})"
                )
                raise ExperimentDefinitionError(msg)
            if hyp.name in names:
                msg = f"experiment {label!r}: two hypotheses are named {hyp.name!r}; rename one"
                raise ExperimentDefinitionError(msg)
            names.add(hyp.name)
        if self.hypotheses and not self.treatments:
            msg = (
                f"experiment {label!r} has hypotheses but no treatments to compare with the "
                f"baseline; add .treatments([...]) or drop the hypotheses"
            )
            raise ExperimentDefinitionError(msg)
        for hyp in self.hypotheses:
            _check_reachable(hyp, self.replicates, label)

    def conditions(self) -> list[tuple[str, Treatment | None]]:
        """``[(name, treatment), ...]``, the baseline first."""
        return [(BASELINE_CONDITION, self.baseline_treatment)] + [
            (t.name, t) for t in self.treatments
        ]

    # --- running ------------------------------------------------------------------------

    def run(
        self,
        *,
        treatments: Iterable[Any] | None = None,
        hypotheses: Iterable[Hypothesis] | None = None,
        replicates: int | None = None,
        strategy: str | None = None,
    ) -> Result:
        """Execute every run and evaluate the hypotheses; arguments apply to this call only.

        Works in a plain script and inside a running event loop (Jupyter, pytest-asyncio),
        where it executes in a helper thread; from async code prefer ``await arun(...)``.
        """
        call = functools.partial(
            self.execute,
            treatments=treatments,
            hypotheses=hypotheses,
            replicates=replicates,
            strategy=strategy,
        )
        if not _loop_is_running():
            return call()
        import concurrent.futures

        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="crystallize") as pool:
            return pool.submit(call).result()

    async def arun(
        self,
        *,
        treatments: Iterable[Any] | None = None,
        hypotheses: Iterable[Hypothesis] | None = None,
        replicates: int | None = None,
        strategy: str | None = None,
    ) -> Result:
        """``run()`` for async code: the event loop stays free while the runs execute."""
        call = functools.partial(
            self.execute,
            treatments=treatments,
            hypotheses=hypotheses,
            replicates=replicates,
            strategy=strategy,
        )
        import asyncio

        return await asyncio.get_running_loop().run_in_executor(None, call)

    def overridden(
        self,
        treatments: Iterable[Any] | None,
        hypotheses: Iterable[Hypothesis] | None,
        replicates: int | None,
    ) -> Experiment:
        if treatments is None and hypotheses is None and replicates is None:
            return self
        exp = copy.copy(self)
        if treatments is not None:
            listed = [coerce_treatment(t) for t in treatments]
            exp._all_treatments = listed
            exp.baseline_treatment = next(
                (t for t in listed if t.name == BASELINE_CONDITION), self.baseline_treatment
            )
            exp.treatments = [t for t in listed if t.name != BASELINE_CONDITION]
        if hypotheses is not None:
            exp.hypotheses = list(hypotheses)
        if replicates is not None:
            exp.replicates = replicates
        exp.validate()
        return exp

    def execute(
        self,
        *,
        treatments: Iterable[Any] | None,
        hypotheses: Iterable[Hypothesis] | None,
        replicates: int | None,
        strategy: str | None,
        upstream: Mapping[tuple[str, str, int], str] | None = None,
    ) -> Result:
        if strategy not in (None, "rerun", "resume"):
            msg = f"run(strategy=...) takes 'rerun' (the default) or 'resume', got {strategy!r}"
            raise CrystallizeUsageError(msg)
        exp = self.overridden(treatments, hypotheses, replicates)
        if strategy is not None and strategy != exp.strategy:
            exp = copy.copy(exp)
            exp.strategy = strategy
        hook = exp.plugin_manager().hook
        plan = RunPlan(exp)
        plan.upstream.known.update(upstream or {})
        hook.before_run(experiment=exp)
        done = exp._completed() if exp.strategy == "resume" else []
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
            runs = hook.run_experiment_loop(experiment=exp, plan=plan) if plan.runs else []
        finally:
            for step in started:
                step.teardown(initial)
        if done:
            order = {name: i for i, name in enumerate(plan.condition_names)}
            runs = sorted([*done, *runs], key=lambda r: (r.replicate, order[r.condition]))
        return exp._finish(plan, runs)

    def _completed(self) -> list[RunResult]:
        plugin = self.get_plugin(ArtifactPlugin)
        return plugin.completed_runs(self) if plugin is not None else []

    def _finish(self, plan: RunPlan, runs: list[RunResult]) -> Result:
        names = plan.condition_names
        by_condition = build_metrics(runs, names, plan.replicates)
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
                "pipeline_signature": self.pipeline.signature(),
                "seeds": {n: list(c.seeds) for n, c in by_condition.items()},
            },
            replicates=plan.replicates,
            conditions=tuple(names),
        )
        hook = self.plugin_manager().hook
        try:
            check_metrics(self.hypotheses, by_condition, self.artifact_name)
            evaluated = evaluate(
                self.hypotheses, by_condition, names[0], names[1:], self.correction or "holm"
            )
        except (MissingMetricError, HypothesisError) as error:
            error.result = result
            hook.after_run(experiment=self, result=result)
            raise
        metrics = ExperimentMetrics(result.metrics.baseline, result.metrics.treatments, evaluated)
        result = Result(
            metrics,
            result.runs,
            result.errors,
            result.artifacts,
            result.provenance,
            result.replicates,
            result.conditions,
        )
        hook.after_run(experiment=self, result=result)
        return result

    def apply(
        self, treatment: Treatment | str | None = None, *, data: Any = None, seed: int | None = None
    ) -> Any:
        """Run the pipeline once (replicate 0) and return the last step's data.

        A failing step raises PipelineExecutionError naming it; other errors propagate as
        raised. ``data`` replaces the data source's output; ``seed`` replaces the
        replicate's seed. Nothing is written and no hypothesis is evaluated.
        """
        exp = self
        if treatment is not None:
            chosen = treatment if isinstance(treatment, Treatment) else self._find(treatment)
            exp = self.overridden([chosen], [], 1)
        plan = RunPlan(exp, only=chosen.name if treatment is not None else BASELINE_CONDITION)
        return plan.apply(data=data, seed=seed, use_data=data is not None)

    def debug(self, treatment: Treatment | str | None = None, *, verbose: bool = True) -> Result:
        """Run one replicate serially, without hypotheses: a quick look at what steps do.

        ``treatment`` (a Treatment or a treatment's name) runs that condition beside the
        baseline; ``verbose`` logs every step at DEBUG level.
        """
        chosen = (
            []
            if treatment is None
            else [treatment if isinstance(treatment, Treatment) else self._find(treatment)]
        )
        exp = self.overridden(chosen, [], 1)
        if exp is self:
            exp = copy.copy(self)
        kept = [
            p
            for p in exp.plugins
            if not overrides(p, "run_experiment_loop")
            and not (verbose and isinstance(p, LoggingPlugin))
        ]
        exp.plugins = _with_defaults(
            kept + ([LoggingPlugin(verbose=True)] if verbose else []), exp.artifact_name
        )
        exp._pm = None
        return exp.execute(treatments=None, hypotheses=None, replicates=None, strategy=None)

    def artifact_datasource(
        self, step: str, name: str = "data.json", condition: str = BASELINE_CONDITION
    ) -> DataSource:
        """A data source giving the path of file ``name`` that ``step`` wrote for the same
        replicate in the newest version on disk (inside a graph, prefer an Artifact)."""
        return DiskArtifact(self, step, name, condition)

    def _find(self, name: str) -> Treatment:
        for t in self.treatments:
            if t.name == name:
                return t
        known = ", ".join(t.name for t in self.treatments) or "none"
        msg = f"experiment {self.artifact_name!r} has no treatment {name!r}; treatments: {known}"
        raise CrystallizeUsageError(msg)

    def __repr__(self) -> str:
        return (
            f"Experiment(name={self.name!r}, treatments={[t.name for t in self.treatments]!r}, "
            f"replicates={self.replicates!r})"
        )


def _check_reachable(hyp: Hypothesis, replicates: int, label: str) -> None:
    """Refuse a built-in test that can never reach its alpha with this many replicates."""
    verifier = hyp.verifier
    factory = getattr(verifier, "factory", None)
    floor_of = getattr(factory, "floor", None)  # built-in verifiers know their smallest p
    if factory is None or floor_of is None:
        return
    alpha = getattr(verifier, "params", {}).get("alpha")
    if alpha is None:
        default = inspect.signature(factory.fn).parameters.get("alpha")
        alpha = default.default if default is not None else None
    if not isinstance(alpha, int | float):
        return
    floor = floor_of(verifier, replicates)
    if floor >= alpha:
        msg = (
            f"experiment {label!r}: hypothesis {hyp.name!r} uses {factory.name} with "
            f"{replicates} replicates, whose smallest possible p-value is {floor:.4g} >= "
            f"alpha={alpha:g}, so it can never pass; use more replicates or a t-test"
        )
        raise ExperimentDefinitionError(msg)


def _claim_outputs(experiment: Experiment, outputs: list[Any], label: str) -> list[Any]:
    """Make ``experiment`` the producer of each declared Artifact (one producer each)."""
    for art in outputs:
        if not isinstance(art, Artifact):
            msg = f"experiment {label!r}: outputs=[...] takes Artifact objects, got {art!r}"
            raise CrystallizeUsageError(msg)
        if art.producer is not None and art.producer is not experiment:
            msg = (
                f"artifact {art.name!r} is produced by experiment {art.producer.name!r}; "
                f"experiment {label!r} cannot produce it too: give each its own Artifact"
            )
            raise ExperimentDefinitionError(msg)
        art.producer = experiment
    return outputs


def _kind(component: Any) -> str:
    return "data source" if isinstance(component, DataSource) else "step"


def _with_defaults(plugins: list[BasePlugin], label: str) -> list[BasePlugin]:
    for plugin in plugins:
        if not isinstance(plugin, BasePlugin):
            msg = (
                f"experiment {label!r}: plugins() takes BasePlugin instances, got {plugin!r} "
                f"({type(plugin).__name__}); did you forget the parentheses?"
            )
            raise CrystallizeUsageError(msg)
    executors = [p for p in plugins if overrides(p, "run_experiment_loop")]
    if len(executors) > 1:
        shown = ", ".join(type(p).__name__ for p in executors)
        msg = f"experiment {label!r} has {len(executors)} execution plugins ({shown}); keep one"
        raise ExperimentDefinitionError(msg)
    defaults: list[BasePlugin] = [ArtifactPlugin(), SeedPlugin(), LoggingPlugin()]
    out = list(plugins)
    for default in defaults:
        if not any(isinstance(p, type(default)) for p in plugins):
            out.append(default)
    if not executors:
        out.append(SerialExecution())
    return out

"""Treatments, Experiment, its builder, and the run plan (one run = condition x replicate)."""

from __future__ import annotations

import copy
import functools
import hashlib
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from .artifacts import DiskArtifact
from .builder import ExperimentBuilder
from .context import (
    BASELINE_CONDITION,
)
from .definition import check_definition, check_marks, claim_outputs, with_defaults
from .errors import (
    CrystallizeUsageError,
    ExperimentDefinitionError,
)
from .hypotheses import Hypothesis
from .lifecycle import conduct
from .names import check_name, user_frame
from .plugins import BasePlugin, LoggingPlugin, PluginManager, overrides
from .results import Result
from .run import RunPlan
from .sequential import SequentialDesign
from .sources import DataSource
from .steps import (
    Pipeline,
    PipelineStep,
    coerce_component,
)
from .treatments import Treatment, coerce_treatment


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
        marks: Iterable[Any] = (),
        sequential: SequentialDesign | None = None,
    ) -> None:
        if name is not None:
            check_name("experiment", name)
        self.name = name
        self.defined_at = user_frame()  # (file, line) of the user's code that made it
        self.description = description
        label = name or "<unnamed>"
        if datasource is None:
            msg = f"experiment {label!r} has no data source; call .datasource(...) before .build()"
            raise ExperimentDefinitionError(msg)
        self.datasource: DataSource = coerce_component(datasource, DataSource, "datasource()")
        self.pipeline = pipeline if isinstance(pipeline, Pipeline) else Pipeline(pipeline)
        self.initial_ctx = dict(initial_ctx or {})
        all_treatments = [coerce_treatment(t) for t in (treatments or [])]
        self.all_treatments = all_treatments
        self.baseline_treatment = next(
            (t for t in all_treatments if t.name == BASELINE_CONDITION), None
        )
        self.treatments = [t for t in all_treatments if t.name != BASELINE_CONDITION]
        self.hypotheses = list(hypotheses or [])
        self.replicates = replicates
        # A quick look (--crystallize-replicates): replicates too few for a built-in test
        # give skipped verdicts rather than a definition error (see ``overridden``).
        self.quick_look = False
        self.correction = correction
        # A group-sequential design (.sequential(looks=...)): replicates is then the most
        # per condition, judged at the design's looks; None: judged once, on every replicate.
        self.sequential = sequential
        self.strategy = "rerun"  # run(strategy="resume") reuses complete conditions on disk
        self.outputs = claim_outputs(self, list(outputs or []), label)
        self.marks = check_marks(marks, label)
        self.plugins = with_defaults(list(plugins or []), label)
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
        """A hash of the pipeline's signature: names the artifacts of an unnamed experiment."""
        return hashlib.sha256(self.pipeline.signature().encode()).hexdigest()[:16]

    @property
    def steps(self) -> list[PipelineStep]:
        """The pipeline's steps, in order."""
        return self.pipeline.steps

    def get_plugin(self, cls: type[Any]) -> Any:
        """Return the first plugin that is an instance of ``cls``, or ``None``."""
        return next((p for p in self.plugins if isinstance(p, cls)), None)

    def plugin_manager(self) -> PluginManager:
        """The plugin manager of this experiment's plugins, made on first use."""
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
        check_definition(self)

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
        import concurrent.futures  # lazy: only these executors need it; a serial run never pays

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
        import asyncio  # lazy: asyncio costs ~10 ms to import; only async pipelines need it

        return await asyncio.get_running_loop().run_in_executor(None, call)

    def overridden(
        self,
        treatments: Iterable[Any] | None,
        hypotheses: Iterable[Hypothesis] | None,
        replicates: int | None,
        *,
        quick_look: bool = False,
    ) -> Experiment:
        """A validated copy with these treatments, hypotheses or replicates (or itself).

        ``quick_look``: ``replicates`` is a quick look's count; a built-in test that cannot
        reach its alpha with it is judged a skip (``too_few_replicates``), not refused here.
        A quick look, or a copy without hypotheses (``debug()``, ``apply()``), drops the
        sequential design: it runs every replicate it is given.
        """
        if treatments is None and hypotheses is None and replicates is None:
            return self
        exp = copy.copy(self)
        if treatments is not None:
            listed = [coerce_treatment(t) for t in treatments]
            exp.all_treatments = listed
            exp.baseline_treatment = next(
                (t for t in listed if t.name == BASELINE_CONDITION), self.baseline_treatment
            )
            exp.treatments = [t for t in listed if t.name != BASELINE_CONDITION]
        if hypotheses is not None:
            exp.hypotheses = list(hypotheses)
        if replicates is not None:
            exp.replicates = replicates
            exp.quick_look = quick_look
        if exp.sequential is not None and (quick_look or not exp.hypotheses):
            exp.sequential = None  # nothing to decide early: a quick look, or no hypotheses
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
        """What ``run()`` does: run with these overrides and return the Result."""
        if strategy not in (None, "rerun", "resume"):
            msg = f"run(strategy=...) takes 'rerun' (the default) or 'resume', got {strategy!r}"
            raise CrystallizeUsageError(msg)
        exp = self.overridden(treatments, hypotheses, replicates)
        if strategy is not None and strategy != exp.strategy:
            exp = copy.copy(exp)
            exp.strategy = strategy
        return conduct(exp, upstream or {})

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
        exp.plugins = with_defaults(
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

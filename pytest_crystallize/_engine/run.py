"""The run plan: the ordered runs of one ``experiment.run()`` and how one run executes.

A run is one (condition, replicate): a fresh context, the treatment, seeding, the data
source, then each step (through the step cache when it is cacheable). Its result is plain
data, so any executor can ship it back.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Sequence
from time import perf_counter
from types import CoroutineType
from typing import TYPE_CHECKING, Any, Literal, cast

from .cache import CachePlugin, CacheStats, StepCache, default_cache_dir
from .cached import run_cached
from .codeprint import CodePrint, step_print
from .context import CONDITION_KEY, REPLICATE_KEY, SEED_KEY, FrozenContext
from .errors import CrystallizeUsageError, PipelineExecutionError
from .plugins import SeedPlugin
from .runs import RunError, RunResult
from .seeds import replicate_seed
from .steps import PipelineStep, unpack_output
from .upstream import Upstream

if TYPE_CHECKING:
    from .experiment import Experiment


def _refuse_coroutine(step: PipelineStep, out: Any) -> None:
    out.close()
    msg = f"step {step.name!r} returned a coroutine: declare it `async def` so the run awaits it"
    raise CrystallizeUsageError(msg)


class RunPlan:
    """The ordered runs of one ``experiment.run()``: replicate-major, the baseline first.

    ``plan.execute(i)`` performs run ``i`` in the calling thread and returns its
    :class:`RunResult`; a failure of the user's code is recorded on it, never raised. The
    plan pickles without the experiment's hypotheses (they are evaluated by the caller).
    """

    def __init__(
        self,
        experiment: Experiment,
        only: str | None = None,
        *,
        cache: StepCache | Literal["default"] | None = "default",
        plan_for: Callable[[Experiment], RunPlan] | None = None,
    ) -> None:
        """``cache``: the step cache of cacheable steps (``None``: none; by default the
        experiment's CachePlugin's, else ``.crystallize/cache``). ``plan_for(producer)``: the
        plan that computes an upstream experiment's run this plan's runs read (by default a
        plan sharing this one's cache)."""
        self.experiment = experiment
        seeds = experiment.get_plugin(SeedPlugin) or SeedPlugin()
        self.root_seed = seeds.root_seed(experiment.artifact_name)
        conditions = experiment.conditions()
        if only is not None:
            conditions = [c for c in conditions if c[0] == only]
        self.conditions = conditions
        self.condition_names = [name for name, _ in conditions]
        self.overlays = [t.apply_map if t is not None else {} for _, t in conditions]
        self.replicates = experiment.replicates
        self.runs: list[tuple[int, int, int]] = []
        for replicate in range(self.replicates):
            seed = replicate_seed(self.root_seed, replicate)
            self.runs.extend((c, replicate, seed) for c in range(len(conditions)))
        self.is_async = experiment.datasource.is_async or experiment.pipeline.is_async
        self._hooks: tuple[Any, Any, Any, Any] | None = None
        self.seed_globals = seeds.global_seeder()
        if cache == "default":
            cache = None
            if any(step.cacheable for step in experiment.steps):
                plugin = experiment.get_plugin(CachePlugin)
                cache = plugin.cache() if plugin is not None else StepCache(default_cache_dir())
        self.cache = cache
        self._codes: dict[int, CodePrint] = {}  # per process: it holds module namespaces
        self.upstream = Upstream(plan_for or self._upstream_plan)
        self.indices: list[int] | None = None  # of the plan a restricted() copy was made from
        self.watch: Callable[[int, RunResult | BaseException], None] | None = None

    def _upstream_plan(self, producer: Experiment) -> RunPlan:
        return RunPlan(producer, cache=self.cache if self.cache is not None else "default")

    def __len__(self) -> int:
        return len(self.runs)

    def restricted(
        self,
        indices: Sequence[int],
        watch: Callable[[int, RunResult | BaseException], None] | None = None,
    ) -> RunPlan:
        """This plan's runs ``indices`` only, in that order: run ``j`` of the copy is run
        ``indices[j]`` here (``indices`` maps back). It shares this plan's caches, hooks and
        upstream, executes, describes and pickles like it, so every execution plugin runs it
        unchanged (a pytest chunk's replicates of one condition). ``watch(j, outcome)`` is
        told of each run's result, or what it raised, in the thread that ran it (in this
        process only: it does not travel)."""
        self._hook_callers()  # made once, shared by the copies
        view = copy.copy(self)
        view.runs = [self.runs[i] for i in indices]
        view.indices = list(indices)
        view.watch = watch
        return view

    def describe(self, index: int) -> tuple[str, int]:
        """``(condition, replicate)`` of run ``index``."""
        cond, replicate, _ = self.runs[index]
        return self.condition_names[cond], replicate

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        exp = copy.copy(self.experiment)
        exp.hypotheses = []
        state["experiment"] = exp
        state["_hooks"] = None
        state["_codes"] = {}
        state["watch"] = None
        if self.upstream.plan_for != self._upstream_plan:  # a session's own: not for workers
            upstream = Upstream(self._upstream_plan)
            upstream.known.update(self.upstream.known)
            state["upstream"] = upstream
        return state

    def _hook_callers(self) -> tuple[Any, Any, Any, Any]:
        """The per-run hook callers, ``None`` for a hook no plugin implements."""
        if self._hooks is None:
            hook = self.experiment.plugin_manager().hook
            before_replicate, before_step, after_step, save = (
                c if c.get_hookimpls() else None
                for c in (
                    hook.before_replicate,
                    hook.before_step,
                    hook.after_step,
                    hook.save_artifacts,
                )
            )
            self._hooks = (before_replicate, before_step, after_step, save)
        return self._hooks

    def execute(self, index: int) -> RunResult:
        """Perform run ``index`` here and return its result (failures are recorded)."""
        if self.watch is not None:
            return self._watched(index)
        result: RunResult = self._drive(self._arun(index))[0]
        return result

    def _watched(self, index: int) -> RunResult:
        assert self.watch is not None  # the caller checked
        try:
            result: RunResult = self._drive(self._arun(index))[0]
        except BaseException as exc:  # a skip, a timeout, an interrupt: the watcher is told
            self.watch(index, exc)
            raise
        self.watch(index, result)
        return result

    def execute_keeping(self, index: int) -> tuple[RunResult, dict[str, bytes]]:
        """Perform run ``index`` for a downstream reader: its files come back as bytes and are
        not saved (the upstream experiment's own runs save them)."""
        kept: dict[str, bytes] = {}
        result: RunResult = self._drive(self._arun(index, kept=kept))[0]
        return result, kept

    def index_of(self, condition: str, replicate: int) -> int:
        """The index of the run of ``condition`` and ``replicate``."""
        return replicate * len(self.conditions) + self.condition_names.index(condition)

    async def aexecute(self, index: int) -> RunResult:
        """Like :meth:`execute`, awaited in the running event loop."""
        try:
            result: RunResult = (await self._arun(index))[0]
        except BaseException as exc:
            if self.watch is not None:
                self.watch(index, exc)
            raise
        if self.watch is not None:
            self.watch(index, result)
        return result

    def apply(self, *, data: Any, seed: int | None, use_data: bool) -> Any:
        """Run the pipeline once, as run 0 (with ``seed`` when given), and return its output;
        what fails raises. With ``use_data``, ``data`` replaces the data source's output."""
        return self._drive(self._arun(0, seed=seed, data=data, use_data=use_data, raising=True))[1]

    def _drive(self, coro: Any) -> Any:
        if self.is_async:
            import asyncio  # lazy: asyncio costs ~10 ms to import; only async pipelines need it

            return asyncio.run(coro)
        try:
            coro.send(None)
        except StopIteration as stop:
            return stop.value
        coro.close()
        msg = (
            "a step or data source awaited something but is not declared `async def`; "
            "declare it async so the run gets an event loop"
        )
        raise RuntimeError(msg)

    def _context(self, index: int, seed: int | None) -> tuple[FrozenContext, int]:
        """Run ``index``'s context (before its treatment's function) and its seed."""
        cond, replicate, run_seed = self.runs[index]
        root = self.root_seed
        if seed is not None:  # apply(seed=...): the seed replaces the run's and its streams'
            run_seed = root = seed
        values = dict(self.experiment.initial_ctx)
        values.update(self.overlays[cond])
        values[CONDITION_KEY] = self.condition_names[cond]
        values[REPLICATE_KEY] = replicate
        values[SEED_KEY] = run_seed
        return FrozenContext.for_run(values, root, self.upstream), run_seed

    async def _arun(
        self,
        index: int,
        *,
        seed: int | None = None,
        data: Any = None,
        use_data: bool = False,
        raising: bool = False,
        kept: dict[str, bytes] | None = None,
    ) -> tuple[RunResult, Any]:
        """Perform run ``index``: its result (a failure recorded on it) and its last data."""
        ctx, run_seed = self._context(index, seed)
        rng_root = self.root_seed if seed is None else seed
        cond, replicate, _ = self.runs[index]
        condition, treatment = self.conditions[cond]
        experiment = self.experiment
        before_replicate, before_step, after_step, save = self._hook_callers()
        is_async, cache = self.is_async, self.cache
        stats = CacheStats() if cache is not None else None
        stage, where = "treatment", condition
        error = None
        start = perf_counter()
        try:
            if treatment is not None and treatment.is_callable:
                treatment.apply(ctx)
            if self.seed_globals is not None:
                stage, where = "plugin", "seed_fn"
                self.seed_globals(run_seed)
            if before_replicate is not None:
                stage, where = "plugin", "before_replicate"
                before_replicate(experiment=experiment, ctx=ctx)
            if not use_data:
                stage, where = "data source", experiment.datasource.name
                data = experiment.datasource.fetch(ctx)
                if is_async and inspect.isawaitable(data):
                    data = await data
            for step in experiment.pipeline.steps:
                if before_step is not None:
                    stage, where = "plugin", "before_step"
                    before_step(experiment=experiment, step=step, ctx=ctx)
                stage, where = "step", step.name
                if stats is not None and step.cacheable:
                    out = await self._cached(
                        cast("StepCache", cache), stats, step, data, ctx, rng_root
                    )
                else:
                    out = step(data, ctx)
                    if is_async and inspect.isawaitable(out):
                        out = await out
                    elif type(out) is CoroutineType:
                        _refuse_coroutine(step, out)
                data = unpack_output(out, ctx)
                if len(ctx.artifacts) and (save is not None or kept is not None):
                    stage, where = "plugin", "save_artifacts"
                    self._save_files(step, ctx, save, kept)
                if after_step is not None:
                    stage, where = "plugin", "after_step"
                    after_step(experiment=experiment, step=step, data=data, ctx=ctx)
        except Exception as exc:
            if raising and stage == "step":
                raise PipelineExecutionError(where, exc) from exc
            if raising:
                raise
            error = RunError.from_exception(exc, condition, replicate, stage, where)
        result = RunResult(
            condition,
            replicate,
            run_seed,
            ctx.metrics.snapshot(),
            tuple(ctx.artifacts.written),
            error,
            perf_counter() - start,
            None if stats is None else stats.as_tuple(),
        )
        return result, data

    def _save_files(
        self, step: PipelineStep, ctx: FrozenContext, save: Any, kept: dict[str, bytes] | None
    ) -> None:
        """Hand the step's files to ``save_artifacts``, or keep them for an upstream reader."""
        files = ctx.artifacts.pop_pending()
        if kept is not None:  # an upstream copy for a reader: kept, not saved
            kept.update(files)
        elif save is not None:
            saved = save(experiment=self.experiment, step=step, ctx=ctx, files=files)
            ctx.artifacts.written.extend((step.name, n, p) for n, p in (saved or {}).items())

    def _code(self, step: PipelineStep) -> CodePrint:
        code = self._codes.get(id(step))
        if code is None:
            code = self._codes[id(step)] = step_print(step)
        return code

    async def _cached(
        self,
        cache: StepCache,
        stats: CacheStats,
        step: PipelineStep,
        data: Any,
        ctx: FrozenContext,
        rng_root: int,
    ) -> Any:
        """Run a cacheable step through the cache (:mod:`.cached`). A random step's key has
        the seeds its ``ctx.rng`` derives from: the root (``apply(seed=...)`` replaces it),
        the replicate, and the run's seed."""
        values = ctx.raw()
        seed = None if step.deterministic else (rng_root, values[REPLICATE_KEY], values[SEED_KEY])
        return await run_cached(cache, stats, step, data, ctx, self._code(step), seed)

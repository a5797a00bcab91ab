"""Collection: experiment files -> experiments -> conditions -> chunk items.

``<file>::<experiment>::<condition>::chunk-<k>``: each chunk runs a deterministic slice of the
replicates of one condition. The layout (:mod:`.layout`) depends only on the experiment, the
worker count and, in a shard, the number of shards, so every xdist worker (and the controller,
which does not collect) computes the same one. In a merge (``--crystallize-merge``), a chunk
replays the shards' runs of its replicates (:mod:`.replay`) instead of running steps.

A sequential experiment's chunks belong to looks (:func:`~.layout.chunk_layout`): each look's new
replicates are chunked on their own, and ``k`` counts on over the looks in replicate order
(``chunk-0`` and ``chunk-1`` may be look 1, ``chunk-2`` look 2, ...), so node ids stay stable
and the chunks of a look are the next ones. A chunk of a look after the one that decided the
experiment skips when set up (see :mod:`.looks`).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .._engine.artifacts import ArtifactPlugin
from .._engine.cache import StepCache
from .._engine.context import FrozenContext
from .._engine.errors import CrystallizeError
from .._engine.experiment import Experiment
from .._engine.run import RunPlan
from .._engine.runs import RunError, RunResult
from .._engine.steps import PipelineStep
from .chunkruns import close_pools, run_chunk
from .layout import session_layout
from .looks import decided_look, decision_skip
from .replay import MISSING, Replay, replayed
from .stepcache import CACHE_ROOT
from .terminal import RUNS_ATTR, LiveProgress

if TYPE_CHECKING:
    from _pytest._code.code import ExceptionInfo, TerminalRepr

REPLICATES = pytest.StashKey[int | None]()


ARTIFACT_SESSION_KEY = "crystallize_artifact_session"
_ARTIFACT_SESSION = pytest.StashKey[str]()


def artifact_session(config: pytest.Config) -> str:
    """The id of this session's artifact versions: the owning process's, which every xdist
    worker receives (:class:`~.xdist.XdistHooks`), so all processes write one version."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        return str(workerinput.get(ARTIFACT_SESSION_KEY, workerinput.get("testrunuid")))
    return config.stash.setdefault(_ARTIFACT_SESSION, uuid.uuid4().hex)


def prepare_artifact_dirs(experiment: Experiment, config: pytest.Config) -> None:
    """Owning process: at the end of the session, apply the retention of each ArtifactPlugin
    if the session wrote a version. The version itself is claimed by the first file a
    process writes, so a session that writes none (``--collect-only``, ``--fixtures``, an
    experiment without artifacts) makes, empties and removes nothing."""
    session = artifact_session(config)
    for plugin in experiment.plugins:
        if isinstance(plugin, ArtifactPlugin):
            plugin.base = config.rootpath  # a relative root_dir starts from the rootdir
            config.add_cleanup(functools.partial(plugin.finish_session, experiment, session))


def definition_line(experiment: Experiment, path: Path) -> int:
    """The 0-based line of ``path`` where ``experiment`` was made (0 when made elsewhere)."""
    where = experiment.defined_at
    if where is not None and Path(where[0]) == path:
        return max(where[1] - 1, 0)
    return 0


class ExperimentNode(pytest.Collector):
    """One experiment: a collector per condition (the baseline first), holding its chunk
    items, then one per hypothesis, holding a verdict item per treatment."""

    def __init__(self, *, experiment: Experiment, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.experiment = experiment
        for mark in experiment.marks:  # .marks(...) of the builder: pytest marks, checked
            if isinstance(mark, pytest.MarkDecorator):
                self.add_marker(mark)
            else:
                self.keywords[mark.name] = mark
                self.own_markers.append(mark)

    def collect(self) -> Iterator[ConditionNode | HypothesisNode]:
        exp = self.experiment
        names = [name for name, _ in exp.conditions()]
        layout = session_layout(self.config, exp, len(names))
        for index, name in enumerate(names):
            yield ConditionNode.from_parent(self, name=name, index=index, layout=layout)
        treatments = [t.name for t in exp.treatments]
        if treatments:
            for hyp in exp.hypotheses:
                yield HypothesisNode.from_parent(self, name=hyp.name, treatments=treatments)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, definition_line(self.experiment, self.path), self.name


class ConditionNode(pytest.Collector):
    """One condition of an experiment: its chunk items (``layout``: see :mod:`.layout`)."""

    def __init__(self, *, index: int, layout: Sequence[tuple[int, range]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.index = index
        self.layout = layout

    def collect(self) -> Iterator[ChunkItem]:
        for k, (look, replicates) in enumerate(self.layout):
            yield ChunkItem.from_parent(self, name=f"chunk-{k}", replicates=replicates, look=look)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, experiment_of(self).reportinfo()[1], self.name


class HypothesisNode(pytest.Collector):
    """One hypothesis of an experiment: a verdict item per treatment."""

    def __init__(self, *, treatments: Sequence[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.treatments = treatments

    def collect(self) -> Iterator[VerdictItem]:
        for treatment in self.treatments:
            yield VerdictItem.from_parent(self, name=treatment)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, experiment_of(self).reportinfo()[1], self.name


def experiment_of(node: pytest.Item | pytest.Collector) -> ExperimentNode:
    """The experiment a condition, a hypothesis, a chunk or a verdict item belongs to."""
    for parent in node.iter_parents():
        if isinstance(parent, ExperimentNode):
            return parent
    msg = f"{node.nodeid} belongs to no experiment"
    raise TypeError(msg)


class VerdictItem(pytest.Item):
    """The place of a (hypothesis, treatment) verdict in the tree, so that ``-k``, ``-m``,
    node ids, ``--lf``, ``--sw`` and marks select it like a test. It does not run: the
    selection (:mod:`.selection`) runs the chunks it needs instead, and the session reports
    the verdict once they are in. One that a skip mark skips stays, and pytest skips it."""

    @property
    def hypothesis(self) -> str:
        return self.parent.name if self.parent is not None else ""

    @property
    def treatment(self) -> str:
        return self.name

    def runtest(self) -> None:
        msg = (
            f"{self.nodeid} is decided from its chunks, not run: it was kept only to be "
            f"skipped, and its skip mark did not apply when it was set up"
        )
        raise CrystallizeError(msg)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        node = experiment_of(self)
        return self.path, node.reportinfo()[1], f"{node.name}::{self.hypothesis}::{self.name}"


class ChunkFailed(CrystallizeError):
    """Some runs of a chunk failed; the others' results were still reported."""

    def __init__(self, errors: Sequence[RunError]) -> None:
        self.errors = list(errors)
        super().__init__(f"{len(errors)} runs failed")


class ShardStopped(CrystallizeError):
    """A merge's chunk: a replicate did not come back from its shard (it said why)."""


class _Runtime:
    """Per-process state of one experiment: plugins started, steps set up, the run plan."""

    def __init__(self, experiment: Experiment, config: pytest.Config) -> None:
        self.experiment = experiment
        # An upstream run a downstream chunk reads is computed by this session's plan for it.
        self.plan = RunPlan(experiment, plan_for=lambda producer: _runtime(config, producer).plan)
        self.progress = LiveProgress.for_session(config, experiment.artifact_name, len(self.plan))
        pilot = config.getoption("crystallize_plan") is not None
        if self.plan.cache is not None:
            root = config.stash.get(CACHE_ROOT, None)
            self.plan.cache = StepCache(root) if root is not None and not pilot else None
        # Every process writes the session's one version, claimed by the first file any of
        # them writes; a pilot (--crystallize-plan) writes no files and no cache entries.
        artifacts = [p for p in experiment.plugins if isinstance(p, ArtifactPlugin)]
        for plugin in artifacts:
            if pilot:
                plugin.leave_session()
            else:
                plugin.join_session(config.rootpath, artifact_session(config))
                config.add_cleanup(plugin.leave_session)
        manager = experiment.plugin_manager()
        manager.subset_hook_caller("before_run", artifacts)(experiment=experiment)
        self.ctx = FrozenContext(experiment.initial_ctx)
        self.started: list[PipelineStep] = []
        for step in experiment.steps:
            step.setup(self.ctx)
            self.started.append(step)

    def teardown(self) -> None:
        for step in self.started:
            step.teardown(self.ctx)


_RUNTIMES = pytest.StashKey[dict[int, _Runtime]]()


def _runtime(config: pytest.Config, experiment: Experiment) -> _Runtime:
    runtimes = config.stash.setdefault(_RUNTIMES, {})
    runtime = runtimes.get(id(experiment))
    if runtime is None:
        runtime = runtimes[id(experiment)] = _Runtime(experiment, config)
    return runtime


def teardown_runtimes(config: pytest.Config) -> None:
    close_pools(config)
    for runtime in config.stash.get(_RUNTIMES, {}).values():
        runtime.teardown()


class ChunkItem(pytest.Item):
    """A slice of the replicates of one condition; ships its RunResults on its report."""

    def __init__(self, *, replicates: range, look: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.replicates = replicates
        self.look = look  # of the experiment's sequential design; 1 without one
        self.results: list[RunResult] = []
        self.stopped: list[Any] | None = None  # [replicate, kind, reason]: see STOPPED_ATTR
        self.verdicts: list[list[Any]] | None = None  # what it runs for: see VERDICTS_ATTR
        self.replayed: list[dict[str, Any]] | None = None  # a merge's runs, as shipped

    @property
    def condition(self) -> ConditionNode:
        parent = self.parent
        if not isinstance(parent, ConditionNode):
            msg = f"{self.nodeid}: a chunk belongs to a condition"
            raise TypeError(msg)
        return parent

    @property
    def experiment(self) -> Experiment:
        return experiment_of(self).experiment

    def setup(self) -> None:
        design = self.experiment.sequential
        if design is None or self.look == 1:
            return
        node = experiment_of(self)
        decided = decided_look(self.config, artifact_session(self.config), node.nodeid)
        if decided is not None and decided < self.look:
            runtime = self.config.stash.get(_RUNTIMES, {}).get(id(self.experiment))
            if runtime is not None and runtime.progress is not None:  # the live line says so
                runtime.progress.decided(decided, design.looks)
            # At the experiment's place, as a skip mark's skip: one line for all its chunks.
            raise pytest.skip.Exception(
                decision_skip(decided, design.looks), _use_item_location=True
            )

    def runtest(self) -> None:
        replay = replayed(self.config)
        if replay is not None:  # a merge: the shards' runs, and no step of the user runs
            self._replay(replay)
            return
        runtime = _runtime(self.config, self.experiment)
        self.stopped = None
        run_chunk(self, runtime.plan, runtime.progress, self.replicates, self.condition.index)
        errors = [r.error for r in self.results if r.error is not None]
        if errors:
            raise ChunkFailed(errors)

    def _replay(self, replay: Replay) -> None:
        node = experiment_of(self).nodeid
        self.replayed, stop = replay.chunk(node, self.condition.name, self.replicates)
        self.stopped = None if stop is None else list(stop)
        if stop is not None and stop[1] == "skipped":
            raise pytest.skip.Exception(stop[2])
        if stop is not None:
            where = f"replicate {stop[0]} of condition {self.condition.name!r}"
            said = "is" if stop[2] == MISSING else "stopped in its shard:"
            msg = f"{where} {said} {stop[2]}"
            raise ShardStopped(msg)
        failed = [RunResult.from_json(r) for r in self.replayed if r["error"] is not None]
        if failed:
            raise ChunkFailed([r.error for r in failed if r.error is not None])

    def iter_markers_with_node(self, name: str | None = None) -> Iterator[tuple[Any, Any]]:
        # An xfail mark expects verdicts to fail; the replicates that feed them still run as
        # usual, so a chunk never turns into XFAIL or XPASS.
        for node, mark in super().iter_markers_with_node(name):
            if mark.name != "xfail":
                yield node, mark

    def repr_failure(
        self, excinfo: ExceptionInfo[BaseException], style: Any = None
    ) -> str | TerminalRepr:
        if isinstance(excinfo.value, ChunkFailed):
            errors = excinfo.value.errors
            lines = [f"{len(errors)} of {len(self.replicates)} runs in this chunk failed:"]
            for error in errors:
                lines.append(f"\nreplicate {error.replicate}: {error.summary()}")
                lines.append(error.traceback.rstrip())
            return "\n".join(lines)
        if isinstance(excinfo.value, ShardStopped):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        node = experiment_of(self)
        return self.path, node.reportinfo()[1], f"{node.name}::{self.condition.name}::{self.name}"


# A chunk stopped by an exception that is not the user's code failing ([replicate, kind,
# reason] on its call report): its other replicates never ran, so no verdict can be given.
STOPPED_ATTR = "crystallize_stopped"


# The verdicts a chunk runs for ([[hypothesis, treatment, xfail], ...], xfail being None or
# [reason, strict]), on each of its reports: the session owner, which under xdist collects
# nothing, learns from it which verdicts were selected.
VERDICTS_ATTR = "crystallize_verdicts"


def attach_runs(item: pytest.Item, report: pytest.TestReport) -> None:
    """Put what a chunk runs for on its reports, and its RunResults (and what stopped it) on
    its call report, as plain data that xdist can send."""
    if not isinstance(item, ChunkItem):
        return
    if item.verdicts is not None:
        setattr(report, VERDICTS_ATTR, item.verdicts)
    if report.when == "call":
        shipped = item.replayed or [r.to_json() for r in item.results]
        setattr(report, RUNS_ATTR, shipped)
        if item.stopped is not None:
            setattr(report, STOPPED_ATTR, item.stopped)
        item.results = []
        item.replayed = None

"""Artifacts and experiment graphs: experiments that consume what other experiments produce.

An :class:`Artifact` is a named file an experiment declares in ``outputs=[...]``; a step of
that experiment writes it (``ctx.artifacts.add(name, data)``, or ``artifact.write(obj)`` when
the artifact is passed to the step). Another experiment reads it by using the artifact as its
data source (or several through :class:`ExperimentInput`).

Which run's file a downstream run reads: the upstream run of the same replicate (modulo the
upstream's replicate count) and of the condition with the same name, or the upstream's
baseline when it has no such condition. Treatments do not propagate: a downstream experiment
has its own conditions, and a downstream treatment named like an upstream one reads that
treatment's output. Inside :meth:`ExperimentGraph.run` the file comes from this graph run;
anywhere else (a lone experiment, pytest workers) the upstream run is computed in the same
process, from the step cache when its steps are cacheable; seeds make both identical.
"""

from __future__ import annotations

import atexit
import hashlib
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .context import BASELINE_CONDITION, CONDITION_KEY, REPLICATE_KEY, FrozenContext
from .errors import CrystallizeError, CrystallizeUsageError, ExperimentDefinitionError
from .steps import DataSource

if TYPE_CHECKING:
    from .experiment import Experiment
    from .results import Result
    from .run import RunPlan


def _read_bytes(path: Path) -> bytes:
    return path.read_bytes()


def _to_bytes(obj: Any) -> bytes:
    if isinstance(obj, bytes | bytearray | memoryview):
        return bytes(obj)
    if isinstance(obj, str):
        return obj.encode("utf-8")
    msg = (
        f"the default writer takes bytes or str, got {type(obj).__name__}; give the "
        f"Artifact a writer"
    )
    raise TypeError(msg)


class BoundArtifact:
    """An artifact bound to one run: ``write(obj)`` stores ``writer(obj)`` for this step."""

    def __init__(self, artifact: Artifact, ctx: FrozenContext) -> None:
        self.artifact = artifact
        self.ctx = ctx

    @property
    def name(self) -> str:
        return self.artifact.name

    def write(self, obj: Any) -> None:
        art = self.artifact
        try:
            data = art.writer(obj)
        except Exception as exc:
            msg = (
                f"the writer of artifact {art.name!r}{art.producer_label()} raised "
                f"{type(exc).__name__}: {exc}"
            )
            raise CrystallizeError(msg) from exc
        if not isinstance(data, bytes | bytearray | memoryview):
            msg = (
                f"the writer of artifact {art.name!r}{art.producer_label()} returned "
                f"{type(data).__name__} {data!r:.60}; a writer must return bytes (for text: "
                f"lambda obj: json.dumps(obj).encode())"
            )
            raise CrystallizeUsageError(msg)
        self.ctx.artifacts.add(art.name, data)


class Artifact(DataSource):
    """A file produced by one experiment's steps and consumed by other experiments.

    ``loader(path)`` turns the file into data (default: its bytes); ``writer(obj)`` turns an
    object into the file's bytes (default: bytes as they are, str as UTF-8).
    """

    def __init__(
        self,
        name: str,
        loader: Callable[[Path], Any] | None = None,
        writer: Callable[[Any], bytes] | None = None,
    ) -> None:
        if not isinstance(name, str) or not name or "/" in name or name in {".", ".."}:
            msg = f"an Artifact name must be a plain file name such as 'data.json', got {name!r}"
            raise CrystallizeUsageError(msg)
        for role, fn in (("loader", loader), ("writer", writer)):
            if fn is not None and not callable(fn):
                msg = f"Artifact({name!r}, {role}=...) must be callable, got {fn!r}"
                raise CrystallizeUsageError(msg)
        self._name = name
        self.loader: Callable[[Path], Any] = loader or _read_bytes
        self.writer: Callable[[Any], bytes] = writer or _to_bytes
        self.producer: Experiment | None = None

    @property
    def name(self) -> str:
        return self._name

    def __crystallize_digest__(self) -> tuple[str, str]:
        """What identifies the artifact in cache keys and fingerprints: its name."""
        return ("artifact", self.name)

    def producer_label(self) -> str:
        return f" of experiment {self.producer.name!r}" if self.producer is not None else ""

    def bind(self, ctx: FrozenContext) -> BoundArtifact:
        return BoundArtifact(self, ctx)

    def fetch(self, ctx: FrozenContext) -> Any:
        producer = self.producer
        if producer is None:
            msg = (
                f"artifact {self.name!r} is read by an experiment's data source, but no "
                f"experiment produces it: list it in outputs=[...] of the experiment whose "
                f"step writes it"
            )
            raise ExperimentDefinitionError(msg)
        condition = ctx[CONDITION_KEY]
        if condition not in {name for name, _ in producer.conditions()}:
            condition = BASELINE_CONDITION
        # A graph run may override the upstream's replicate count: read its own replicate
        # when this graph run produced it, else the declared count's replicate.
        upstream = ctx._upstream or {}
        replicate = ctx[REPLICATE_KEY]
        if (self.name, condition, replicate) not in upstream:
            replicate %= producer.replicates
        known = upstream.get((self.name, condition, replicate))
        path = Path(known) if known else upstream_file(producer, self.name, condition, replicate)
        try:
            return self.loader(path)
        except Exception as exc:
            msg = (
                f"the loader of artifact {self.name!r} (produced by experiment "
                f"{producer.name!r}, condition {condition!r}, replicate {replicate}) raised "
                f"{type(exc).__name__}: {exc}"
            )
            raise CrystallizeError(msg) from exc

    def __repr__(self) -> str:
        return f"Artifact({self.name!r})"


class ExperimentInput(DataSource):
    """Several inputs at once: ``fetch`` returns ``{name: source.fetch(ctx)}``."""

    def __init__(self, **inputs: DataSource) -> None:
        if not inputs:
            msg = "ExperimentInput needs at least one input, as ExperimentInput(name=artifact)"
            raise CrystallizeUsageError(msg)
        for key, source in inputs.items():
            if not isinstance(source, DataSource):
                msg = (
                    f"ExperimentInput({key}=...) takes an Artifact or a data source, got {source!r}"
                )
                raise CrystallizeUsageError(msg)
        self.inputs = dict(inputs)

    def fetch(self, ctx: FrozenContext) -> Any:
        return {key: source.fetch(ctx) for key, source in self.inputs.items()}

    @property
    def required_outputs(self) -> list[Artifact]:
        return [s for s in self.inputs.values() if isinstance(s, Artifact)]


MultiArtifactDataSource = ExperimentInput


class DiskArtifact(DataSource):
    """The path of a file an experiment wrote, in the newest version on disk."""

    def __init__(self, experiment: Experiment, step: str, name: str, condition: str) -> None:
        self.experiment = experiment
        self.step = step
        self.file_name = name
        self.condition = condition

    @property
    def name(self) -> str:
        return f"{self.experiment.artifact_name}/{self.step}/{self.file_name}"

    def fetch(self, ctx: FrozenContext) -> Path:
        from .plugins import ArtifactPlugin, _version_numbers

        plugin = self.experiment.get_plugin(ArtifactPlugin) or ArtifactPlugin()
        base = plugin.experiment_dir(self.experiment)
        versions = _version_numbers(base)
        replicate = ctx[REPLICATE_KEY] % self.experiment.replicates
        path = (
            base
            / f"v{versions[-1] if versions else 0}"
            / f"replicate_{replicate}"
            / self.condition
            / self.step
            / self.file_name
        )
        if not path.is_file():
            msg = (
                f"experiment {self.experiment.artifact_name!r} has no file {self.file_name!r} "
                f"from step {self.step!r} at {path}; run it first"
            )
            raise FileNotFoundError(msg)
        return path


def artifacts_read(source: Any) -> list[Artifact]:
    """The artifacts a data source reads."""
    if isinstance(source, Artifact):
        return [source]
    if isinstance(source, ExperimentInput):
        return [a for s in source.inputs.values() for a in artifacts_read(s)]
    return []


# --- computing an upstream run where its file is not at hand ---------------------------------

_PLANS: dict[int, RunPlan] = {}
_FILES: dict[tuple[int, str, int], dict[str, Path]] = {}
_KEEP = 256  # upstream runs remembered per process
_SCRATCH: list[Path] = []
PLAN_FACTORY: list[Callable[[Experiment], RunPlan]] = []  # set by the pytest plugin


def _scratch() -> Path:
    if not _SCRATCH:
        folder = Path(tempfile.mkdtemp(prefix="crystallize-upstream-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        _SCRATCH.append(folder)
    return _SCRATCH[0]


def upstream_file(producer: Experiment, name: str, condition: str, replicate: int) -> Path:
    """Compute the producer's run (or remember it) and return the path of its file ``name``."""
    key = (id(producer), condition, replicate)
    files = _FILES.get(key)
    if files is None:
        plan = _PLANS.get(id(producer))
        if plan is None:
            from .run import RunPlan

            plan = _PLANS[id(producer)] = (
                PLAN_FACTORY[0](producer) if PLAN_FACTORY else RunPlan(producer)
            )
        result, kept = plan.execute_keeping(plan.index_of(condition, replicate))
        if result.error is not None:
            msg = (
                f"the upstream experiment {producer.name!r} failed in the run this one reads "
                f"({condition!r}, replicate {replicate}): {result.error.summary()}"
            )
            raise CrystallizeError(msg)
        digest = hashlib.sha256(f"{producer.name}|{condition}|{replicate}".encode()).hexdigest()
        folder = _scratch() / digest[:16]
        folder.mkdir(parents=True, exist_ok=True)
        files = {}
        for file_name, data in kept.items():
            (folder / file_name).write_bytes(data)
            files[file_name] = folder / file_name
        if len(_FILES) >= _KEEP:
            del _FILES[next(iter(_FILES))]
        _FILES[key] = files
    if name not in files:
        made = ", ".join(sorted(files)) or "none"
        msg = (
            f"experiment {producer.name!r} lists artifact {name!r} in outputs, but its run "
            f"({condition!r}, replicate {replicate}) wrote no file of that name (it wrote: "
            f"{made}); call ctx.artifacts.add({name!r}, data) or artifact.write(obj) in a step"
        )
        raise CrystallizeError(msg)
    return files[name]


# --- graphs -------------------------------------------------------------------------------


class ExperimentGraph:
    """Experiments run in dependency order; independent experiments may share a graph.

    Edges come from data sources: an experiment whose data source is (or includes) an
    artifact another experiment lists in ``outputs`` depends on that experiment.
    """

    def __init__(self, *experiments: Experiment | Iterable[Experiment], name: str | None = None):
        from .experiment import Experiment

        flat: list[Experiment] = []
        for item in experiments:
            flat.extend([item] if isinstance(item, Experiment) else list(item))
        self.name = name or "ExperimentGraph"
        self.experiments: dict[str, Experiment] = {}
        for exp in flat:
            if not isinstance(exp, Experiment):
                msg = f"ExperimentGraph takes Experiment objects, got {exp!r}"
                raise CrystallizeUsageError(msg)
            if not exp.name:
                msg = (
                    "every experiment in an ExperimentGraph needs a name: build it with "
                    "Experiment.builder('name')"
                )
                raise ExperimentDefinitionError(msg)
            if exp.name in self.experiments:
                msg = f"graph {self.name!r}: two experiments are named {exp.name!r}; rename one"
                raise ExperimentDefinitionError(msg)
            self.experiments[exp.name] = exp
        self.upstream: dict[str, list[str]] = {}
        for exp in self.experiments.values():
            parents: list[str] = []
            for art in artifacts_read(exp.datasource):
                producer = art.producer
                if producer is None:
                    msg = (
                        f"graph {self.name!r}: experiment {exp.name!r} reads artifact "
                        f"{art.name!r}, which no experiment produces; list it in "
                        f"outputs=[...] of the experiment whose step writes it"
                    )
                    raise ExperimentDefinitionError(msg)
                if self.experiments.get(str(producer.name)) is not producer:
                    msg = (
                        f"graph {self.name!r}: experiment {exp.name!r} reads artifact "
                        f"{art.name!r} of experiment {producer.name!r}, which is not in this "
                        f"graph; add it"
                    )
                    raise ExperimentDefinitionError(msg)
                if producer.name not in parents:
                    parents.append(str(producer.name))
            self.upstream[str(exp.name)] = parents
        self.order = self._topological()

    @classmethod
    def from_experiments(
        cls, experiments: Sequence[Experiment], name: str | None = None
    ) -> ExperimentGraph:
        return cls(*experiments, name=name)

    def _topological(self) -> list[str]:
        order: list[str] = []
        state: dict[str, int] = {}  # 1: visiting, 2: done

        def visit(node: str, path: list[str]) -> None:
            if state.get(node) == 2:
                return
            if state.get(node) == 1:
                cycle = " -> ".join([*path[path.index(node) :], node])
                msg = (
                    f"graph {self.name!r} has a cycle: {cycle}; an experiment cannot read "
                    f"its own output"
                )
                raise ExperimentDefinitionError(msg)
            state[node] = 1
            for parent in self.upstream[node]:
                visit(parent, [*path, node])
            state[node] = 2
            order.append(node)

        for node in self.experiments:
            visit(node, [])
        return order

    def run(
        self,
        *,
        treatments: Iterable[Any] | None = None,
        replicates: int | None = None,
        strategy: str | None = None,
    ) -> dict[str, Result]:
        """Run every experiment in dependency order; each downstream run reads the files its
        upstream runs wrote in this call. Arguments apply to every experiment."""
        results: dict[str, Result] = {}
        for name in self.order:
            exp = self.experiments[name]
            upstream: dict[tuple[str, str, int], str] = {}
            for art in artifacts_read(exp.datasource):
                produced = results[str(art.producer.name)] if art.producer else None
                for run in produced.runs if produced else ():
                    for _step, file_name, path in run.artifacts:
                        if file_name == art.name:
                            upstream[(file_name, run.condition, run.replicate)] = path
            results[name] = exp._run(
                treatments=treatments,
                hypotheses=None,
                replicates=replicates,
                strategy=strategy,
                upstream=upstream,
            )
        return results

    async def arun(self, **kwargs: Any) -> dict[str, Result]:
        import asyncio

        return await asyncio.get_running_loop().run_in_executor(None, lambda: self.run(**kwargs))

    def __repr__(self) -> str:
        return f"ExperimentGraph({self.order!r})"

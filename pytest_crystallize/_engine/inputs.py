"""Artifacts and experiment inputs: data sources that read what other experiments produce.

An :class:`Artifact` is a named file an experiment declares in ``outputs=[...]``; a step of
that experiment writes it (``ctx.artifacts.add(name, data)``, or ``artifact.write(obj)`` when
the artifact is passed to the step). Another experiment reads it by using the artifact as its
data source (or several through :class:`ExperimentInput`).

Which run's file a downstream run reads: the upstream run of the same replicate (modulo the
upstream's replicate count) and of the condition with the same name, or the upstream's
baseline when it has no such condition. The run's :class:`~.upstream.Upstream` knows the files
this graph run produced and computes the others.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .context import BASELINE_CONDITION, CONDITION_KEY, REPLICATE_KEY, FrozenContext
from .errors import CrystallizeError, CrystallizeUsageError, ExperimentDefinitionError
from .names import check_name
from .sources import DataSource

if TYPE_CHECKING:
    from .experiment import Experiment


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
        check_name("artifact", name)
        for role, fn in (("loader", loader), ("writer", writer)):
            if fn is not None and not callable(fn):
                msg = f"Artifact({name!r}, {role}=...) must be callable, got {fn!r}"
                raise CrystallizeUsageError(msg)
        self._name = name
        self.loader: Callable[[Path], Any] = loader or Path.read_bytes
        self.writer: Callable[[Any], bytes] = writer or _to_bytes
        self.producer: Experiment | None = None

    @property
    def name(self) -> str:
        return self._name

    def __crystallize_digest__(self) -> tuple[str, str]:
        """What identifies the artifact in cache keys and fingerprints: its name."""
        return ("artifact", self.name)

    def producer_label(self) -> str:
        """`` of experiment 'name'`` for messages, or ``""`` when no experiment produces it."""
        return f" of experiment {self.producer.name!r}" if self.producer is not None else ""

    def bind(self, ctx: FrozenContext) -> BoundArtifact:
        """The artifact bound to the run of ``ctx``, so a step can ``write`` it."""
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
        upstream = ctx.upstream
        if upstream is None:
            msg = (
                f"artifact {self.name!r} can only be read inside a run of an experiment "
                f"(experiment.run(), apply() or a pytest chunk), not from a standalone context"
            )
            raise CrystallizeUsageError(msg)
        # A graph run may override the upstream's replicate count: read its own replicate
        # when this graph run produced it, else the declared count's replicate.
        replicate = ctx[REPLICATE_KEY]
        if (self.name, condition, replicate) not in upstream.known:
            replicate %= producer.replicates
        path = upstream.path(producer, self.name, condition, replicate)
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
        """The artifacts among the inputs: upstream experiments must produce them."""
        return [s for s in self.inputs.values() if isinstance(s, Artifact)]


MultiArtifactDataSource = ExperimentInput


def artifacts_read(source: Any) -> list[Artifact]:
    """The artifacts a data source reads."""
    if isinstance(source, Artifact):
        return [source]
    if isinstance(source, ExperimentInput):
        return [a for s in source.inputs.values() for a in artifacts_read(s)]
    return []

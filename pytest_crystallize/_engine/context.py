"""FrozenContext: the per-run, append-only context, with its metrics and artifact logs."""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from .errors import ContextMutationError, CrystallizeUsageError
from .names import check_name
from .seeds import stable_int

if TYPE_CHECKING:
    import numpy as np

    from .upstream import Upstream

CONDITION_KEY = "condition"
REPLICATE_KEY = "replicate"
SEED_KEY = "seed"
RESERVED_KEYS = frozenset({CONDITION_KEY, REPLICATE_KEY, SEED_KEY})
BASELINE_CONDITION = "baseline"

_IMMUTABLE = (int, float, complex, str, bytes, bool, type(None), range, frozenset)
_LOGGER = logging.getLogger("pytest_crystallize")


def detached(value: Any) -> Any:
    """Return ``value`` as a caller may use it without changing the context's copy."""
    if isinstance(value, _IMMUTABLE):
        return value
    if isinstance(value, tuple) and all(isinstance(v, _IMMUTABLE) for v in value):
        return value
    if type(value).__name__ == "ndarray" and hasattr(value, "flags"):
        view = value.view()
        view.flags.writeable = False
        return view
    return copy.deepcopy(value)


class FrozenMetrics:
    """Append-only metric values (and their tags) recorded during one run."""

    __slots__ = ("_tags", "_values")

    def __init__(self) -> None:
        self._values: dict[str, list[Any]] = {}
        self._tags: dict[str, list[Mapping[str, Any] | None]] = {}

    def add(self, key: str, value: Any, tags: Mapping[str, Any] | None = None) -> None:
        """Append ``value`` to metric ``key``; one run may record a metric several times."""
        check_name("metric", key)
        self._values.setdefault(key, []).append(value)
        self._tags.setdefault(key, []).append(dict(tags) if tags is not None else None)

    def __getitem__(self, key: str) -> tuple[Any, ...]:
        return tuple(self._values[key])

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._values))

    def __len__(self) -> int:
        return len(self._values)

    def snapshot(self) -> dict[str, tuple[Any, ...]]:
        """Every metric's values so far, as a plain dict of tuples."""
        return {k: tuple(v) for k, v in self._values.items()}

    def counts(self) -> dict[str, int]:
        """How many values each metric holds now (a mark for :meth:`since`)."""
        return {k: len(v) for k, v in self._values.items()}

    def since(self, counts: Mapping[str, int]) -> tuple[tuple[str, Any, Any], ...]:
        """``(name, value, tags)`` of every value recorded after ``counts`` was taken."""
        return tuple(
            (name, value, tags)
            for name, series in self._values.items()
            for value, tags in zip(
                series[counts.get(name, 0) :], self._tags[name][counts.get(name, 0) :], strict=True
            )
        )

    def get_tags(self, key: str) -> tuple[Mapping[str, Any] | None, ...]:
        """Return the tags recorded with each value of ``key`` (``None`` where none were)."""
        return tuple(self._tags[key])

    def as_dict(self) -> Mapping[str, tuple[Any, ...]]:
        """Return a read-only mapping of metric name to the tuple of its values."""
        return MappingProxyType({k: tuple(v) for k, v in self._values.items()})

    def __repr__(self) -> str:
        return f"FrozenMetrics({dict(self._values)!r})"


class ArtifactLog:
    """Files a step produced, as bytes; the ArtifactPlugin writes them after each step."""

    __slots__ = ("_pending", "written")

    def __init__(self) -> None:
        self._pending: dict[str, bytes] = {}
        self.written: list[tuple[str, str, str]] = []  # (step, file name, path)

    def add(self, name: str, data: bytes | bytearray | memoryview) -> None:
        """Queue ``data`` to be written as file ``name`` of the current step."""
        check_name("artifact", name)
        if not isinstance(data, bytes | bytearray | memoryview):
            shown = repr(data)
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            msg = (
                f"artifact {name!r} must be bytes, got {type(data).__name__} {shown}; "
                "encode text with .encode() or serialise objects (json.dumps(...).encode(), "
                "pickle.dumps(...)) first"
            )
            raise CrystallizeUsageError(msg)
        if name in self._pending:
            msg = f"artifact {name!r} was already added by this step; give each file its own name"
            raise ContextMutationError(msg)
        self._pending[name] = bytes(data)

    def pop_pending(self) -> dict[str, bytes]:
        """Return the queued files and empty the queue."""
        pending, self._pending = self._pending, {}
        return pending

    def clear(self) -> None:
        """Drop the queued files without writing them."""
        self._pending.clear()

    def __iter__(self) -> Iterator[tuple[str, bytes]]:
        return iter(list(self._pending.items()))

    def __len__(self) -> int:
        return len(self._pending)


class FrozenContext:
    """The context of one run: values may be added, never replaced.

    Reading a value returns something the caller may mutate freely (immutable values as they
    are, numpy arrays as read-only views, anything else as a deep copy), so no step can change
    what another step or another run sees. ``metrics`` and ``artifacts`` record what the run
    produces; ``rng`` and ``rng_for(name)`` are the run's seeded random generators.
    """

    __slots__ = (
        "_data",
        "_reads",
        "_rngs",
        "_seed_root",
        "artifacts",
        "logger",
        "metrics",
        "upstream",
    )

    def __init__(
        self, initial: Mapping[str, Any] | None = None, logger: logging.Logger | None = None
    ) -> None:
        self._data: dict[str, Any] = copy.deepcopy(dict(initial)) if initial else {}
        self.metrics = FrozenMetrics()
        self.artifacts = ArtifactLog()
        self.logger = logger or _LOGGER
        self._seed_root = 0
        self._rngs: dict[str | None, Any] | None = None
        self._reads: set[str] | None = None  # recorded while a cacheable step computes
        self.upstream: Upstream | None = None  # where Artifact.fetch finds upstream files

    # --- the run plan's interface (engine-internal; steps use the mapping API) -------------

    @classmethod
    def for_run(
        cls, data: dict[str, Any], seed_root: int, upstream: Upstream | None
    ) -> FrozenContext:
        """Build a run's context around ``data`` (owned by the caller, not copied)."""
        ctx = cls.__new__(cls)
        ctx._data = data
        ctx.metrics = FrozenMetrics()
        ctx.artifacts = ArtifactLog()
        ctx.logger = _LOGGER
        ctx._seed_root = seed_root
        ctx._rngs = None
        ctx._reads = None
        ctx.upstream = upstream
        return ctx

    def raw(self) -> Mapping[str, Any]:
        """The values themselves, read-only and without copies or read tracking."""
        return MappingProxyType(self._data)

    def overlay(self, values: Mapping[str, Any]) -> None:
        """Replace or add values: how a treatment applies to a run's context."""
        self._data.update(values)

    @contextlib.contextmanager
    def recording_reads(self) -> Iterator[set[str]]:
        """Collect the keys read inside the block: through ``ctx[...]``, ``ctx.get`` and
        ``in``; listing the keys (``keys()``, iterating, ``len``, ``as_dict()``) reads all."""
        reads: set[str] = set()
        self._reads = reads
        try:
            yield reads
        finally:
            self._reads = None

    def streams(self) -> Mapping[str | None, np.random.Generator]:
        """The generators made so far: ``None`` for ``ctx.rng``, else the stream's name."""
        return MappingProxyType(self._rngs or {})

    # --- the step's interface ----------------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        if self._reads is not None:
            self._reads.add(key)
        return detached(self._data[key])

    def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key`` (a copy the caller may change), or ``default``."""
        if self._reads is not None:
            self._reads.add(key)
        if key in self._data:
            return detached(self._data[key])
        return default

    def __contains__(self, key: object) -> bool:
        if self._reads is not None and isinstance(key, str):
            self._reads.add(key)
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())

    def keys(self) -> list[str]:
        """The context's keys, in the order they were added."""
        if self._reads is not None:
            self._reads.update(self._data)
        return list(self._data)

    def add(self, key: str, value: Any) -> None:
        """Add a new key; setting a key that exists raises :class:`ContextMutationError`."""
        if key in self._data:
            msg = (
                f"context key {key!r} is already set (to {self._data[key]!r}); a FrozenContext "
                "only accepts new keys: store the value under a new name"
            )
            raise ContextMutationError(msg)
        self._data[key] = value

    __setitem__ = add

    def as_dict(self) -> Mapping[str, Any]:
        """Return a read-only snapshot of every value."""
        if self._reads is not None:
            self._reads.update(self._data)
        return MappingProxyType(copy.deepcopy(self._data))

    def record(self, name: str, value: Any, tags: Mapping[str, Any] | None = None) -> None:
        """Record a metric value: the same as ``ctx.metrics.add``."""
        self.metrics.add(name, value, tags)

    @property
    def seed(self) -> int:
        """The run's integer seed (the same for replicate *i* in every condition)."""
        return int(self._data.get(SEED_KEY, 0))

    @property
    def rng(self) -> np.random.Generator:
        """The run's ``numpy.random.Generator``, seeded from the replicate (not the condition)."""
        return self._generator(None)

    def rng_for(self, name: str) -> np.random.Generator:
        """A named, independent stream: drawing from one leaves the others unchanged."""
        if not isinstance(name, str):
            msg = f"rng_for() takes a stream name (str), got {name!r}"
            raise CrystallizeUsageError(msg)
        return self._generator(name)

    def _generator(self, name: str | None) -> np.random.Generator:
        if self._rngs is None:
            self._rngs = {}
        rng = self._rngs.get(name)
        if rng is None:
            import numpy as np  # lazy: `import pytest_crystallize` stays numpy-free

            spawn_key: tuple[int, ...] = (int(self._data.get(REPLICATE_KEY, 0)),)
            if name is not None:
                spawn_key += (stable_int(f"crystallize-stream:{name}"),)
            sequence = np.random.SeedSequence(self._seed_root, spawn_key=spawn_key)
            rng = self._rngs[name] = np.random.Generator(np.random.PCG64(sequence))
        return rng

    def __repr__(self) -> str:
        return f"FrozenContext({self._data!r})"


class LoggingContext(FrozenContext):
    """A view of ``ctx`` that records every key read in ``reads`` and DEBUG-logs it.

    It shares the wrapped context's values, metrics and artifacts, so a step called with it
    behaves exactly as with ``ctx``: use it to see which context values a step depends on.
    """

    __slots__ = ("reads",)

    def __init__(self, ctx: FrozenContext, logger: logging.Logger | None = None) -> None:
        self._data = ctx._data
        self.metrics = ctx.metrics
        self.artifacts = ctx.artifacts
        self.logger = logger or ctx.logger
        self._seed_root = ctx._seed_root
        self._rngs = ctx._rngs
        self._reads = ctx._reads
        self.upstream = ctx.upstream
        self.reads: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        value = super().__getitem__(key)
        self.reads[key] = value
        self.logger.debug("context read %r -> %r", key, value)
        return value

    def get(self, key: str, default: Any = None) -> Any:
        """Like :meth:`FrozenContext.get`, recording and logging the read."""
        return self[key] if key in self._data else default


def standalone_context(
    initial: Mapping[str, Any] | None = None, *, seed: int = 0, logger: logging.Logger | None = None
) -> FrozenContext:
    """A context for unit-testing a step outside an experiment (replicate 0, condition baseline)."""
    values = {CONDITION_KEY: BASELINE_CONDITION, REPLICATE_KEY: 0, SEED_KEY: seed}
    values.update(initial or {})
    ctx = FrozenContext(values, logger=logger)
    ctx._seed_root = seed
    return ctx

"""Data sources, pipeline steps, and how their parameters are filled from the context.

A decorated function becomes a *factory*: ``add_delta(delta=5)`` returns a step with that
explicit argument. When a step runs, its first positional parameter receives the data (whatever
its name), a parameter named ``ctx`` receives the :class:`FrozenContext`, and every other
parameter takes, in order: the explicit argument, else the context value of the same name,
else its default. A context value is passed as it is, never called.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar, Generic, TypeVar

from .context import FrozenContext, detached
from .errors import CrystallizeUsageError, ExperimentDefinitionError, PipelineExecutionError

_NO_DEFAULT = inspect.Parameter.empty
_T = TypeVar("_T")


class _Signature:
    """What a decorated function takes: data, ctx, and the parameters filled by name."""

    __slots__ = ("accepts_any", "ctx_param", "data_param", "defaults", "injectable", "kind", "name")

    def __init__(self, fn: Callable[..., Any], kind: str) -> None:
        self.name = getattr(fn, "__name__", repr(fn))
        self.kind = kind
        params = list(inspect.signature(fn).parameters.values())
        self.data_param: str | None = None
        if kind == "step":
            if (
                not params
                or params[0].kind
                not in (
                    inspect.Parameter.POSITIONAL_ONLY,
                    inspect.Parameter.POSITIONAL_OR_KEYWORD,
                )
                or params[0].name == "ctx"
            ):
                msg = (
                    f"step {self.name!r} must take the data as its first positional parameter, "
                    f"as in `def {self.name}(data, ctx, ...)`"
                )
                raise CrystallizeUsageError(msg)
            self.data_param = params[0].name
            params = params[1:]
        self.ctx_param = False
        self.accepts_any = False
        injectable: list[tuple[str, bool]] = []
        self.defaults: dict[str, Any] = {}
        for p in params:
            if p.kind is inspect.Parameter.VAR_KEYWORD:
                self.accepts_any = True
            elif p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.POSITIONAL_ONLY):
                msg = (
                    f"{kind} {self.name!r}: parameter {p.name!r} must be passable by name "
                    f"(no *args or positional-only parameters besides the data)"
                )
                raise CrystallizeUsageError(msg)
            elif p.name == "ctx":
                self.ctx_param = True
            else:
                injectable.append((p.name, p.default is not _NO_DEFAULT))
                if p.default is not _NO_DEFAULT:
                    self.defaults[p.name] = p.default
        self.injectable = tuple(injectable)

    def check_overrides(self, overrides: Mapping[str, Any]) -> None:
        names = {n for n, _ in self.injectable}
        for key, value in overrides.items():
            if key in ("ctx", self.data_param):
                msg = (
                    f"{self.name}() got {key}={value!r}: the {key} is passed when the "
                    f"{self.kind} runs, not when it is created"
                )
                raise CrystallizeUsageError(msg)
            if key not in names and not self.accepts_any:
                msg = (
                    f"{self.name}() got an unknown parameter {key!r} (={value!r}); "
                    f"{self.name} accepts: {self.describe() or 'no parameters'}"
                )
                raise CrystallizeUsageError(msg)

    def describe(self) -> str:
        parts = []
        for name, has_default in self.injectable:
            shown = f"default {self.defaults[name]!r}" if has_default else "required"
            parts.append(f"{name} ({shown})")
        return ", ".join(parts)

    def missing(self, explicit: Mapping[str, Any], available: Iterable[str]) -> list[str]:
        """Required parameters neither passed explicitly nor among ``available`` keys."""
        keys = set(available)
        return [
            name
            for name, has_default in self.injectable
            if not has_default and name not in explicit and name not in keys
        ]

    def resolve(
        self, explicit: Mapping[str, Any], ctx: FrozenContext, bound: Sequence[str] = ()
    ) -> dict[str, Any]:
        """The keyword arguments of a call: explicit, else from the context, else default.

        ``bound`` names explicit arguments that are artifacts: each is bound to this run's
        context, so the step can ``write`` it.
        """
        kwargs: dict[str, Any] = {}
        values = ctx.raw()
        for name, has_default in self.injectable:
            if name in explicit:
                kwargs[name] = explicit[name]
            elif name in values:
                kwargs[name] = detached(values[name])
            elif not has_default:
                msg = (
                    f"{self.kind} {self.name!r} needs {name!r}: it was not passed as "
                    f"{self.name}({name}=...) and the context of condition "
                    f"{values.get('condition')!r}, replicate {values.get('replicate')!r} has no "
                    f"{name!r} (it has: {', '.join(sorted(values))}); pass it explicitly, add it "
                    f"to initial_ctx, or set it in a treatment"
                )
                raise CrystallizeUsageError(msg)
        if self.accepts_any:
            kwargs.update((k, v) for k, v in explicit.items() if k not in kwargs)
        for name in bound:
            kwargs[name] = kwargs[name].bind(ctx)
        if self.ctx_param:
            kwargs["ctx"] = ctx
        return kwargs


def _source_digest(fn: Callable[..., Any]) -> str:
    try:
        text = inspect.getsource(fn)
    except (OSError, TypeError):
        code = getattr(fn, "__code__", None)
        text = code.co_code.hex() if code is not None else repr(fn)
    return hashlib.sha256(text.encode()).hexdigest()


class _Factory(Generic[_T]):
    """A decorated function: calling it with explicit arguments creates the component."""

    _kind: ClassVar[str]

    def __init__(self, fn: Callable[..., Any]) -> None:
        if not callable(fn):
            msg = f"@{self._kind.replace(' ', '_')} decorates a function, got {fn!r}"
            raise CrystallizeUsageError(msg)
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.signature = _Signature(fn, "step" if self._kind == "pipeline step" else self._kind)
        self.is_async = inspect.iscoroutinefunction(fn)

    def __call__(self, *args: Any, **overrides: Any) -> _T:
        raise NotImplementedError

    def _check(self, args: tuple[Any, ...], overrides: Mapping[str, Any]) -> None:
        if args:
            shown = ", ".join(f"{n}=..." for n, _ in self.signature.injectable[: len(args)])
            msg = (
                f"{self.signature.name}() takes its parameters by name, got positional "
                f"{args!r}; write {self.signature.name}({shown})"
            )
            raise CrystallizeUsageError(msg)
        self.signature.check_overrides(overrides)

    def __reduce__(self) -> str:
        # Pickled by reference: the module attribute of this name is this factory.
        return str(self.__qualname__)  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"<{self._kind} factory {self.signature.name}>"


# --- steps --------------------------------------------------------------------------------


class PipelineStep:
    """A step of a pipeline: ``step(data, ctx)`` returns the next data.

    Returning ``(data, {"metric": value, ...})`` records the metrics and forwards ``data``.
    Subclass it for class-based steps, or decorate a function with :func:`pipeline_step`.
    ``setup(ctx)`` and ``teardown(ctx)`` run once per ``experiment.run()`` with its initial
    context (``teardown`` even when a run failed).
    """

    cacheable: bool = False
    deterministic: bool = False
    is_async: bool = False

    @property
    def name(self) -> str:
        return type(self).__name__

    def __call__(self, data: Any, ctx: FrozenContext) -> Any:
        msg = f"{type(self).__name__} must implement __call__(self, data, ctx)"
        raise NotImplementedError(msg)

    @property
    def params(self) -> dict[str, Any]:
        """The explicit parameters of this step."""
        return {}

    def required_context(self) -> list[str]:
        """Parameters that must come from the context (no explicit value, no default)."""
        return []

    def setup(self, ctx: FrozenContext) -> None:
        """Called once per experiment run, before any replicate."""

    def teardown(self, ctx: FrozenContext) -> None:
        """Called once per experiment run, after every replicate."""

    @property
    def step_hash(self) -> str:
        payload = f"{self.name}|{sorted(self.params.items())!r}|{_source_digest(type(self))}"
        return hashlib.sha256(payload.encode()).hexdigest()


class FunctionStep(PipelineStep):
    """A step made by :func:`pipeline_step`; ``params`` are its explicit arguments."""

    def __init__(self, factory: StepFactory, explicit: Mapping[str, Any]) -> None:
        self.factory = factory
        self.explicit = dict(explicit)
        self.bound = tuple(
            k for k, v in self.explicit.items() if callable(getattr(v, "bind", None))
        )
        self.cacheable = factory.cacheable
        self.deterministic = factory.deterministic
        self.is_async = factory.is_async

    @property
    def name(self) -> str:
        return self.factory.signature.name

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.explicit)

    def required_context(self) -> list[str]:
        return self.factory.signature.missing(self.explicit, ())

    def __call__(self, data: Any, ctx: FrozenContext) -> Any:
        return self.factory.fn(
            data, **self.factory.signature.resolve(self.explicit, ctx, self.bound)
        )

    @property
    def step_hash(self) -> str:
        payload = f"{self.name}|{sorted(self.explicit.items())!r}|{_source_digest(self.factory.fn)}"
        return hashlib.sha256(payload.encode()).hexdigest()

    def __reduce__(self) -> tuple[Any, ...]:
        return (_call_factory, (self.factory, self.explicit))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.explicit.items())
        return f"{self.name}({args})"


def _call_factory(factory: Callable[..., Any], explicit: Mapping[str, Any]) -> Any:
    return factory(**explicit)


class StepFactory(_Factory[FunctionStep]):
    _kind = "pipeline step"

    def __init__(self, fn: Callable[..., Any], cacheable: bool, deterministic: bool) -> None:
        super().__init__(fn)
        self.cacheable = cacheable
        self.deterministic = deterministic

    def __call__(self, *args: Any, **overrides: Any) -> FunctionStep:
        self._check(args, overrides)
        return FunctionStep(self, overrides)


def pipeline_step(
    fn: Callable[..., Any] | None = None, *, cacheable: bool = False, deterministic: bool = False
) -> Any:
    """Turn ``fn(data, ctx, **params)`` into a step factory; works with or without parentheses.

    ``cacheable=True`` caches the step's output; ``deterministic=True`` declares that it draws
    no random numbers (its cache entries are then shared across seeds and replicates).
    """
    if fn is None:
        return functools.partial(pipeline_step, cacheable=cacheable, deterministic=deterministic)
    return StepFactory(fn, cacheable, deterministic)


# --- data sources -------------------------------------------------------------------------


class DataSource:
    """Produces a run's initial data: ``fetch(ctx)``; runs once per condition and replicate."""

    replicates: int | None = None
    is_async: bool = False

    @property
    def name(self) -> str:
        return type(self).__name__

    def fetch(self, ctx: FrozenContext) -> Any:
        msg = f"{type(self).__name__} must implement fetch(self, ctx)"
        raise NotImplementedError(msg)

    @property
    def params(self) -> dict[str, Any]:
        return {}

    def required_context(self) -> list[str]:
        return []


class FunctionSource(DataSource):
    """A data source made by :func:`data_source`."""

    def __init__(self, factory: SourceFactory, explicit: Mapping[str, Any]) -> None:
        self.factory = factory
        self.explicit = dict(explicit)
        self.is_async = factory.is_async

    @property
    def name(self) -> str:
        return self.factory.signature.name

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.explicit)

    def required_context(self) -> list[str]:
        return self.factory.signature.missing(self.explicit, ())

    def fetch(self, ctx: FrozenContext) -> Any:
        return self.factory.fn(**self.factory.signature.resolve(self.explicit, ctx))

    def __reduce__(self) -> tuple[Any, ...]:
        return (_call_factory, (self.factory, self.explicit))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.explicit.items())
        return f"{self.name}({args})"


class SourceFactory(_Factory[FunctionSource]):
    _kind = "data source"

    def __call__(self, *args: Any, **overrides: Any) -> FunctionSource:
        self._check(args, overrides)
        return FunctionSource(self, overrides)


_REGISTRY: dict[str, DataSource] = {}


def data_source(
    fn: Callable[..., Any] | str | None = None,
    *,
    register: bool = False,
    name: str | None = None,
) -> Any:
    """Turn ``fn(ctx, **params)`` into a data source factory; with or without parentheses.

    ``@data_source("name")`` or ``register=True`` also registers a default instance under that
    name (or the function's name) for :func:`get_datasource`.
    """
    if isinstance(fn, str):
        return functools.partial(data_source, register=True, name=fn)
    if fn is None:
        return functools.partial(data_source, register=register, name=name)
    factory = SourceFactory(fn)
    if register or name is not None:
        register_datasource(name or factory.signature.name, factory())
    return factory


def register_datasource(name: str, source: DataSource) -> None:
    """Register ``source`` under ``name``; a name can be registered once."""
    if name in _REGISTRY:
        msg = f"a data source named {name!r} is already registered; unregister it first"
        raise ExperimentDefinitionError(msg)
    _REGISTRY[name] = source


def get_datasource(name: str) -> DataSource:
    """Return the registered data source ``name``."""
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        msg = f"no data source registered as {name!r}; registered: {known}"
        raise KeyError(msg) from None


def unregister_datasource(name: str) -> None:
    _REGISTRY.pop(name, None)


def list_datasources() -> list[str]:
    return sorted(_REGISTRY)


def clear_registry() -> None:
    _REGISTRY.clear()


# --- pipelines ----------------------------------------------------------------------------


def coerce_component(value: Any, expected: type[_T], role: str) -> _T:
    """Accept a component, or its factory called with no arguments; explain anything else."""
    if isinstance(value, expected):
        return value
    if isinstance(value, _Factory):
        made = value()
        if isinstance(made, expected):
            return made
    kind = "pipeline_step" if expected is PipelineStep else "data_source"
    if inspect.isfunction(value) or inspect.ismethod(value):
        msg = (
            f"{role} got the plain function {value.__name__!r}; decorate it with @{kind} and "
            f"pass {value.__name__}() (or {value.__name__}(param=...))"
        )
    else:
        msg = (
            f"{role} takes a {expected.__name__} (made by @{kind}), got {value!r} "
            f"({type(value).__name__})"
        )
    raise CrystallizeUsageError(msg)


class Pipeline:
    """An ordered, non-empty list of steps."""

    def __init__(self, steps: Iterable[Any]) -> None:
        self.steps: list[PipelineStep] = [
            coerce_component(s, PipelineStep, "Pipeline") for s in steps
        ]
        if not self.steps:
            msg = "a Pipeline needs at least one step, got none"
            raise ExperimentDefinitionError(msg)
        self.is_async = any(s.is_async for s in self.steps)

    def signature(self) -> str:
        return "|".join(f"{s.name}{s.params!r}" for s in self.steps)

    def run(self, data: Any, ctx: FrozenContext) -> Any:
        """Run every step on ``data`` (recording metrics on ``ctx``) and return the result."""
        for step in self.steps:
            out = _call_step(step, data, ctx)
            if inspect.isawaitable(out):
                msg = f"step {step.name!r} is async: use `await pipeline.arun(data, ctx)`"
                raise CrystallizeUsageError(msg)
            data = unpack_output(out, ctx)
        return data

    async def arun(self, data: Any, ctx: FrozenContext) -> Any:
        for step in self.steps:
            out = _call_step(step, data, ctx)
            if inspect.isawaitable(out):
                try:
                    out = await out
                except Exception as exc:
                    raise PipelineExecutionError(step.name, exc) from exc
            data = unpack_output(out, ctx)
        return data

    def __repr__(self) -> str:
        return f"Pipeline({self.steps!r})"


def _call_step(step: PipelineStep, data: Any, ctx: FrozenContext) -> Any:
    """Call ``step``; what it raises comes back as PipelineExecutionError naming it."""
    try:
        return step(data, ctx)
    except Exception as exc:
        raise PipelineExecutionError(step.name, exc) from exc


def pipeline(*steps: Any) -> Pipeline:
    return Pipeline(steps)


def unpack_output(out: Any, ctx: FrozenContext) -> Any:
    """Split ``(data, {metrics})`` into data and recorded metrics; anything else is data."""
    if type(out) is tuple and len(out) == 2 and isinstance(out[1], Mapping):
        data, metrics = out
        for key, value in metrics.items():
            ctx.metrics.add(key, value)
        return data
    return out


def inject_from_ctx(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate ``fn(data, ctx, **params)`` so missing parameters come from the context."""
    signature = _Signature(fn, "step")

    @functools.wraps(fn)
    def wrapper(data: Any, ctx: FrozenContext, **explicit: Any) -> Any:
        if not isinstance(ctx, FrozenContext):
            msg = f"{signature.name}() needs a FrozenContext as ctx, got {ctx!r}"
            raise CrystallizeUsageError(msg)
        return fn(data, **signature.resolve(explicit, ctx))

    return wrapper

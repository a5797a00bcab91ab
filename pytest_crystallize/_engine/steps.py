"""Pipeline steps, the ``@pipeline_step`` decorator, and pipelines of steps.

How a step's parameters are filled from the context is :mod:`.injection`'s job; data sources
are in :mod:`.sources`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Concatenate, Generic, NoReturn, ParamSpec, Protocol, TypeVar, overload

from .context import FrozenContext
from .depends import check_depends_on, dependency_files, folder_of
from .errors import CrystallizeUsageError, ExperimentDefinitionError, PipelineExecutionError
from .injection import ComponentFactory, FactoryMade, call_factory
from .names import check_name
from .typevars import Data, Out, Params

_T = TypeVar("_T")
_P = ParamSpec("_P")
_D_contra = TypeVar("_D_contra", contravariant=True)
_R_co = TypeVar("_R_co", covariant=True)


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
        """The name shown in reports and errors (the class name unless overridden)."""
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


class FunctionStep(FactoryMade, PipelineStep, Generic[Data, Out]):
    """A step made by :func:`pipeline_step`; ``params`` are its explicit arguments.

    ``Data`` is the type of the data the function takes, ``Out`` what it returns.
    """

    factory: StepFactory[Data, ..., Out]

    def __init__(self, factory: StepFactory[Data, ..., Out], explicit: Mapping[str, Any]) -> None:
        self.factory = factory
        self.explicit = dict(explicit)
        self.bound = tuple(
            k for k, v in self.explicit.items() if callable(getattr(v, "bind", None))
        )
        self.cacheable = factory.cacheable
        self.deterministic = factory.deterministic
        self.is_async = factory.is_async

    def dependencies(self) -> tuple[list[Path], Path]:
        """The files ``depends_on`` names now, sorted, and the folder they are relative to;
        a pattern that names no file raises :class:`ExperimentDefinitionError`."""
        folder = self.factory.folder or Path.cwd()
        return dependency_files(self.name, self.factory.depends_on, folder), folder

    def setup(self, ctx: FrozenContext) -> None:
        """Check that the files of ``depends_on`` exist before any run starts."""
        if self.cacheable and self.factory.depends_on:
            self.dependencies()

    def __call__(self, data: Data, ctx: FrozenContext) -> Out:
        return self.factory.fn(
            data, **self.factory.signature.resolve(self.explicit, ctx, self.bound)
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (call_factory, (self.factory, self.explicit))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.explicit.items())
        return f"{self.name}({args})"


class StepFunction(Protocol[_D_contra, _P, _R_co]):
    """A function ``fn(data, ctx, **params)`` whose second parameter is named ``ctx``."""

    def __call__(
        self, data: _D_contra, /, ctx: FrozenContext, *args: _P.args, **kwargs: _P.kwargs
    ) -> _R_co: ...


class StepFactory(ComponentFactory[Out], Generic[Data, Params, Out]):
    """A function decorated with :func:`pipeline_step`: call it to make a step.

    ``Data`` is the data the function takes, ``Params`` its parameters after ``ctx`` (any keywords
    when its second parameter is not ``ctx``), ``Out`` what it returns.
    """

    kind = "pipeline step"

    def __init__(
        self,
        fn: Callable[..., Out],
        cacheable: bool,
        deterministic: bool,
        depends_on: str | Sequence[str] = (),
    ) -> None:
        super().__init__(fn)
        self.cacheable = cacheable
        self.deterministic = deterministic
        self.depends_on = check_depends_on(depends_on, self.signature.name)
        if self.depends_on and not cacheable:
            msg = (
                f"step {self.signature.name!r}: depends_on={depends_on!r} only adds files to "
                f"the cache key of a cacheable step; add cacheable=True or drop depends_on"
            )
            raise CrystallizeUsageError(msg)
        self.folder = folder_of(fn) if self.depends_on else None

    @overload
    def __call__(self) -> FunctionStep[Data, Out]: ...
    @overload
    def __call__(self, *args: Params.args, **kwargs: Params.kwargs) -> FunctionStep[Data, Out]: ...
    def __call__(self, *args: Any, **overrides: Any) -> FunctionStep[Data, Out]:
        """A step with these explicit arguments; the others come from the context.

        With no argument every parameter comes from the context or its default, so type
        checkers accept ``step()`` even when the function has required parameters.
        """
        self.check_call(args, overrides)
        return FunctionStep(self, overrides)


class StepDecorator(Protocol):
    """What ``@pipeline_step(...)`` with arguments returns: it decorates the function."""

    @overload
    def __call__(
        self, fn: Callable[Concatenate[Data, ...], NoReturn]
    ) -> StepFactory[Any, ..., Any]: ...
    @overload
    def __call__(self, fn: StepFunction[Data, _P, Out]) -> StepFactory[Data, _P, Out]: ...
    @overload
    def __call__(
        self, fn: Callable[Concatenate[Data, ...], Out]
    ) -> StepFactory[Data, ..., Out]: ...


# An unannotated function first: mypy ignores its parameter names, so it would take any
# second parameter for ``ctx``. It returns Any, which matches NoReturn; a typed one does not.
@overload
def pipeline_step(
    fn: Callable[Concatenate[Data, ...], NoReturn],
    *,
    cacheable: bool = False,
    deterministic: bool = False,
    depends_on: str | Sequence[str] = (),
) -> StepFactory[Any, ..., Any]: ...
@overload
def pipeline_step(
    fn: StepFunction[Data, _P, Out],
    *,
    cacheable: bool = False,
    deterministic: bool = False,
    depends_on: str | Sequence[str] = (),
) -> StepFactory[Data, _P, Out]: ...
@overload
def pipeline_step(
    fn: Callable[Concatenate[Data, ...], Out],
    *,
    cacheable: bool = False,
    deterministic: bool = False,
    depends_on: str | Sequence[str] = (),
) -> StepFactory[Data, ..., Out]: ...
@overload
def pipeline_step(
    fn: None = None,
    *,
    cacheable: bool = False,
    deterministic: bool = False,
    depends_on: str | Sequence[str] = (),
) -> StepDecorator: ...
def pipeline_step(
    fn: Callable[..., Any] | None = None,
    *,
    cacheable: bool = False,
    deterministic: bool = False,
    depends_on: str | Sequence[str] = (),
) -> StepFactory[Any, ..., Any] | StepDecorator:
    """Turn ``fn(data, ctx, **params)`` into a step factory; works with or without parentheses.

    ``cacheable=True`` caches the step's output; ``deterministic=True`` declares that it draws
    no random numbers (its cache entries are then shared across seeds and replicates).

    ``depends_on`` names the files a cacheable step reads (a path or glob pattern, or a list
    of them, such as ``["params.json", "data/*.csv"]``): their contents are part of its cache
    key, so editing one recomputes the step (it needs ``cacheable=True``). Patterns are
    relative to the folder of the file that defines the step (absolute paths work too):
    unlike the working directory or pytest's rootdir, that folder is the same in a script,
    under pytest and on every xdist worker. Globs are expanded (``**`` included) and sorted
    each time a key is made; a pattern that names no file is an error naming the step, the
    pattern and the folder, raised before the first run (and when a file goes missing later).

    For type checkers, the factory of a function written ``fn(data, ctx, ...)`` takes the
    parameters after ``ctx`` by keyword, typed as the function declares them: with
    ``delta: float``, ``add_delta(delta="x")`` and ``add_delta(detla=5.0)`` are errors.
    ``add_delta()`` always type-checks (the context fills what is not given); a call that
    gives some parameters must give those without a default too. The factory of a function
    of another shape (no ``ctx``, or ``ctx`` not second) takes any keywords.
    """
    if fn is None:
        again: Callable[..., Any] = pipeline_step  # the partial's call picks an overload
        return functools.partial(
            again, cacheable=cacheable, deterministic=deterministic, depends_on=depends_on
        )
    return StepFactory(fn, cacheable, deterministic, depends_on)


# --- pipelines ----------------------------------------------------------------------------


def coerce_component(value: Any, expected: type[_T], role: str) -> _T:
    """Accept a component, or its factory called with no arguments; explain anything else."""
    if isinstance(value, expected):
        return value
    if isinstance(value, ComponentFactory):
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
        """The steps' names and explicit parameters, in order, as one string."""
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
        """Like :meth:`run`, awaiting the steps that are async."""
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
    """``Pipeline(steps)``: a pipeline of these steps (or step factories), in order."""
    return Pipeline(steps)


def unpack_output(out: Any, ctx: FrozenContext) -> Any:
    """Split ``(data, {metrics})`` into data and recorded metrics; anything else is data."""
    if type(out) is tuple and len(out) == 2 and isinstance(out[1], Mapping):
        data, metrics = out
        for key, value in metrics.items():
            check_name("metric", key, owner="a step returned metrics: ", locate=False)
            ctx.metrics.add(key, value)
        return data
    return out

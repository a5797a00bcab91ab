"""Data sources, which produce a run's initial data, and the ``@data_source`` decorator."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, Generic, NoReturn, ParamSpec, Protocol, TypeVar, overload

from .context import FrozenContext
from .injection import ComponentFactory, FactoryMade, call_factory
from .registry import register_datasource
from .typevars import Out, Params

_P = ParamSpec("_P")
_R_co = TypeVar("_R_co", covariant=True)


class DataSource:
    """Produces a run's initial data: ``fetch(ctx)``; runs once per condition and replicate."""

    replicates: int | None = None
    is_async: bool = False

    @property
    def name(self) -> str:
        """The name shown in reports and errors (the class name unless overridden)."""
        return type(self).__name__

    def fetch(self, ctx: FrozenContext) -> Any:
        """Return the initial data of the run whose context is ``ctx``."""
        msg = f"{type(self).__name__} must implement fetch(self, ctx)"
        raise NotImplementedError(msg)

    @property
    def params(self) -> dict[str, Any]:
        """The explicit parameters of this data source."""
        return {}

    def required_context(self) -> list[str]:
        """Parameters that must come from the context (no explicit value, no default)."""
        return []


class FunctionSource(FactoryMade, DataSource, Generic[Out]):
    """A data source made by :func:`data_source`; ``fetch`` returns what the function does."""

    factory: SourceFactory[..., Out]

    def __init__(self, factory: SourceFactory[..., Out], explicit: Mapping[str, Any]) -> None:
        self.factory = factory
        self.explicit = dict(explicit)
        self.is_async = factory.is_async

    def fetch(self, ctx: FrozenContext) -> Out:
        """Call the function: explicit arguments, else context values, else defaults."""
        return self.factory.fn(**self.factory.signature.resolve(self.explicit, ctx))

    def __reduce__(self) -> tuple[Any, ...]:
        return (call_factory, (self.factory, self.explicit))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.explicit.items())
        return f"{self.name}({args})"


class SourceFunction(Protocol[_P, _R_co]):
    """A function ``fn(ctx, **params)`` whose first parameter is named ``ctx``."""

    def __call__(self, ctx: FrozenContext, *args: _P.args, **kwargs: _P.kwargs) -> _R_co: ...


class SourceFactory(ComponentFactory[Out], Generic[Params, Out]):
    """A function decorated with :func:`data_source`: call it to make a data source.

    ``Params`` are the parameters after ``ctx`` (any keywords when the function does not take
    ``ctx`` first), ``Out`` what the function returns.
    """

    kind = "data source"

    @overload
    def __call__(self) -> FunctionSource[Out]: ...
    @overload
    def __call__(self, *args: Params.args, **kwargs: Params.kwargs) -> FunctionSource[Out]: ...
    def __call__(self, *args: Any, **overrides: Any) -> FunctionSource[Out]:
        """A data source with these explicit arguments; the others come from the context.

        With no argument every parameter comes from the context or its default, so type
        checkers accept ``source()`` even when the function has required parameters.
        """
        self.check_call(args, overrides)
        return FunctionSource(self, overrides)


class SourceDecorator(Protocol):
    """What ``@data_source(...)`` with arguments returns: it decorates the function."""

    @overload
    def __call__(self, fn: Callable[..., NoReturn]) -> SourceFactory[..., Any]: ...
    @overload
    def __call__(self, fn: SourceFunction[_P, Out]) -> SourceFactory[_P, Out]: ...
    @overload
    def __call__(self, fn: Callable[..., Out]) -> SourceFactory[..., Out]: ...


# An unannotated function first: mypy ignores its parameter names, so it would take any
# first parameter for ``ctx``. It returns Any, which matches NoReturn; a typed one does not.
@overload
def data_source(
    fn: Callable[..., NoReturn], *, register: bool = False, name: str | None = None
) -> SourceFactory[..., Any]: ...
@overload
def data_source(
    fn: SourceFunction[_P, Out], *, register: bool = False, name: str | None = None
) -> SourceFactory[_P, Out]: ...
@overload
def data_source(
    fn: Callable[..., Out], *, register: bool = False, name: str | None = None
) -> SourceFactory[..., Out]: ...
@overload
def data_source(fn: str) -> SourceDecorator: ...
@overload
def data_source(
    fn: None = None, *, register: bool = False, name: str | None = None
) -> SourceDecorator: ...
def data_source(
    fn: Callable[..., Any] | str | None = None,
    *,
    register: bool = False,
    name: str | None = None,
) -> SourceFactory[..., Any] | SourceDecorator:
    """Turn ``fn(ctx, **params)`` into a data source factory; with or without parentheses.

    ``@data_source("name")`` or ``register=True`` also registers a default instance under that
    name (or the function's name) for :func:`get_datasource`.

    For type checkers, the factory of a function written ``fn(ctx, ...)`` takes the
    parameters after ``ctx`` by keyword, typed as the function declares them
    (``sized(size=3)``). ``sized()`` always type-checks (the context fills what is not
    given); a call that gives some parameters must give those without a default too. The
    factory of a function of another shape (no ``ctx``, or ``ctx`` not first) takes any
    keywords.
    """
    again: Callable[..., Any] = data_source  # the partial's call picks an overload
    if isinstance(fn, str):
        return functools.partial(again, register=True, name=fn)
    if fn is None:
        return functools.partial(again, register=register, name=name)
    factory: SourceFactory[..., Any] = SourceFactory(fn)
    if register or name is not None:
        register_datasource(name or factory.signature.name, factory())
    return factory

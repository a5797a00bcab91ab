"""How a decorated function's parameters are filled when its step or data source runs.

A decorated function becomes a *factory*: ``add_delta(delta=5)`` returns a step with that
explicit argument. When a step runs, its first positional parameter receives the data (whatever
its name), a parameter named ``ctx`` receives the :class:`FrozenContext`, and every other
parameter takes, in order: the explicit argument, else the context value of the same name,
else its default. A context value is passed as it is, never called.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar, Concatenate, Generic, Protocol, TypeVar

from .context import FrozenContext, detached
from .errors import CrystallizeUsageError
from .typevars import Out

_NO_DEFAULT = inspect.Parameter.empty
_T = TypeVar("_T")
_D = TypeVar("_D")
_D_contra = TypeVar("_D_contra", contravariant=True)
_R_co = TypeVar("_R_co", covariant=True)


class Signature:
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
        """Refuse explicit arguments the function cannot take (the data, ctx, unknown names)."""
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
        """The injectable parameters in words: ``"delta (default 0.0), size (required)"``."""
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


class ComponentFactory(Generic[Out]):
    """A decorated function: calling it with explicit arguments creates the component.

    ``fn`` is the decorated function (returning ``Out``), ``signature`` how its parameters
    are filled; the factory carries the function's ``__name__``, ``__doc__`` and
    ``__wrapped__``.
    """

    kind: ClassVar[str]
    # Copied from the decorated function by functools.update_wrapper.
    __name__: str
    __qualname__: str
    __wrapped__: Callable[..., Out]

    def __init__(self, fn: Callable[..., Out]) -> None:
        if not callable(fn):
            msg = f"@{self.kind.replace(' ', '_')} decorates a function, got {fn!r}"
            raise CrystallizeUsageError(msg)
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.signature = Signature(fn, "step" if self.kind == "pipeline step" else self.kind)
        self.is_async = inspect.iscoroutinefunction(fn)

    def __call__(self, *args: Any, **overrides: Any) -> object:
        raise NotImplementedError

    def check_call(self, args: tuple[Any, ...], overrides: Mapping[str, Any]) -> None:
        """Refuse positional arguments and parameters the function cannot take by name."""
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
        return self.__qualname__

    def __repr__(self) -> str:
        return f"<{self.kind} factory {self.signature.name}>"


def call_factory(factory: Callable[..., _T], explicit: Mapping[str, Any]) -> _T:
    """``factory(**explicit)``: how a step or data source made by a factory is unpickled."""
    return factory(**explicit)


class InjectedFunction(Protocol[_D_contra, _R_co]):
    """What :func:`inject_from_ctx` returns: ``fn(data, ctx, **explicit)``."""

    def __call__(self, data: _D_contra, ctx: FrozenContext, **explicit: Any) -> _R_co: ...


def inject_from_ctx(fn: Callable[Concatenate[_D, ...], _T]) -> InjectedFunction[_D, _T]:
    """Decorate ``fn(data, ctx, **params)`` so missing parameters come from the context."""
    signature = Signature(fn, "step")

    @functools.wraps(fn)
    def wrapper(data: _D, ctx: FrozenContext, **explicit: Any) -> _T:
        if not isinstance(ctx, FrozenContext):
            msg = f"{signature.name}() needs a FrozenContext as ctx, got {ctx!r}"
            raise CrystallizeUsageError(msg)
        return fn(data, **signature.resolve(explicit, ctx))

    return wrapper


class FactoryMade:
    """What a data source and a step made by a decorated function's factory share: the
    function's name, the explicit arguments, and the parameters left to the context."""

    factory: ComponentFactory[Any]
    explicit: dict[str, Any]

    @property
    def name(self) -> str:
        """The decorated function's name."""
        return self.factory.signature.name

    @property
    def params(self) -> dict[str, Any]:
        """The explicit arguments it was made with."""
        return dict(self.explicit)

    def required_context(self) -> list[str]:
        """Required parameters not given explicitly: the context must hold them."""
        return self.factory.signature.missing(self.explicit, ())

"""``@verifier``: a comparison of two conditions, made into a factory that binds its parameters."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any, Concatenate, Generic, ParamSpec, Protocol, TypeVar, overload

from .errors import CrystallizeUsageError
from .typevars import Out, Params

_SAMPLE_PARAMS = ("baseline", "treatment", "baseline_samples", "treatment_samples")
_P = ParamSpec("_P")
_R = TypeVar("_R")


class SupportsAsDict(Protocol):
    """A verifier's result object: ``as_dict()`` gives its mapping (``p_value``, ...)."""

    def as_dict(self) -> Mapping[str, Any]:
        """The result as a mapping, with the ``p_value`` key rankers read."""
        ...


class VerifierCallable(Generic[Out]):
    """A verifier with its parameters bound: ``v(baseline, treatment)`` returns its verdict."""

    def __init__(self, factory: VerifierFactory[..., Out], params: Mapping[str, Any]) -> None:
        self.factory = factory
        self.params = dict(params)

    @property
    def name(self) -> str:
        """The decorated function's name."""
        return self.factory.name

    def __call__(self, baseline: Mapping[str, Any], treatment: Mapping[str, Any]) -> Out:
        return self.factory.fn(baseline, treatment, **self.params)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_bind_verifier, (self.factory, self.params))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{self.name}({args})"


def _bind_verifier(
    factory: VerifierFactory[..., _R], params: Mapping[str, Any]
) -> VerifierCallable[_R]:
    return factory(**params)


class VerifierFactory(Generic[Params, Out]):
    """A function decorated with :func:`verifier`; call it to bind parameters.

    ``Params`` are the function's parameters after ``baseline`` and ``treatment``, ``Out``
    what it returns.
    """

    # Copied from the decorated function by functools.update_wrapper.
    __name__: str
    __qualname__: str
    __wrapped__: Callable[Concatenate[Any, Any, Params], Out]

    def __init__(self, fn: Callable[Concatenate[Any, Any, Params], Out]) -> None:
        if not callable(fn):
            msg = f"@verifier decorates a function fn(baseline, treatment, **params), got {fn!r}"
            raise CrystallizeUsageError(msg)
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.name: str = getattr(fn, "__name__", repr(fn))
        params = list(inspect.signature(fn).parameters.values())
        self.required = [
            p.name
            for p in params[2:]
            if p.name not in _SAMPLE_PARAMS
            and p.default is inspect.Parameter.empty
            and p.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
        ]
        self.accepted = {p.name for p in params[2:] if p.name not in _SAMPLE_PARAMS}
        self.accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
        # Checks the parameters when the verifier is made (built-in verifiers set it), so a
        # bad value fails at definition rather than after every run was computed.
        self.check: Callable[[Mapping[str, Any]], None] | None = None
        # The smallest p-value the verifier can reach with n replicates per condition
        # (built-in verifiers set it), so a test that can never pass fails at definition.
        self.floor: Callable[[VerifierCallable[Any], int], float] | None = None

    def __call__(self, *args: Params.args, **params: Params.kwargs) -> VerifierCallable[Out]:
        """The verifier with these parameters bound (by name; those without default needed)."""
        if args:
            names = list(inspect.signature(self.fn).parameters)[2 : 2 + len(args)]
            shown = ", ".join(f"{n}=..." for n in names)
            msg = (
                f"{self.name}() takes its parameters by name, got positional {args!r}; "
                f"write {self.name}({shown})"
            )
            raise CrystallizeUsageError(msg)
        unknown = [k for k in params if k not in self.accepted]
        if unknown and not self.accepts_any:
            msg = (
                f"{self.name}() got an unknown parameter {unknown[0]!r} "
                f"(={params[unknown[0]]!r}); it accepts: "
                f"{', '.join(sorted(self.accepted)) or 'none'}"
            )
            raise CrystallizeUsageError(msg)
        missing = [k for k in self.required if k not in params]
        if missing:
            msg = (
                f"{self.name}() needs parameter {missing[0]!r}: write {self.name}({missing[0]}=...)"
            )
            raise CrystallizeUsageError(msg)
        if self.check is not None:
            self.check(params)
        return VerifierCallable(self, params)

    def __reduce__(self) -> str:
        return self.__qualname__

    def __repr__(self) -> str:
        return f"<verifier factory {self.name}>"


def with_alpha(verifier: Any, alpha: float) -> Any:
    """``verifier`` deciding at ``alpha`` when it was made by ``@verifier`` from a function
    with an ``alpha`` parameter and was not given one (its default would apply); else
    ``verifier`` itself. A built-in verifier checks ``alpha`` as if it were written."""
    if not isinstance(verifier, VerifierCallable) or "alpha" in verifier.params:
        return verifier
    parameter = inspect.signature(verifier.factory.fn).parameters.get("alpha")
    if parameter is None or parameter.kind not in (
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.KEYWORD_ONLY,
    ):
        return verifier
    return verifier.factory(**verifier.params, alpha=alpha)


class VerifierDecorator(Protocol):
    """What ``@verifier()`` with parentheses returns: it decorates the function."""

    def __call__(self, fn: Callable[Concatenate[Any, Any, _P], _R]) -> VerifierFactory[_P, _R]: ...


@overload
def verifier(fn: Callable[Concatenate[Any, Any, _P], _R]) -> VerifierFactory[_P, _R]: ...
@overload
def verifier(fn: None = None) -> VerifierDecorator: ...
def verifier(
    fn: Callable[Concatenate[Any, Any, ...], Any] | None = None,
) -> VerifierFactory[..., Any] | VerifierDecorator:
    """Turn ``fn(baseline, treatment, **params)`` into a verifier factory.

    ``baseline`` and ``treatment`` are ``{metric: [value per replicate]}``, aligned by
    replicate. The verifier returns a mapping (for example ``{"p_value": p, "significant":
    p < alpha}``) or a result object with ``as_dict()``. Works with or without parentheses.

    For type checkers, the factory takes the parameters after ``treatment`` as keyword
    arguments, typed as the function declares them, and the bound verifier returns what the
    function returns.
    """
    if fn is None:
        return verifier
    return VerifierFactory(fn)

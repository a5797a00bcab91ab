"""Treatments: named conditions whose payload overlays the initial context of their runs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeAlias, overload

from .context import RESERVED_KEYS, FrozenContext
from .errors import CrystallizeUsageError, ExperimentDefinitionError
from .names import check_name

TreatmentFunction: TypeAlias = Callable[[FrozenContext], Mapping[str, Any] | None]
"""A callable treatment: ``fn(ctx)`` may ``ctx.add`` keys and may return a mapping to overlay."""


class Treatment:
    """A named condition: its payload overlays the initial context of each of its runs.

    ``apply`` is a mapping of context values, or a callable ``fn(ctx)`` that may add keys with
    ``ctx.add`` and may return a mapping to overlay. A Treatment is also callable, returning
    itself, so ``boost()`` and ``boost`` both name it.
    """

    def __init__(
        self, name: str, apply: Mapping[str, Any] | TreatmentFunction | None = None
    ) -> None:
        check_name("treatment", name)
        if apply is None:
            apply = {}
        if isinstance(apply, Mapping):
            bad = [k for k in apply if not isinstance(k, str)]
            if bad:
                msg = f"treatment {name!r}: context keys must be str, got {bad[0]!r}"
                raise CrystallizeUsageError(msg)
            apply = dict(apply)
        elif not callable(apply):
            msg = (
                f"treatment {name!r}: apply must be a mapping of context values or a callable "
                f"taking ctx, got {apply!r} ({type(apply).__name__})"
            )
            raise CrystallizeUsageError(msg)
        self.name = name
        self._apply: dict[str, Any] | TreatmentFunction = apply
        self._global_name: str | None = None

    @property
    def apply_map(self) -> dict[str, Any]:
        """A copy of the payload mapping (``{}`` for a callable treatment)."""
        return dict(self._apply) if isinstance(self._apply, dict) else {}

    @property
    def is_callable(self) -> bool:
        """Whether the treatment is a function of the context rather than a mapping."""
        return not isinstance(self._apply, dict)

    @property
    def function(self) -> TreatmentFunction | None:
        """The function of a callable treatment (``None`` for a mapping of values)."""
        return None if isinstance(self._apply, dict) else self._apply

    def apply(self, ctx: FrozenContext) -> None:
        """Apply this treatment to ``ctx`` (values overlay what the context holds)."""
        if isinstance(self._apply, dict):
            ctx.overlay(self._apply)
            return
        returned = self._apply(ctx)
        if isinstance(returned, Mapping):
            reserved = sorted(RESERVED_KEYS.intersection(returned))
            if reserved:
                msg = (
                    f"treatment {self.name!r} returned the reserved key {reserved[0]!r}; "
                    f"{', '.join(sorted(RESERVED_KEYS))} are set by the experiment"
                )
                raise ExperimentDefinitionError(msg)
            ctx.overlay(returned)

    def __call__(self) -> Treatment:
        return self

    def __reduce__(self) -> str | tuple[Any, ...]:
        if self._global_name is not None:
            return self._global_name
        return (Treatment, (self.name, self._apply))

    def __repr__(self) -> str:
        return f"Treatment({self.name!r}, {self._apply!r})"


@overload
def treatment(name: str, apply: Mapping[str, Any] | TreatmentFunction) -> Treatment: ...
@overload
def treatment(name: str, apply: None = None) -> Callable[[TreatmentFunction], Treatment]: ...
def treatment(
    name: str, apply: Mapping[str, Any] | TreatmentFunction | None = None
) -> Treatment | Callable[[TreatmentFunction], Treatment]:
    """``treatment(name, {...})`` returns a :class:`Treatment`; ``@treatment(name)`` decorates
    ``fn(ctx)`` into one."""
    if apply is not None:
        return Treatment(name, apply)

    def decorate(fn: TreatmentFunction) -> Treatment:
        made = Treatment(name, fn)
        made._global_name = fn.__qualname__
        made.__module__ = fn.__module__
        return made

    return decorate


def coerce_treatment(value: Any) -> Treatment:
    """Return ``value`` if it is a :class:`Treatment`; explain anything else."""
    if isinstance(value, Treatment):
        return value
    msg = (
        f"treatments() takes Treatment objects made by treatment(name, {{...}}), got {value!r} "
        f"({type(value).__name__})"
    )
    raise CrystallizeUsageError(msg)

"""The numbers of a verdict: read as finite floats, shown one way, and its alpha found.

Used by the engine, the built-in verifiers and the report: one coercer, one formatter
and one significance-level lookup, so that a p-value reads the same in every message.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from math import isfinite
from typing import Any

_ALPHA_KEYS = ("alpha", "significance_level")


def finite(value: Any) -> float | None:
    """``value`` as a float when it is a finite number, else ``None`` (never NaN or inf)."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if isfinite(number) else None


def finite_mean(values: Sequence[Any]) -> float | None:
    """The mean of ``values`` when every one is a finite number (and there is one), else
    ``None``: a report never shows a mean of partial data, NaN or inf."""
    numbers = [finite(v) for v in values]
    if not numbers or any(n is None for n in numbers):
        return None
    return sum(n for n in numbers if n is not None) / len(numbers)


def number(
    value: float | None, digits: int = 4, *, sign: bool = False, missing: str = "n/a"
) -> str:
    """How messages and reports show a number: ``digits`` significant digits, a ``+`` on
    positive values with ``sign``, ``missing`` for ``None``, and never ``-0``."""
    if value is None:
        return missing
    return f"{float(value) + 0.0:{'+' if sign else ''}.{digits}g}"  # + 0.0 turns -0.0 into 0.0


def alpha_of(verifier: Any, output: Mapping[str, Any] | None = None) -> float | None:
    """The significance level a verdict is decided at: the ``alpha`` (or
    ``significance_level``) the verifier's output states, else the ``alpha`` it was made
    with, else the default of its ``alpha`` parameter; ``None`` when none is a number."""
    candidates = [output.get(key) for key in _ALPHA_KEYS] if output is not None else []
    params = getattr(verifier, "params", None) or {}
    factory = getattr(verifier, "factory", None)
    if "alpha" in params:
        candidates.append(params["alpha"])
    elif factory is not None:
        default = inspect.signature(factory.fn).parameters.get("alpha")
        candidates.append(None if default is None else default.default)
    for value in candidates:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def is_bool(value: Any) -> bool:
    """True or False: a bool, or numpy's (``p < alpha`` on numpy floats gives one)."""
    kind = type(value)
    return isinstance(value, bool) or (
        kind.__module__ == "numpy" and kind.__name__ in ("bool", "bool_")
    )

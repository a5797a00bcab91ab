"""What makes a verifier built in: its arguments are checked when it is made, and the engine
knows the smallest p-value it can reach (to refuse a test that can never pass)."""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any, Concatenate, ParamSpec, TypeVar

from .._engine.errors import CrystallizeUsageError
from .._engine.verifiers import VerifierFactory, verifier
from ._common import MAX_RESAMPLES, check_alternative
from ._power import min_pvalue

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float)


def _check_params(params: Mapping[str, Any], name: str) -> None:
    """Refuse bad arguments of a built-in verifier when it is made, naming the parameter, the
    value given and what it takes (the defaults all pass)."""
    check_alternative(params.get("alternative", "two-sided"), name)
    alpha = params.get("alpha", 0.05)
    if not _is_number(alpha) or not 0 < alpha < 1:
        msg = (
            f"{name}(alpha=...) takes a significance level strictly between 0 and 1, got "
            f"{alpha!r}; write for example {name}(alpha=0.05)"
        )
        raise CrystallizeUsageError(msg)
    if name in ("equivalent", "non_inferior") and not alpha < 0.5:
        msg = (
            f"{name}(alpha=...) takes a level below 0.5 (the gate decides on the "
            f"(1 - 2 alpha) interval), got {alpha!r}; write for example {name}(alpha=0.05)"
        )
        raise CrystallizeUsageError(msg)
    statistic = params.get("statistic", "mean")
    if statistic not in ("mean", "median"):
        msg = f"{name}(statistic=...) takes 'mean' or 'median', got {statistic!r}"
        raise CrystallizeUsageError(msg)
    margin = params.get("margin", 1.0)
    if not _is_number(margin) or not 0 < margin < math.inf:
        msg = (
            f"{name}(margin=...) takes a positive number, finite (in the metric's units, or a "
            f"fraction of the baseline mean with relative=True), got {margin!r}"
        )
        raise CrystallizeUsageError(msg)
    resamples = params.get("n_resamples", 1)
    if isinstance(resamples, bool) or not isinstance(resamples, numbers.Integral) or resamples < 1:
        msg = (
            f"{name}(n_resamples=...) takes a positive int (at most {MAX_RESAMPLES} are "
            f"drawn), got {resamples!r}"
        )
        raise CrystallizeUsageError(msg)
    for flag in ("relative", "higher_is_better"):
        if not isinstance(params.get(flag, False), bool):
            msg = f"{name}({flag}=...) takes True or False, got {params[flag]!r}"
            raise CrystallizeUsageError(msg)
    paired = params.get("paired")
    if paired is not None and not isinstance(paired, bool):
        msg = (
            f"{name}(paired=...) takes True, False or None (pair when the replicates share "
            f"seeds), got {paired!r}"
        )
        raise CrystallizeUsageError(msg)


def built_in(fn: Callable[Concatenate[Any, Any, _P], _R]) -> VerifierFactory[_P, _R]:
    """``@verifier`` for the verifiers of :mod:`stats`, with their argument check and their
    p-value floor set on the factory."""
    factory = verifier(fn)
    factory.check = functools.partial(_check_params, name=factory.name)
    factory.floor = min_pvalue
    return factory

"""What makes a verifier built in: its arguments are checked when it is made, and the engine
knows the smallest p-value it can reach (to refuse a test that can never pass)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, Concatenate, ParamSpec, TypeVar

from .._engine.errors import CrystallizeUsageError
from .._engine.verifiers import VerifierFactory, verifier
from ._common import check_alternative
from ._power import min_pvalue

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _check_params(params: Mapping[str, Any], name: str) -> None:
    """Refuse bad arguments of a built-in verifier when it is made."""
    check_alternative(params.get("alternative", "two-sided"), name)
    alpha = params.get("alpha", 0.05)
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 1:
        msg = f"{name}(alpha=...) takes a number between 0 and 1, got {alpha!r}"
        raise CrystallizeUsageError(msg)
    if params.get("statistic", "mean") not in ("mean", "median"):
        msg = f"{name}(statistic=...) takes 'mean' or 'median', got {params['statistic']!r}"
        raise CrystallizeUsageError(msg)
    margin = params.get("margin", 1.0)
    if isinstance(margin, bool) or not isinstance(margin, int | float) or not margin > 0:
        msg = f"{name}(margin=...) takes a positive number, got {margin!r}"
        raise CrystallizeUsageError(msg)
    resamples = params.get("n_resamples", 1)
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 1:
        msg = f"{name}(n_resamples=...) takes a positive int, got {resamples!r}"
        raise CrystallizeUsageError(msg)


def built_in(fn: Callable[Concatenate[Any, Any, _P], _R]) -> VerifierFactory[_P, _R]:
    """``@verifier`` for the verifiers of :mod:`stats`, with their argument check and their
    p-value floor set on the factory."""
    factory = verifier(fn)
    factory.check = functools.partial(_check_params, name=factory.name)
    factory.floor = min_pvalue
    return factory

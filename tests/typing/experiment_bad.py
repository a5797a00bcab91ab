"""Mistakes ``mypy --strict`` must catch in an experiment file: each marked ``# E: <code>``.

tests/test_typing.py checks that mypy reports exactly the marked lines, each with its code.
Every mistake sits inside a function that nothing calls, so importing this file is harmless.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_crystallize import (
    FrozenContext,
    data_source,
    hypothesis,
    pipeline_step,
    standalone_context,
    stats,
    treatment,
    verifier,
)


@data_source
def fetch_numbers(ctx: FrozenContext) -> list[int]:
    """Return the baseline payload that enters the pipeline."""
    return [0, 0, 0]


@data_source()
def sized_numbers(ctx: FrozenContext, size: int = 3) -> list[int]:
    """As many zeros as ``size`` says."""
    return [0] * size


@pipeline_step()
def add_delta(data: list[int], ctx: FrozenContext, *, delta: float = 0.0) -> list[float]:
    """Inject a configurable delta (supplied by treatments or defaults)."""
    return [x + delta for x in data]


@verifier
def welch_t_test(
    baseline: Mapping[str, Any], treatment: Mapping[str, Any], alpha: float = 0.05
) -> dict[str, float]:
    """A verifier with one parameter, ``alpha``."""
    return {"p_value": 1.0}


def wrong_step_arguments() -> None:
    add_delta(delta="ten")  # E: call-overload
    add_delta(detla=1.0)  # E: call-overload
    add_delta()("not a list", standalone_context())  # E: arg-type


def wrong_data_source_use() -> None:
    total: int = fetch_numbers().fetch(standalone_context())  # E: assignment
    print(fetch_numbers().fetch(standalone_context()) + 1)  # E: operator
    sized_numbers(size="3")  # E: call-overload
    count: int = fetch_numbers  # E: assignment
    print(total, count)


def wrong_verifier_arguments() -> None:
    welch_t_test(alpha="0.05")  # E: arg-type
    welch_t_test(alhpa=0.05)  # E: call-arg
    stats.welch_t_test(alpha="high")  # E: arg-type
    p: str = welch_t_test()({"x": [1.0]}, {"x": [2.0]})["p_value"]  # E: assignment
    print(p)


def wrong_treatments_and_hypotheses() -> None:
    treatment("bad", 5)  # E: call-overload

    @hypothesis(verifier=welch_t_test(), metrics=5)  # E: arg-type
    def bad_metrics(result: dict[str, float]) -> float:
        return result["p_value"]

    @hypothesis(verifier=welch_t_test(), metrics="total")  # E: arg-type
    def ranks_with_a_str(result: dict[str, float]) -> str:
        return "best"


def wrong_decorated_functions() -> None:
    @pipeline_step  # E: arg-type
    def takes_no_data() -> int:
        return 1

    @verifier  # E: arg-type
    def compares_nothing(baseline: Mapping[str, Any]) -> dict[str, float]:
        return {"p_value": 1.0}

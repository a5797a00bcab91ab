"""In a script, ``run()`` gives no verdict on partial data.

A (hypothesis, treatment) whose runs failed (in the treatment or the baseline), whose runs
lack a value of a judged metric, or whose values are not real numbers gets
``results[treatment] == {"error": why}``; its verifier is not called and it joins neither the
ranking nor the family correction. The other treatments are judged as before.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from pytest_crystallize import (
    Experiment,
    Hypothesis,
    ParallelExecution,
    data_source,
    pipeline_step,
    treatment,
)
from pytest_crystallize._engine import judging

pytestmark = pytest.mark.usefixtures("in_tmp_path")

CALLS: list[str] = []


def compare(baseline: Any, treatment: Any) -> dict[str, Any]:
    CALLS.append(f"n={len(baseline['score'])}")
    return {"p_value": 0.04, "significant": True}


@data_source
def start(ctx: Any) -> float:
    return 1.0


@pipeline_step
def noisy(data: float, ctx: Any, *, fail: tuple[tuple[str, int], ...] = ()) -> Any:
    if (ctx["condition"], ctx["replicate"]) in fail:
        msg = f"bad input in replicate {ctx['replicate']}"
        raise ValueError(msg)
    return data, {"score": data + ctx["replicate"] + ctx.get("lift", 0)}


def experiment(fail: tuple[tuple[str, int], ...] = (), **kwargs: Any) -> Experiment:
    return Experiment(
        start(),
        [noisy(fail=fail)],
        name="gate",
        treatments=[treatment("boost", {"lift": 1}), treatment("calm", {"lift": 0})],
        hypotheses=[Hypothesis(compare, metrics="score", name="h")],
        replicates=6,
        **kwargs,
    )


@pytest.fixture(autouse=True)
def _no_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    CALLS.clear()
    # The gate alone: the judge that fills result.verdicts would call the verifiers again.
    monkeypatch.setattr(judging.SLOT, "judge", None)


def test_failed_runs_of_a_treatment_make_its_verdicts_errors() -> None:
    result = experiment(fail=(("boost", 3), ("boost", 1))).run()
    evaluated = result.get_hypothesis("h")
    assert evaluated is not None
    assert evaluated.results["boost"] == {
        "error": "2 of 6 runs of condition 'boost' failed, so no verdict is given on the runs "
        "that succeeded; first failure: replicate 1 of condition 'boost', step 'noisy' "
        "raised ValueError: bad input in replicate 1 (see result.errors)"
    }
    assert evaluated.results["calm"] == {"p_value": 0.04, "significant": True}
    assert CALLS == ["n=6"]  # calm only: the verifier never saw boost's 4 surviving runs
    assert evaluated.ranking == {"best": "calm", "ranked": [("calm", 0.04)]}
    assert evaluated.adjusted == {"calm": 0.04}
    assert evaluated.family_size == 1


def test_a_failed_baseline_run_makes_every_treatment_an_error() -> None:
    result = experiment(fail=(("baseline", 4),)).run()
    evaluated = result.get_hypothesis("h")
    assert evaluated is not None
    message = (
        "1 of 6 runs of condition 'baseline' failed, so no verdict is given on the runs that "
        "succeeded; first failure: replicate 4 of condition 'baseline', step 'noisy' raised "
        "ValueError: bad input in replicate 4 (see result.errors)"
    )
    assert evaluated.results == {"boost": {"error": message}, "calm": {"error": message}}
    assert CALLS == []
    assert evaluated.ranking == {"best": None, "ranked": []}
    assert evaluated.adjusted == {}


def test_the_first_failure_quoted_is_first_in_condition_then_replicate_order() -> None:
    fail = (("boost", 0), ("baseline", 5), ("boost", 2))
    result = experiment(fail=fail, plugins=[ParallelExecution(max_workers=3)]).run()
    evaluated = result.get_hypothesis("h")
    assert evaluated is not None
    assert evaluated.results["boost"] == {
        "error": "1 of 6 runs of condition 'baseline' and 2 of 6 runs of condition 'boost' "
        "failed, so no verdict is given on the runs that succeeded; first failure: replicate "
        "5 of condition 'baseline', step 'noisy' raised ValueError: bad input in replicate 5 "
        "(see result.errors)"
    }
    assert evaluated.results["calm"]["error"].startswith("1 of 6 runs of condition 'baseline' ")


@pipeline_step
def patchy(data: float, ctx: Any) -> Any:
    if ctx["condition"] == "boost" and ctx["replicate"] == 2:
        return data, {"other": 1.0}
    return data, {"score": data + ctx["replicate"], "other": 1.0}


def test_a_replicate_without_a_judged_metric_makes_the_verdict_an_error() -> None:
    result = Experiment(
        start(),
        [patchy()],
        name="gate",
        treatments=[treatment("boost", {}), treatment("calm", {})],
        hypotheses=[Hypothesis(compare, metrics="score", name="h")],
        replicates=4,
    ).run()
    assert result.errors == {}
    evaluated = result.get_hypothesis("h")
    assert evaluated is not None
    assert evaluated.results["boost"] == {
        "error": "replicate 2 of condition 'boost' recorded no value of metric 'score', which "
        "hypothesis 'h' judges, so no verdict is given on the other replicates; record it in "
        "every run (return (data, {'score': value}) or ctx.metrics.add)"
    }
    assert evaluated.results["calm"] == {"p_value": 0.04, "significant": True}
    assert CALLS == ["n=4"]


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("0.5", "'0.5' (str)"),
        (None, "None (NoneType)"),
        (np.array([1.0, 2.0]), "array([1., 2.]) (ndarray)"),
        ([1.0], "[1.0] (list)"),
    ],
)
def test_a_value_that_is_not_a_real_number_makes_the_verdict_an_error(
    value: Any, shown: str
) -> None:
    @pipeline_step
    def odd(data: float, ctx: Any) -> Any:
        if ctx["condition"] == "boost" and ctx["replicate"] == 1:
            return data, {"score": value}
        return data, {"score": data + ctx["replicate"]}

    result = Experiment(
        start(),
        [odd()],
        name="gate",
        treatments=[treatment("boost", {}), treatment("calm", {})],
        hypotheses=[Hypothesis(compare, metrics="score", name="h")],
        replicates=3,
    ).run()
    evaluated = result.get_hypothesis("h")
    assert evaluated is not None
    assert evaluated.results["boost"] == {
        "error": f"metric 'score' of condition 'boost', replicate 1 is {shown}, not a real "
        f"number, so hypothesis 'h' cannot judge it; record one int or float per value (for "
        f"example float(x), or float(x.mean()) for an array)"
    }
    assert evaluated.results["calm"] == {"p_value": 0.04, "significant": True}


def test_numpy_numbers_and_bools_are_real_numbers() -> None:
    @pipeline_step
    def typed(data: float, ctx: Any) -> Any:
        kinds = [np.float64(1.5), np.int64(2), True, np.bool_(False), 3]
        return data, {"score": kinds[ctx["replicate"]]}

    result = Experiment(
        start(),
        [typed()],
        name="gate",
        treatments=[treatment("boost", {})],
        hypotheses=[Hypothesis(compare, metrics="score", name="h")],
        replicates=5,
    ).run()
    evaluated = result.get_hypothesis("h")
    assert evaluated is not None
    assert evaluated.results["boost"] == {"p_value": 0.04, "significant": True}


def test_complete_runs_are_judged_as_before() -> None:
    result = experiment().run()
    evaluated = result.get_hypothesis("h")
    assert evaluated is not None
    assert evaluated.results == {
        "boost": {"p_value": 0.04, "significant": True},
        "calm": {"p_value": 0.04, "significant": True},
    }
    assert evaluated.replicates == {"boost": tuple(range(6)), "calm": tuple(range(6))}
    assert evaluated.adjusted == {"boost": 0.08, "calm": 0.08}  # holm over a family of 2
    assert evaluated.family_size == 2

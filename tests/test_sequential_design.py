"""Sequential designs in scripts: the schedule of looks, the checks of a design, and
``Experiment.run()`` judging look by look (stopping early for efficacy or futility)."""

from __future__ import annotations

from typing import Any

import pytest
from _support import raises_message

from pytest_crystallize import (
    Experiment,
    ExperimentDefinitionError,
    data_source,
    hypothesis,
    pipeline_step,
    stats,
    treatment,
    verifier,
)
from pytest_crystallize._engine.fingerprint import definition_fingerprint
from pytest_crystallize._engine.sequential import SequentialDesign
from pytest_crystallize._report.sequential import ADJUSTED, judge_look
from pytest_crystallize.stats._sequential import efficacy_bounds, nominal_levels

pytestmark = pytest.mark.usefixtures("in_tmp_path")


@data_source
def noise(ctx):
    return float(ctx.rng.normal(0.0, 1.0))


@pipeline_step()
def shift(value, ctx, *, delta=0.0):
    return value + delta, {"score": value + delta}


@pipeline_step()
def constant(value, ctx, *, delta=1.0):
    return value, {"score": delta}


@hypothesis(verifier=stats.welch_t_test(), metrics="score")
def differs(result):
    return result["p_value"]


@verifier
def flag_only(baseline, treatment):
    return {"significant": True}


@verifier
def stated(baseline, treatment):
    """The treatment's (constant) score is the p-value: a test of the family correction."""
    return {"p_value": min(1.0, float(treatment["score"][0]))}


def build(
    deltas: dict[str, float],
    hypotheses: list[Any] | None = None,
    *,
    replicates: int = 12,
    step: Any = shift,
    correction: str = "holm",
    **design: Any,
) -> Experiment:
    return (
        Experiment.builder("seq")
        .datasource(noise())
        .add_step(step())
        .treatments([treatment(name, {"delta": d}) for name, d in deltas.items()])
        .hypotheses(hypotheses or [differs])
        .replicates(replicates)
        .correction(correction)
        .sequential(**{"looks": 3, **design})
        .build()
    )


def test_the_schedule_spreads_the_looks_and_rounds_half_up() -> None:
    assert SequentialDesign(4).schedule(48) == (12, 24, 36, 48)
    assert SequentialDesign(3).schedule(10) == (3, 7, 10)  # 3.33, 6.67 rounded
    assert SequentialDesign(3, min_replicates=5).schedule(20) == (5, 13, 20)  # 12.5 -> 13
    assert SequentialDesign(2).fractions(8) == (0.5, 1.0)
    design = SequentialDesign(3, spending="pocock", futility=False, min_replicates=4)
    assert design.describe() == {
        "looks": 3,
        "spending": "pocock",
        "futility": False,
        "min_replicates": 4,
    }


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"looks": 1},
            "sequential(looks=...) takes an int >= 2 (the last look uses every "
            "replicate), got 1; for a single look drop .sequential(...)",
        ),
        (
            {"looks": True},
            "sequential(looks=...) takes an int >= 2 (the last look uses every "
            "replicate), got True; for a single look drop .sequential(...)",
        ),
        (
            {"looks": 3, "spending": "linear"},
            "sequential(spending=...) takes 'obrien-fleming' "
            "(the default) or 'pocock', got 'linear'",
        ),
        (
            {"looks": 3, "futility": "yes"},
            "sequential(futility=...) takes True or False, got 'yes'",
        ),
        (
            {"looks": 3, "min_replicates": 1},
            "sequential(min_replicates=...) takes an int >= 2 "
            "(the replicates per condition at the first look) or None, got 1",
        ),
    ],
)
def test_a_bad_design_option_is_refused_where_it_is_written(
    options: dict[str, Any], message: str
) -> None:
    builder = Experiment.builder("seq")
    with raises_message(ExperimentDefinitionError, message):
        builder.sequential(**options)


def test_a_design_that_does_not_fit_the_replicates_is_refused() -> None:
    with raises_message(
        ExperimentDefinitionError,
        "experiment 'seq': sequential(looks=4) needs at least one replicate per look, but the "
        "experiment has 3 replicates; use fewer looks or more replicates",
    ):
        build({"boost": 5.0}, replicates=3, looks=4)
    with raises_message(
        ExperimentDefinitionError,
        "experiment 'seq': sequential(min_replicates=9) leaves no room for 2 more looks within "
        "10 replicates; use min_replicates <= 8, fewer looks or more replicates",
    ):
        build({"boost": 5.0}, replicates=10, min_replicates=9)
    with raises_message(ExperimentDefinitionError, "but the experiment has 2 replicates"):
        build({"boost": 5.0}).run(replicates=2)  # an override is checked as a definition


def test_a_verifier_without_a_p_value_is_refused_at_build_time() -> None:
    @hypothesis(verifier=flag_only(), metrics="score")
    def flagged(result):
        return 0.0

    with raises_message(
        ExperimentDefinitionError,
        "experiment 'seq': hypothesis 'flagged' cannot be judged sequentially: its verifier "
        "'flag_only' gives no p-value (on synthetic samples it returned {'significant': "
        "True}), and a look is decided by comparing the p-value with the look's nominal "
        "threshold, which a bare 'significant'/'passed' at the verifier's own alpha cannot "
        "be; return 'p_value' too, use a built-in verifier, or drop .sequential(...)",
    ):
        build({"boost": 5.0}, [flagged])


def test_a_strong_effect_stops_at_the_first_look_with_adjusted_numbers() -> None:
    experiment = build({"boost": 5.0})
    result = experiment.run()
    assert result.sequential == {
        "looks": 3,
        "schedule": [4, 8, 12],
        "stopped_at_look": 1,
        "replicates_used": 4,
    }
    assert result.replicates == 4
    assert sorted({r.replicate for r in result.runs}) == [0, 1, 2, 3]  # the rest never ran
    (verdict,) = result.verdicts
    level = nominal_levels(efficacy_bounds([4 / 12, 8 / 12, 1.0]))[0]
    assert (verdict.outcome, verdict.look, verdict.looks) == ("passed", 1, 3)
    assert (verdict.n_baseline, verdict.n_treatment) == (4, 4)
    assert verdict.boundary == pytest.approx(level)
    assert (verdict.pvalue or 1.0) < 0.05
    low, high, difference = verdict.ci_low, verdict.ci_high, verdict.difference
    assert low is not None
    assert high is not None
    assert difference is not None
    assert 0 < low < difference < high
    assert (verdict.mde, verdict.output) == (None, None)  # no fixed-sample numbers
    assert verdict.message.startswith(
        "Welch t-test: crossed the obrien-fleming efficacy boundary at look 1 of 3 "
        "(4 of 12 replicates per condition), nominal level "
    )
    assert f"({ADJUSTED})" in verdict.message
    data = verdict.to_json()
    assert (data["look"], data["looks"], data["boundary"]) == (1, 3, verdict.boundary)
    assert ("look", 1) in verdict.properties()
    assert result.to_dict()["sequential"]["stopped_at_look"] == 1
    again = experiment.run()  # deterministic: the same verdicts, word for word
    assert [v.to_json() for v in again.verdicts] == [v.to_json() for v in result.verdicts]


def test_an_aa_experiment_stops_for_futility_unless_futility_is_off() -> None:
    # The treatment reproduces the baseline (the same seeds): its estimate points nowhere,
    # a one-sided p-value of 0.5 in the better direction. At look 1 of 3 that is not futile
    # yet (the predictive power is still above 2.5%), at look 2 it is.
    result = build({"same": 0.0}).run()
    assert (result.sequential or {}).get("stopped_at_look") == 2
    (verdict,) = result.verdicts
    assert (verdict.outcome, verdict.look, verdict.n_baseline) == ("failed", 2, 8)
    assert "Welch t-test stopped for futility\n  look 2 of 3 (8 of 12" in verdict.message
    assert ADJUSTED in verdict.message

    result = build({"same": 0.0}, futility=False).run()
    assert result.sequential == {
        "looks": 3,
        "schedule": [4, 8, 12],
        "stopped_at_look": 3,
        "replicates_used": 12,
    }
    (verdict,) = result.verdicts
    assert (verdict.outcome, verdict.look, verdict.n_baseline) == ("failed", 3, 12)
    assert "did not cross the efficacy boundary by the last look" in verdict.message


def test_holm_applies_at_each_look_on_the_nominal_levels() -> None:
    # Look 1 of 3 at 4 of 12 replicates: level 0.00069 (Holm's first step: half of it);
    # look 2 at 8: level 0.0161. The verifier returns each treatment's score as its p-value.
    # The scores are below the baseline's (1.0): a two-sided test pointing the wrong way
    # (lower), which futility would stop at look 1; without futility, looks go on.
    hyp = hypothesis(verifier=stated(), metrics="score")(lambda result: 0.0)

    def looks(deltas: dict[str, float], correction: str) -> list[tuple[str, int | None]]:
        made = build(deltas, [hyp], step=constant, correction=correction, futility=False)
        result = made.run()
        return [(v.outcome, v.look) for v in result.verdicts]

    close = {"a": 0.0004, "b": 0.0005}  # each below the level, neither below half of it
    assert looks(close, "none") == [("passed", 1), ("passed", 1)]
    assert looks(close, "holm") == [("passed", 2), ("passed", 2)]
    apart = {"a": 0.0002, "b": 0.0006}  # a below half the level, then b below the level
    assert looks(apart, "holm") == [("passed", 1), ("passed", 1)]  # step-down
    assert looks(apart, "bonferroni") == [("passed", 1), ("passed", 2)]

    experiment = build(close, [hyp], step=constant, futility=False)
    decision = judge_look("seq", experiment, experiment.run().runs, ["a", "b"], "holm", 1)
    assert not decision.stop
    assert decision.reason == "look 1 of 3: 0 of 2 comparisons crossed; the design continues"
    assert [v.outcome for v in decision.verdicts] == ["inconclusive", "inconclusive"]
    assert decision.verdicts[0].message == (
        "undecided at look 1 of 3 (4 of 12 replicates per condition): this comparison has "
        "not crossed its boundary; the design continues"
    )


def test_a_two_sided_test_is_futile_in_its_metrics_better_direction() -> None:
    # Scores of 0.0004 and 0.0005 against the baseline's 1.0, their p-values: neither
    # crosses look 1 under Holm, and both point lower. Higher is better unless said:
    # futile (a one-sided p-value of about 1 in the better direction, above 0.67); with
    # lower better, the same estimates point the right way and the design continues.
    hyp = hypothesis(verifier=stated(), metrics="score")(lambda result: 0.0)
    runs = build({"a": 0.0004, "b": 0.0005}, [hyp], step=constant, futility=False).run().runs
    experiment = build({"a": 0.0004, "b": 0.0005}, [hyp], step=constant)
    decision = judge_look("seq", experiment, runs, ["a", "b"], "holm", 1)
    assert decision.stop
    assert decision.reason == (
        "look 1 of 3: stopped for futility (every comparison that has not crossed has less "
        "than a 2.5% chance to cross by the last look; a two-sided test in its metric's "
        "better direction: score: higher is better (assumed; if lower is, say so with "
        "--crystallize-lower-is-better score or the ini setting crystallize_lower_is_better))"
    )
    assert [(v.outcome, v.look) for v in decision.verdicts] == [("failed", 1), ("failed", 1)]
    lower = judge_look("seq", experiment, runs, ["a", "b"], "holm", 1, lower=["score"])
    assert not lower.stop
    assert lower.reason == "look 1 of 3: 0 of 2 comparisons crossed; the design continues"


def test_the_definition_fingerprint_covers_the_design() -> None:
    three, four = build({"boost": 5.0}), build({"boost": 5.0}, looks=4)
    assert definition_fingerprint(three) != definition_fingerprint(four)
    assert definition_fingerprint(three) == definition_fingerprint(build({"boost": 5.0}))


def test_every_built_in_verifier_and_gate_is_judged_sequentially() -> None:
    built_ins = [
        stats.auto(),
        stats.welch_t_test(),
        stats.paired_t_test(alternative="greater"),
        stats.mann_whitney(),
        stats.wilcoxon(),
        stats.permutation_test(),
        stats.bootstrap_ci(),
        stats.non_inferior(margin=1.0),
        stats.equivalent(margin=10.0),
    ]
    for made in built_ins:
        hyp = hypothesis(verifier=made, metrics="score")(lambda result: 0.0)
        (verdict,) = build({"boost": 5.0}, [hyp], replicates=15).run().verdicts
        assert (verdict.outcome, verdict.looks) == ("passed", 3), (made, verdict.message)
        assert ADJUSTED in verdict.message
        assert verdict.pvalue is not None
        assert verdict.boundary is not None

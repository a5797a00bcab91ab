"""Comparing a run with a saved baseline: one verdict per metric of the baseline condition.

A comparison pairs the replicates when their seeds match, else compares independent samples.
A gate (``--crystallize-compare-fail METRIC:-MARGIN``) makes it a non-inferiority test that
passes or fails; without one it never fails and says ``unchanged``, ``improved`` or
``regressed`` (significant at the verifier's alpha, by the metric's direction). A baseline saved
from another definition (see :func:`definition_fingerprint`) is flagged stale; changed code
alone is reported as information. An experiment the baseline does not hold gets one verdict
saying so (skipped, or an error with ``crystallize_compare_missing = fail``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._engine.context import BASELINE_CONDITION
from .._engine.experiment import Experiment
from .._engine.fingerprint import code_prints, definition_fingerprint
from .._engine.hypotheses import Hypothesis, Samples
from .._engine.numbers import number
from .._engine.results import ConditionMetrics, build_metrics
from .._engine.runs import RunResult
from .._engine.verdict import Verdict
from .baselines import saved_number

DEFINITION = (
    "data source, steps' names, order or parameters, initial context, conditions, replicates, "
    "seed, hypotheses or upstream experiments"
)


@dataclass(frozen=True)
class Comparing:
    """What the session compares with: the baseline's name and how to judge the comparison."""

    label: str
    gates: Mapping[str, tuple[float, bool, bool]] = field(default_factory=dict)
    lower_is_better: Collection[str] = ()
    missing: str = "skip"  # "skip" or "fail": an experiment the baseline does not hold

    @property
    def hypothesis(self) -> str:
        return f"vs-{self.label}"

    def verdict(self, name: str, metric: str, outcome: str, message: str) -> Verdict:
        """A comparison verdict that carries no numbers (an error, a skip)."""
        return Verdict(
            name, self.hypothesis, metric, outcome, message, condition=BASELINE_CONDITION
        )

    def missing_verdict(self, name: str) -> Verdict:
        """The one verdict of an experiment the baseline does not hold (yet)."""
        message = (
            f"no baseline {self.label!r} yet for {name}: make one with --crystallize-save "
            f"{self.label} (on the commit to compare with)"
        )
        outcome = "error" if self.missing == "fail" else "skipped"
        return self.verdict(name, BASELINE_CONDITION, outcome, message)


def compare(
    name: str,
    experiment: Experiment,
    runs: Sequence[RunResult],
    stored: Mapping[str, Any],
    comparing: Comparing,
) -> list[Verdict]:
    """One verdict per metric of the baseline condition: now vs the stored baseline."""
    baseline_runs = [r for r in runs if r.condition == BASELINE_CONDITION]
    current = build_metrics(baseline_runs, [BASELINE_CONDITION], experiment.replicates)[
        BASELINE_CONDITION
    ]
    then = stored["conditions"].get(BASELINE_CONDITION, {"seeds": [], "metrics": {}})
    notes = _notes(name, experiment, stored, comparing.label)
    return [
        _compare_metric(name, experiment, metric, current, then, comparing, notes)
        for metric in sorted(set(current.metrics) & set(then["metrics"]))
    ]


def _notes(name: str, experiment: Experiment, stored: Mapping[str, Any], label: str) -> list[str]:
    notes = []
    if stored.get("definition") != definition_fingerprint(experiment):
        notes.append(
            f"stale baseline: {label!r} was saved from a different definition of {name!r} "
            f"({DEFINITION} changed since); save it again to compare like with like"
        )
    saved_code = stored.get("code") or {}
    changed = [
        part
        for part, digest in code_prints(experiment).items()
        if part in saved_code and saved_code[part] != digest
    ]
    if changed:
        steps = "step" if len(changed) == 1 else "steps"
        notes.append(
            f"code changed since {label!r} in {len(changed)} {steps} ({', '.join(changed)})"
        )
    return notes


def _samples(
    values: Sequence[Any], seeds: Sequence[int], rows: Sequence[int], metric: str
) -> Samples:
    made = Samples({metric: [values[i] for i in rows]})
    made.seeds = tuple(seeds[i] for i in rows)
    return made


def _judges(hypothesis: Hypothesis, metric: str) -> bool:
    return hypothesis.groups is None or any(metric in group for group in hypothesis.groups)


def direction(experiment: Experiment, metric: str, lower: Collection[str]) -> tuple[bool, str]:
    """Whether higher is better for ``metric``, and the words saying why.

    Lower is better when the setting ``crystallize_lower_is_better`` lists the metric or a
    hypothesis judging it says so (``higher_is_better=False`` or ``alternative="less"``);
    higher when one says that (``higher_is_better=True`` or ``alternative="greater"``);
    otherwise higher is better, assumed.
    """
    if metric in lower:
        return False, "lower is better (crystallize_lower_is_better)"
    said = []
    for hyp in experiment.hypotheses:
        params = getattr(hyp.verifier, "params", None)
        if _judges(hyp, metric) and isinstance(params, Mapping):
            if params.get("higher_is_better") is False or params.get("alternative") == "less":
                return False, f"lower is better (hypothesis {hyp.name!r})"
            if params.get("higher_is_better") is True or params.get("alternative") == "greater":
                said.append(hyp.name)
    if said:
        return True, f"higher is better (hypothesis {said[0]!r})"
    return True, (
        f"higher is better (assumed; if lower is, say so with --crystallize-lower-is-better "
        f"{metric} or the ini setting crystallize_lower_is_better)"
    )


def _compare_metric(
    name: str,
    experiment: Experiment,
    metric: str,
    current: ConditionMetrics,
    then: Mapping[str, Any],
    comparing: Comparing,
    notes: list[str],
) -> Verdict:
    from .. import stats  # lazy: scipy costs seconds; only --crystallize-compare needs it

    now_values, old_values = current.metrics[metric], then["metrics"][metric]
    old_seeds = then["seeds"]
    now_rows = [i for i, v in enumerate(now_values) if saved_number(v) is not None]
    old_rows = [i for i, v in enumerate(old_values) if saved_number(v) is not None]
    rows = [i for i in now_rows if i in old_rows and i < len(old_seeds)]
    if rows and len(rows) == len(now_rows) == len(old_rows):
        # the same replicates: the verifier pairs them where their seeds match
        before = _samples(old_values, old_seeds, rows, metric)
        after = _samples(now_values, current.seeds, rows, metric)
    else:  # other replicates: independent samples
        before = Samples({metric: [old_values[i] for i in old_rows]})
        after = Samples({metric: [now_values[i] for i in now_rows]})
    gate = comparing.gates.get(metric)
    word = said = ""
    if gate is not None:
        margin, relative, higher = gate
        result = stats.non_inferior(margin=margin, relative=relative, higher_is_better=higher)(
            before, after
        )
        outcome = result.outcome
    else:
        test = (
            stats.paired_t_test
            if before.seeds and before.seeds == after.seeds
            else stats.welch_t_test
        )
        result = test()(before, after)
        outcome = "passed"  # without a gate a comparison never fails: it says what changed
        higher, said = direction(experiment, metric, comparing.lower_is_better)
        if result.outcome != "passed":  # not significant at the verifier's alpha
            word = "unchanged"
        else:
            word = "improved" if (result.difference > 0) == higher else "regressed"
    shown = result.as_dict()  # no difference or interval where none was estimated
    change, low, high = shown["difference"], shown["ci_low"], shown["ci_high"]
    interval = f" [{number(low, sign=True)}, {number(high, sign=True)}]" if low is not None else ""
    estimate = (
        f"change {number(change, sign=True)}{interval}"
        if change is not None
        else f"means {number(result.mean_treatment)} now vs {number(result.mean_baseline)} saved"
    )
    counts = f"n={result.n_treatment} now vs {result.n_baseline} saved"
    head = f"{metric!r} now vs baseline {comparing.label!r}"
    if gate is not None:
        message = (
            f"{head}: {result.test}: {result.reason}; {estimate}, "
            f"p={number(result.pvalue, 3)}, {counts}"
        )
    else:
        message = f"{head}: {word}: {estimate}, {result.test}: {result.reason}, {counts}"
        if word != "unchanged":  # the direction decided the word: say where it came from
            message += f"; {said}"
    message += "".join(f"\n  note: {n}" for n in notes)
    return Verdict(
        experiment=name,
        hypothesis=comparing.hypothesis,
        treatment=metric,
        outcome=outcome,
        message=message,
        verifier=result.test,
        metrics=(metric,),
        pvalue=result.pvalue,
        alpha=result.alpha,
        n_baseline=result.n_baseline,
        n_treatment=result.n_treatment,
        mean_baseline=result.mean_baseline,
        mean_treatment=result.mean_treatment,
        difference=change,
        ci_low=low,
        ci_high=high,
        effect_size=result.effect_size,
        effect_size_name=result.effect_size_name,
        mde=result.mde,
        output=result.as_dict(),
        notes=tuple(notes),
        condition=BASELINE_CONDITION,
        comparison=word,
    )

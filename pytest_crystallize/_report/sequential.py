"""Judging a sequential design at one of its looks: stop now, or run the next look.

At look ``k`` (``schedule[k - 1]`` replicates per condition) every (hypothesis, treatment) is
evaluated by :func:`.judge.judge` itself, on the replicates up to the look, with each verifier
deciding at the look's nominal level (the efficacy bound of ``stats._sequential`` turned into a
p-value threshold, applied to the test's own p-value, so each test keeps its own distribution).

* Levels. A two-sided test spends its ``alpha`` two-sided: its level at look ``k`` is
  ``nominal_levels(bounds)[k - 1]``. A one-sided test (``alternative="greater"``/``"less"``)
  and the gates (``non_inferior``, ``equivalent``: one-sided tests against their margin) spend
  ``2 * alpha`` two-sided and decide at half that level, the one-sided tail of the same bound.
* Crossing. A comparison crosses when its p-value is at most its level after the family
  correction at the look: Holm's step-down over the whole family of the definition (a
  comparison not run counts as p = 1; one that crossed at an earlier look counts as crossed,
  p = 0, as a rejection is final), weighted by each comparison's level when they differ;
  ``"bonferroni"`` divides the level by the family's size, ``"none"`` uses it as is, and
  ``"bh"`` (not defined for sequential designs) uses Holm. A gate must also pass at the level.
  With several metric groups, the deciding group's p-value stands for the comparison.
* Stopping. Stop when every comparison has crossed; at an interim look with ``futility=True``
  when every comparison that has not crossed is futile (non-binding: the bounds ignore it):
  its p-value is above the look's ``futility_levels``, where the predictive power of the
  last look (the chance of crossing it, averaged over the effects the data so far allow)
  falls below 2.5%: early in the design an estimate clearly pointing the wrong way (for a
  gate: beyond its margin), late also one pointing weakly the right way. The way is a
  one-sided test's own; a two-sided test's is its metric's better direction
  (:func:`.._store.compare.direction`: lower when ``crystallize_lower_is_better`` lists it,
  ``lower``, or a hypothesis on it says ``alternative="less"``/``higher_is_better=False``,
  else higher, assumed and said in the reason), read from the sign of its difference; a
  two-sided comparison without a difference or of several metrics, by ``|z|`` alone. A
  two-sided test can still cross the other way (a significant change for the worse) at
  any look before it is futile. At the last look everything is decided. A look whose runs
  failed or cannot be judged stops with the judge's error verdicts. A design with no
  comparison runs to its last look.
* Numbers. A decided verdict carries the look it was decided at, the number of looks, the
  replicates used (``n_baseline``/``n_treatment``), the nominal level (``boundary``), and the
  p-value and 95% CI of the difference adjusted for the design by the stage-wise ordering
  (:func:`~pytest_crystallize.stats._sequential.stagewise_pvalue` and ``stagewise_interval``),
  computed from the z equivalent to the test's p-value and the standard error it implies;
  the fixed-sample p-value, CI and detectable change are never shown.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .._engine.correction import adjust_pvalues
from .._engine.errors import CrystallizeUsageError
from .._engine.experiment import Experiment
from .._engine.hypotheses import Hypothesis, Samples, as_mapping, output_pvalue, with_alpha
from .._engine.numbers import number
from .._engine.runs import RunResult
from .._engine.sequential import SequentialDesign
from .._engine.verdict import Verdict
from .._engine.verifiers import VerifierCallable
from .._store.compare import direction
from ..stats._sequential import holm_at_look
from .judge import judge
from .stagewise import Adjusted, LookPlan, is_futile, look_plan, stagewise

ADJUSTED = "adjusted for the sequential design (stage-wise ordering)"


@dataclass(frozen=True, slots=True)
class LookDecision:
    """The decision at a look: ``stop`` the experiment (its ``verdicts`` are final) or run
    the next look (its ``verdicts`` are interim: ``inconclusive``, without numbers)."""

    stop: bool
    reason: str
    verdicts: list[Verdict]


class _AtLevel:
    """A user's verifier judged at a look: its output's ``significant`` (and ``passed``) is
    whether its p-value is at most the look's level, whatever alpha it decided at itself."""

    def __init__(self, verifier: Any, level: float, name: str) -> None:
        self.verifier, self.level, self.name = verifier, level, name

    def __call__(self, baseline: Samples, treatment: Samples) -> Any:
        output = as_mapping(self.verifier(baseline, treatment))
        p = output_pvalue(output)
        if p is None:
            return output  # the judge says why it cannot decide
        hit = p <= self.level
        return {**output, "significant": hit, "passed": hit, "alpha": self.level}


def _at_level(hyp: Hypothesis, level: float) -> Hypothesis:
    """``hyp`` with its verifier deciding at ``level`` (also when given its own alpha)."""
    verifier = hyp.verifier
    if getattr(getattr(verifier, "factory", None), "floor", None) is None:  # a user's
        wrapped = _AtLevel(verifier, level, hyp.verifier_name)
        return Hypothesis(wrapped, hyp.metrics_spec, hyp.ranker, hyp.name)
    if isinstance(verifier, VerifierCallable) and "alpha" in verifier.params:
        bound = verifier.factory(**{**verifier.params, "alpha": level})
        return Hypothesis(bound, hyp.metrics_spec, hyp.ranker, hyp.name)
    return with_alpha(hyp, level)


def _judged_at(
    name: str,
    experiment: Experiment,
    runs: Sequence[RunResult],
    treatments: Sequence[str],
    plans: Sequence[LookPlan],
    look: int,
    used: int,
) -> list[Verdict]:
    """The judge's verdicts on the replicates up to ``look``, each verifier at its level,
    uncorrected (the family correction at the look is applied by the caller)."""
    exp = copy.copy(experiment)
    exp.replicates = used
    exp.quick_look = False
    exp.correction = "none"
    exp.sequential = None
    exp.hypotheses = [_at_level(p.hyp, p.levels[look - 1]) for p in plans]
    kept = [r for r in runs if r.replicate < used]
    return judge(name, exp, kept, treatments, "none")


def _crossing(pvalues: Sequence[float], levels: Sequence[float], correction: str) -> list[bool]:
    """Which comparisons cross at one look: each p-value at its own level, corrected."""
    m = len(pvalues)
    if correction == "none":
        return [p <= lv for p, lv in zip(pvalues, levels, strict=True)]
    if correction == "bonferroni":
        return [p <= lv / m for p, lv in zip(pvalues, levels, strict=True)]
    common = min(levels)  # Holm weighted by level: p * common / level against common
    scaled = [min(1.0, p * common / lv) for p, lv in zip(pvalues, levels, strict=True)]
    return holm_at_look(scaled, common)


def _better(
    experiment: Experiment, plan: LookPlan, verdict: Verdict, lower: Collection[str]
) -> tuple[bool, str] | None:
    """Whether higher is better for a two-sided comparison's metric, and why
    (:func:`.._store.compare.direction`), or None: a one-sided test or a gate (their side is
    their direction), or a comparison of several metrics."""
    if plan.side != "two-sided" or len(verdict.metrics) != 1:
        return None
    return direction(experiment, verdict.metrics[0], lower)


def _numbers(v: Verdict, adjusted: Adjusted, look: int, looks: int, used: int, n: int) -> str:
    text = (
        f"look {look} of {looks} ({used} of {n} replicates per condition), nominal level "
        f"{number(v.boundary)}: p={number(adjusted.pvalue)}"
    )
    if v.difference is not None:
        text += f", difference {number(v.difference)}"
        if adjusted.ci_low is not None and adjusted.ci_high is not None:
            text += f" [{number(adjusted.ci_low)}, {number(adjusted.ci_high)}]"
    return (
        f"{text} ({ADJUSTED}), alpha={number(v.alpha)}, means {number(v.mean_baseline)} "
        f"vs {number(v.mean_treatment)}"
    )


def _decided(
    verdict: Verdict,
    plan: LookPlan,
    design: SequentialDesign,
    schedule: Sequence[int],
    look: int,
    why: str,
) -> Verdict:
    """``verdict`` (the judge's at ``look``) as the design decides it: outcome ``passed``
    when ``why`` is ``"crossed"``, else failed (a gate: its outcome at the look)."""
    n, looks = schedule[-1], len(schedule)
    fractions = [s / n for s in schedule]
    adjusted = stagewise(plan, verdict, fractions, look)
    outcome = "passed" if why == "crossed" else "failed"
    if why != "crossed" and plan.gate and verdict.outcome == "inconclusive":
        outcome = "inconclusive"
    base = replace(verdict, alpha=plan.alpha, boundary=plan.levels[look - 1])
    numbers = _numbers(base, adjusted, look, looks, schedule[look - 1], n)
    test = verdict.verifier
    if outcome == "passed":
        message = f"{test}: crossed the {design.spending} efficacy boundary at {numbers}"
    else:
        said = {
            "futile": "stopped for futility",
            "last": "did not cross the efficacy boundary by the last look",
        }[why]
        on = ", ".join(repr(m) for m in verdict.metrics[:1])
        message = (
            f"hypothesis {verdict.hypothesis!r}, treatment {verdict.treatment!r} vs baseline "
            f"on {on}: {test} {said}\n  {numbers}"
        )
    message += "".join(f"\n  note: {note}" for note in verdict.notes)
    return replace(
        base,
        outcome=outcome,
        message=message,
        pvalue=adjusted.pvalue,
        pvalue_adjusted=None,
        ci_low=adjusted.ci_low,
        ci_high=adjusted.ci_high,
        mde=None,
        output=None,
        look=look,
        looks=looks,
    )


def _interim(verdict: Verdict, crossed: bool, look: int, schedule: Sequence[int]) -> Verdict:
    looks, used = len(schedule), schedule[look - 1]
    state = "crossed its efficacy boundary" if crossed else "has not crossed its boundary"
    message = (
        f"undecided at look {look} of {looks} ({used} of {schedule[-1]} replicates per "
        f"condition): this comparison {state}; the design continues"
    )
    return replace(
        verdict,
        outcome="inconclusive",
        message=message,
        pvalue=None,
        pvalue_adjusted=None,
        ci_low=None,
        ci_high=None,
        mde=None,
        output=None,
        look=look,
        looks=looks,
    )


def _halted(verdicts: Sequence[Verdict], look: int, looks: int) -> list[Verdict]:
    """The verdicts of a look that cannot be judged: the judge's errors, and errors for the
    comparisons it could judge (no verdict is given while another cannot be)."""
    broken = next(v for v in verdicts if v.outcome in ("error", "skipped"))
    out = []
    for v in verdicts:
        if v.outcome not in ("error", "skipped"):
            message = (
                f"not decided: look {look} of {looks} could not be judged, as hypothesis "
                f"{broken.hypothesis!r}, treatment {broken.treatment!r} gave no verdict "
                f"({broken.message.splitlines()[0]})"
            )
            v = Verdict(v.experiment, v.hypothesis, v.treatment, "error", message, v.verifier)
        out.append(replace(v, look=look, looks=looks))
    return out


def design_plans(experiment: Experiment) -> list[LookPlan]:
    """The look plan (bounds, levels, futility) of each hypothesis of ``experiment``, whose
    design must be sequential; the bounds are computed once per design and alpha."""
    design = experiment.sequential
    assert design is not None  # the callers check
    schedule = design.schedule(experiment.replicates)
    fractions = [s / schedule[-1] for s in schedule]
    return [look_plan(hyp, fractions, design.spending) for hyp in experiment.hypotheses]


def judge_look(
    name: str,
    experiment: Experiment,
    runs: Sequence[RunResult],
    treatments: Sequence[str],
    correction: str,
    look: int,
    lower: Collection[str] = (),
) -> LookDecision:
    """The decision at ``look`` (1-based) of ``experiment``'s sequential design, from the
    ``runs`` available (only the replicates before ``schedule[look - 1]`` are used): every
    (hypothesis, treatment) of ``treatments``, named after ``name``, with the family
    corrected by ``experiment.correction or correction``; ``lower``: the metrics for which
    lower is better (the setting ``crystallize_lower_is_better``). The looks before it are
    judged again from the same runs, so the decision depends on the runs alone (see the
    module)."""
    design = experiment.sequential
    if design is None:
        msg = f"experiment {name!r} has no sequential design; judge it with judge(...)"
        raise CrystallizeUsageError(msg)
    schedule = design.schedule(experiment.replicates)
    looks = len(schedule)
    if isinstance(look, bool) or not isinstance(look, int) or not 1 <= look <= looks:
        msg = f"experiment {name!r}: look must be 1..{looks} (1-based), got {look!r}"
        raise CrystallizeUsageError(msg)
    plans = design_plans(experiment)
    method = experiment.correction or correction
    width = len(treatments)
    if not plans or not width:
        last = look == looks
        return LookDecision(last, f"look {look} of {looks}: nothing to judge", [])
    absent = len([t for t in experiment.treatments if t.name not in treatments])
    crossed: dict[int, tuple[int, Verdict]] = {}
    verdicts: list[Verdict] = []
    for j in range(1, look + 1):
        verdicts = _judged_at(name, experiment, runs, treatments, plans, j, schedule[j - 1])
        if any(v.outcome in ("error", "skipped") for v in verdicts):
            reason = f"look {j} of {looks}: a comparison could not be judged"
            return LookDecision(True, reason, _halted(verdicts, j, looks))
        levels = [plans[i // width].levels[j - 1] for i in range(len(verdicts))]
        levels += [p.levels[j - 1] for p in plans for _ in range(absent)]
        pvalues = [
            0.0 if i in crossed else (1.0 if v.pvalue is None else v.pvalue)
            for i, v in enumerate(verdicts)
        ] + [1.0] * (absent * len(plans))
        for i, hit in enumerate(_crossing(pvalues, levels, method)[: len(verdicts)]):
            v = verdicts[i]
            gate_ok = not plans[i // width].gate or v.outcome == "passed"
            if hit and i not in crossed and v.pvalue is not None and gate_ok:
                crossed[i] = (j, v)
        pending = [i for i in range(len(verdicts)) if i not in crossed]
        if not pending:
            why, reason = "last", f"look {j} of {looks}: every comparison crossed its boundary"
        elif j < looks and design.futility:
            judged = [(plans[i // width], verdicts[i]) for i in pending]
            futile = _futility(experiment, judged, j, looks, lower)
            if futile is None:
                continue
            why, reason = "futile", futile
        elif j == looks:
            why, reason = "last", f"look {j} of {looks}: the last look decides every comparison"
        else:
            continue
        decided = _final(verdicts, crossed, plans, why, design, schedule, j, method, len(levels))
        return LookDecision(True, reason, decided)
    reason = f"look {look} of {looks}: {len(crossed)} of {len(verdicts)} comparisons crossed"
    interim = [_interim(v, i in crossed, look, schedule) for i, v in enumerate(verdicts)]
    return LookDecision(False, reason + "; the design continues", interim)


def _futility(
    experiment: Experiment,
    pending: Sequence[tuple[LookPlan, Verdict]],
    look: int,
    looks: int,
    lower: Collection[str],
) -> str | None:
    """The reason to stop at ``look`` when every comparison that has not crossed is futile,
    naming the better direction each two-sided test's metric was read in; else None."""
    said: dict[str, str] = {}
    for plan, verdict in pending:
        better = _better(experiment, plan, verdict, lower)
        if not is_futile(plan, verdict, look, better):
            return None
        if better is not None:
            said[verdict.metrics[0]] = better[1]
    reason = (
        f"look {look} of {looks}: stopped for futility (every comparison that has not "
        f"crossed has less than a 2.5% chance to cross by the last look"
    )
    if said:
        words = "; ".join(f"{metric}: {why}" for metric, why in sorted(said.items()))
        reason += f"; a two-sided test in its metric's better direction: {words}"
    return reason + ")"


def _final(
    verdicts: Sequence[Verdict],
    crossed: dict[int, tuple[int, Verdict]],
    plans: Sequence[LookPlan],
    why: str,
    design: SequentialDesign,
    schedule: Sequence[int],
    look: int,
    method: str,
    family: int,
) -> list[Verdict]:
    """The decided verdicts when the design stops at ``look``: each crossed comparison as of
    the look it crossed, the others as of this one; the stage-wise p-values are adjusted
    over the ``family`` (its size) with ``method`` when it holds several comparisons."""
    width = len(verdicts) // len(plans)
    out = []
    for i, v in enumerate(verdicts):
        plan = plans[i // width]
        if i in crossed:
            at, judged = crossed[i]
            out.append(_decided(judged, plan, design, schedule, at, "crossed"))
        else:
            out.append(_decided(v, plan, design, schedule, look, why))
    if family > 1 and method != "none":
        pvalues = [1.0 if v.pvalue is None else v.pvalue for v in out]
        adjusted = adjust_pvalues(pvalues + [1.0] * (family - len(out)), method)
        out = [
            v if v.pvalue is None else replace(v, pvalue_adjusted=a, correction=method)
            for v, a in zip(out, adjusted, strict=False)
        ]
    return out

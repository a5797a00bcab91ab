"""@hypothesis and the evaluation of hypotheses on an experiment's metrics.

Verifiers, which hypotheses apply, are made by ``@verifier`` (:mod:`.verifiers`).
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, TypeAlias, cast

from .correction import adjust_pvalues
from .errors import CrystallizeUsageError, HypothesisError, MissingMetricError
from .numbers import is_bool
from .results import ConditionMetrics, HypothesisResult
from .verifiers import SupportsAsDict, VerifierFactory
from .verifiers import with_alpha as _verifier_with_alpha


class Samples(dict[str, list[Any]]):
    """What a verifier receives per condition: ``{metric: [value per replicate]}``, plus the
    replicates' ``seeds`` (equal in both conditions when the replicates pair)."""

    seeds: tuple[int, ...] = ()


VerifierOutput: TypeAlias = Mapping[str, Any] | SupportsAsDict
Verifier: TypeAlias = Callable[[Samples, Samples], VerifierOutput]
MetricsSpec: TypeAlias = str | Sequence[str] | Sequence[Sequence[str]] | None
Ranker: TypeAlias = Callable[[Any], float]


def rank_by_p_value(result: Any) -> float:
    """The default ranker: the p-value (the largest over several metric groups)."""
    if isinstance(result, list):
        return max((rank_by_p_value(r) for r in result), default=1.0)
    p = output_pvalue(result)
    return 1.0 if p is None else p  # no valid p-value ranks last


def _parse_metrics(spec: Any) -> tuple[tuple[tuple[str, ...], ...] | None, bool]:
    if spec is None:
        return None, False
    if isinstance(spec, str):
        return ((spec,),), False
    if isinstance(spec, Sequence) and spec and all(isinstance(m, str) for m in spec):
        return (tuple(spec),), False
    if (
        isinstance(spec, Sequence)
        and spec
        and all(
            isinstance(g, Sequence)
            and not isinstance(g, str)
            and g
            and all(isinstance(m, str) for m in g)
            for g in spec
        )
    ):
        return tuple(tuple(g) for g in spec), True
    msg = (
        f"metrics must be a metric name, a list of names, or a list of lists of names, got {spec!r}"
    )
    raise CrystallizeUsageError(msg)


class Hypothesis:
    """A verifier applied to metric groups, and a ranker (lower is better) over treatments."""

    def __init__(
        self,
        verifier: VerifierFactory | Verifier,
        metrics: MetricsSpec = None,
        ranker: Ranker | None = None,
        name: str | None = None,
    ) -> None:
        if isinstance(verifier, VerifierFactory):
            verifier = verifier()
        if not callable(verifier):
            msg = (
                f"Hypothesis(verifier=...) must be callable(baseline, treatment), got {verifier!r}"
            )
            raise CrystallizeUsageError(msg)
        if ranker is not None and not callable(ranker):
            msg = f"Hypothesis(ranker=...) must be callable(result) -> float, got {ranker!r}"
            raise CrystallizeUsageError(msg)
        self.verifier: Verifier = verifier
        self.metrics_spec = metrics
        self.groups, self.grouped = _parse_metrics(metrics)
        self.ranker = ranker or rank_by_p_value
        self.name = name or getattr(ranker, "__name__", None) or "hypothesis"
        self._global_name: str | None = None
        self._alpha_of: tuple[Hypothesis, float] | None = None  # made by with_alpha(h, a)

    @property
    def verifier_name(self) -> str:
        """The verifier's name (its function's), for messages and reports."""
        return str(getattr(self.verifier, "name", getattr(self.verifier, "__name__", "verifier")))

    def metric_groups(self, available: Sequence[str]) -> tuple[tuple[str, ...], ...]:
        """The groups of metrics compared, each by one verifier call (all of ``available``
        as one group when the hypothesis names no metrics)."""
        return self.groups if self.groups is not None else (tuple(available),)

    def __reduce__(self) -> str | tuple[Any, ...]:
        if self._alpha_of is not None:
            return (with_alpha, self._alpha_of)
        if self._global_name is not None:
            return self._global_name  # the module attribute is this object
        return (Hypothesis, (self.verifier, self.metrics_spec, self.ranker, self.name))

    def __repr__(self) -> str:
        return (
            f"Hypothesis(name={self.name!r}, verifier={self.verifier!r}, "
            f"metrics={self.metrics_spec!r})"
        )


def hypothesis(
    *, verifier: VerifierFactory | Verifier, metrics: MetricsSpec = None, name: str | None = None
) -> Callable[[Ranker], Hypothesis]:
    """Decorate a ranker ``fn(result) -> float`` (lower is better) into a :class:`Hypothesis`.

    ``verifier`` is a bound verifier (``welch_t_test(alpha=0.01)``), a verifier factory
    (bound with no parameters) or any ``fn(baseline, treatment)`` returning a mapping or an
    object with ``as_dict()``. ``metrics`` is a metric name, a list of names (one group) or a
    list of lists of names (one verifier call per group); ``None`` compares every metric.
    """

    def decorate(ranker: Ranker) -> Hypothesis:
        made = Hypothesis(verifier, metrics=metrics, ranker=ranker, name=name)
        made._global_name = ranker.__qualname__
        made.__module__ = ranker.__module__
        return made

    return decorate


def with_alpha(hyp: Hypothesis, alpha: float) -> Hypothesis:
    """``hyp`` with its verifier deciding at ``alpha`` when the verifier has an ``alpha``
    parameter it was not given (a built-in ``stats.*`` verifier made without ``alpha=``, a
    user's ``@verifier`` with an ``alpha`` parameter left at its default); else ``hyp``."""
    verifier = _verifier_with_alpha(hyp.verifier, alpha)
    if verifier is hyp.verifier:
        return hyp
    # A new object (copy.copy would return hyp itself: it reduces to its global name), which
    # pickles as with_alpha(hyp, alpha).
    made = Hypothesis(verifier, hyp.metrics_spec, hyp.ranker, hyp.name)
    made._alpha_of = (hyp, alpha)
    return made


def as_mapping(output: VerifierOutput) -> Mapping[str, Any]:
    """A verifier's output as a mapping: itself, or what its ``as_dict()`` returns."""
    if isinstance(output, Mapping):
        return output
    return output.as_dict()


def _check_output(output: object, hyp: Hypothesis, treatment: str) -> VerifierOutput:
    if isinstance(output, Mapping):
        return output
    if callable(getattr(output, "as_dict", None)):
        return cast("SupportsAsDict", output)
    msg = (
        f"verifier {hyp.verifier_name!r} of hypothesis {hyp.name!r} returned {output!r} "
        f"({type(output).__name__}) for treatment {treatment!r}; a verifier must return a "
        f"mapping such as {{'p_value': p, 'significant': p < alpha}} or a result object "
        f"with as_dict()"
    )
    raise HypothesisError(msg)


def _complete(values: Sequence[Any] | None) -> set[int]:
    if values is None:
        return set()
    return {i for i, v in enumerate(values) if v is not None}


def check_metrics(
    hypotheses: Sequence[Hypothesis], metrics: Mapping[str, ConditionMetrics], experiment: str
) -> None:
    """Raise :class:`MissingMetricError` for a metric that no run of a condition recorded."""
    recorded = sorted({m for c in metrics.values() for m in c.metrics})
    for hyp in hypotheses:
        if hyp.groups is None:
            continue
        for group in hyp.groups:
            for metric in group:
                lacking = [
                    c.name
                    for c in metrics.values()
                    if len(c.failed) < len(c.seeds)  # some run succeeded, yet none recorded it
                    and all(v is None for v in c.metrics.get(metric, ()))
                ]
                if lacking:
                    shown = ", ".join(repr(m) for m in recorded) or "none"
                    msg = (
                        f"experiment {experiment!r}: hypothesis {hyp.name!r} needs metric "
                        f"{metric!r}, which no run of condition {lacking[0]!r} recorded; "
                        f"recorded metrics: {shown}. Record it in a step (return (data, "
                        f"{{{metric!r}: value}}) or ctx.metrics.add) or fix the name; the "
                        f"computed runs are kept on this error's .result"
                    )
                    raise MissingMetricError(msg, metric)


def evaluate(
    hypotheses: Sequence[Hypothesis],
    metrics: Mapping[str, ConditionMetrics],
    baseline: str,
    treatments: Sequence[str],
    correction: str = "holm",
    refused: Mapping[str, Mapping[str, str]] | None = None,
    not_run: int = 0,
) -> tuple[HypothesisResult, ...]:
    """Verify and rank every hypothesis, on complete replicates only; p-values are adjusted
    over the whole family of comparisons with ``correction``.

    ``refused[hypothesis][treatment]`` says why a comparison cannot be judged: its result is
    ``{"error": why}``, its verifier is not called, and it is neither ranked nor corrected.
    ``not_run`` counts the family's comparisons whose treatments did not run (not selected):
    each joins the correction as p = 1, so the adjusted p-values are those of the whole
    family at worst, never smaller.
    """
    base = metrics[baseline]
    evaluated = []
    for hyp in hypotheses:
        groups = hyp.metric_groups(list(base.metrics))
        results: dict[str, Any] = {}
        used: dict[str, tuple[int, ...]] = {}
        caught: dict[str, tuple[str, ...]] = {}
        why_not = (refused or {}).get(hyp.name, {})
        for name in treatments:
            if name in why_not:
                results[name] = {ERROR_KEY: why_not[name]}
                continue
            treated = metrics[name]
            outputs: list[Any] = []
            notes: list[str] = []
            replicates: set[int] = set()
            for group in groups:
                rows = set(range(len(base.seeds)))
                for metric in group:
                    rows &= _complete(base.metrics.get(metric))
                    rows &= _complete(treated.metrics.get(metric))
                if not rows:
                    outputs = []
                    break
                order = sorted(rows)
                replicates |= rows
                b = Samples({m: [base.metrics[m][i] for i in order] for m in group})
                t = Samples({m: [treated.metrics[m][i] for i in order] for m in group})
                b.seeds = tuple(base.seeds[i] for i in order)
                t.seeds = tuple(treated.seeds[i] for i in order)
                outputs.append(_call_verifier(hyp, b, t, name, group, len(order), notes))
            if outputs:
                results[name] = outputs if hyp.grouped else outputs[0]
                used[name] = tuple(sorted(replicates))
                if notes:
                    caught[name] = tuple(notes)
        ranked = sorted(
            ((name, _rank(hyp, out, name)) for name, out in results.items() if name not in why_not),
            key=lambda item: (math.isnan(item[1]), item[1]),
        )
        ranking = {"best": ranked[0][0] if ranked else None, "ranked": ranked}
        unverified = tuple(t for t in treatments if t not in results)
        evaluated.append(HypothesisResult(hyp.name, results, ranking, used, caught, unverified, {}))
    return _with_adjusted(tuple(evaluated), correction, not_run)


ERROR_KEY = "error"  # the result of a comparison that could not be judged


def output_pvalue(output: Any) -> float | None:
    """The p-value a verifier's output states (``p_value``, else ``pvalue``) when it is a
    probability: a finite number in [0, 1], not a bool or a string; else ``None``, so that a
    p = 2 or a p = "0.01" neither joins the family correction nor decides anything."""
    mapping = output if isinstance(output, Mapping) else as_mapping(output)
    for key in ("p_value", "pvalue"):
        value = mapping.get(key)
        if value is not None:
            if isinstance(value, bool | str | bytes) or not isinstance(value, numbers.Real):
                return None
            number = float(value)
            return number if 0.0 <= number <= 1.0 else None  # NaN fails both comparisons
    return None


def invalid_output(output: Mapping[str, Any], verifier: str) -> str | None:
    """Why the output of ``verifier`` cannot decide a verdict (a p-value that is not a
    probability, a ``passed`` or ``significant`` that is not a bool), else ``None``. A NaN
    p-value is left to the judge, which fails it ("nothing can be concluded")."""
    key = next((k for k in ("p_value", "pvalue") if output.get(k) is not None), None)
    if key is not None:
        raw = output[key]
        if isinstance(raw, bool | str | bytes) or not isinstance(raw, numbers.Real):
            return (
                f"verifier {verifier!r} returned {key}={raw!r} ({type(raw).__name__}); a "
                f"p-value is a number between 0 and 1: return a float"
            )
        if not math.isnan(float(raw)) and not 0 <= float(raw) <= 1:
            return (
                f"verifier {verifier!r} returned {key}={raw!r}, outside [0, 1]; a p-value is "
                f"a probability: return a number between 0 and 1"
            )
    for flag in ("passed", "significant"):
        if flag in output and not is_bool(output[flag]):
            value = output[flag]
            return (
                f"verifier {verifier!r} returned {flag}={value!r} ({type(value).__name__}); "
                f"{flag!r} decides the verdict and must be True or False: return a bool, "
                f"such as {{{flag!r}: p < alpha}}"
            )
    return None


def _with_adjusted(
    evaluated: tuple[HypothesisResult, ...], correction: str, not_run: int = 0
) -> tuple[HypothesisResult, ...]:
    """Adjust every p-value of the family (hypothesis x treatment x metric group) together;
    ``not_run`` members that were not evaluated count as p = 1."""
    slots: list[tuple[int, str, int]] = []
    pvalues: list[float] = []
    for h, result in enumerate(evaluated):
        for name, output in result.results.items():
            for g, single in enumerate(output if isinstance(output, list) else [output]):
                p = output_pvalue(single)
                if p is not None:
                    slots.append((h, name, g))
                    pvalues.append(p)
    adjusted = adjust_pvalues([*pvalues, *[1.0] * not_run], correction)[: len(pvalues)]
    found: dict[int, dict[str, list[float | None]]] = {}
    for (h, name, g), value in zip(slots, adjusted, strict=True):
        output = evaluated[h].results[name]
        groups = len(output) if isinstance(output, list) else 1
        found.setdefault(h, {}).setdefault(name, [None] * groups)[g] = value
    return tuple(
        replace(
            result,
            adjusted={
                name: values if isinstance(result.results[name], list) else values[0]
                for name, values in found.get(h, {}).items()
            },
            correction=correction,
            family_size=len(pvalues) + not_run,
            family_not_run=not_run,
        )
        for h, result in enumerate(evaluated)
    )


def _call_verifier(
    hyp: Hypothesis,
    baseline: Samples,
    treatment: Samples,
    name: str,
    group: tuple[str, ...],
    n: int,
    notes: list[str],
) -> VerifierOutput:
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            output = hyp.verifier(baseline, treatment)
    except Exception as exc:
        msg = (
            f"verifier {hyp.verifier_name!r} of hypothesis {hyp.name!r} raised "
            f"{type(exc).__name__}: {exc} (treatment {name!r}, metrics {list(group)!r}, "
            f"{n} complete replicate{'' if n == 1 else 's'})"
        )
        raise HypothesisError(msg) from exc
    for caught_warning in caught:
        note = f"{caught_warning.category.__name__}: {caught_warning.message}"
        if note not in notes:
            notes.append(note)
    return _check_output(output, hyp, name)


def _rank(hyp: Hypothesis, output: Any, name: str) -> float:
    shown = [as_mapping(o) for o in output] if isinstance(output, list) else as_mapping(output)
    try:
        return float(hyp.ranker(shown))
    except Exception as exc:
        msg = (
            f"ranker of hypothesis {hyp.name!r} raised {type(exc).__name__}: {exc} "
            f"(treatment {name!r})"
        )
        raise HypothesisError(msg) from exc

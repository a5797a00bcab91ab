"""The outcome of one (hypothesis, treatment) comparison, as pytest reports it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, final

from .plain import plain


@final
@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of one (hypothesis, treatment) comparison, as pytest reports it.

    Attributes
    ----------
    outcome:
        ``"passed"``, ``"failed"``, ``"inconclusive"`` (a gate's CI straddles its margin),
        ``"error"`` (the experiment could not be judged) or ``"skipped"`` (not every
        replicate was selected).
    message:
        Why, with the numbers.
    pvalue, pvalue_adjusted, correction, alpha:
        The verifier's p-value, the p-value adjusted over the experiment's family (``None``
        for a family of one), the correction used, and the significance level.
    n_baseline, n_treatment, mean_baseline, mean_treatment:
        The complete replicates compared, per condition, and the means of the first metric.
    difference, ci_low, ci_high, effect_size, effect_size_name, mde:
        From built-in verifiers: the estimated change with its 95% CI, the effect size, and
        the smallest change detectable with 80% power.
    output:
        The verifier's output as plain data.
    notes:
        Warnings the verifier emitted and degenerate inputs (for example zero variance).
    condition:
        The condition the verdict is about when ``treatment`` does not name one: a comparison
        with a saved baseline is named after its metric and compares this condition.
    comparison:
        For a comparison with a saved baseline that no gate judges: ``"unchanged"``,
        ``"improved"`` or ``"regressed"`` (its ``outcome`` is ``"passed"``); else ``""``.
    plan:
        In plan mode (``--crystallize-plan``), the pilot's numbers as plain data (effect,
        power, sd, replicates needed, ...); else ``None``.
    look, looks, boundary:
        For a sequential design: the look the verdict was decided at (1-based), the number of
        looks, and the nominal p-value threshold of that look (the boundary crossed, for a
        pass); ``pvalue``, ``ci_low`` and ``ci_high`` are then adjusted for the design
        (stage-wise ordering) and ``n_baseline``/``n_treatment`` are the replicates used.
        ``None`` for a fixed design.
    """

    experiment: str
    hypothesis: str
    treatment: str
    outcome: str
    message: str
    verifier: str = ""
    metrics: tuple[str, ...] = ()
    pvalue: float | None = None
    pvalue_adjusted: float | None = None
    correction: str = "none"
    alpha: float | None = None
    n_baseline: int = 0
    n_treatment: int = 0
    mean_baseline: float | None = None
    mean_treatment: float | None = None
    difference: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    effect_size: float | None = None
    effect_size_name: str = ""
    mde: float | None = None
    output: Any = None
    notes: tuple[str, ...] = ()
    condition: str = ""
    comparison: str = ""
    plan: Any = None
    look: int | None = None
    looks: int | None = None
    boundary: float | None = None

    @property
    def shown(self) -> str:
        """What a summary shows: the comparison's word when there is one, else the outcome."""
        return self.comparison or self.outcome

    @property
    def name(self) -> str:
        """``<experiment>::<hypothesis>::<treatment>``, the node id after the file."""
        return f"{self.experiment}::{self.hypothesis}::{self.treatment}"

    def properties(self) -> list[tuple[str, object]]:
        """The numbers as ``(name, value)`` pairs, for JUnit XML properties."""
        pairs: list[tuple[str, object]] = [
            ("crystallize_outcome", self.outcome),
            ("verifier", self.verifier),
            ("metrics", ",".join(self.metrics)),
            ("n_baseline", self.n_baseline),
            ("n_treatment", self.n_treatment),
            ("correction", self.correction),
        ]
        if self.condition:
            pairs.append(("condition", self.condition))
        if self.comparison:
            pairs.append(("comparison", self.comparison))
        if self.effect_size_name:
            pairs.append(("effect_size_name", self.effect_size_name))
        optional = {
            "p_value": self.pvalue,
            "p_value_adjusted": self.pvalue_adjusted,
            "alpha": self.alpha,
            "mean_baseline": self.mean_baseline,
            "mean_treatment": self.mean_treatment,
            "difference": self.difference,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "effect_size": self.effect_size,
            "mde": self.mde,
            "look": self.look,
            "looks": self.looks,
            "boundary": self.boundary,
        }
        pairs += [(k, v) for k, v in optional.items() if v is not None]
        pairs += [(f"note_{i}", note) for i, note in enumerate(self.notes)]
        return pairs

    def to_json(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment,
            "hypothesis": self.hypothesis,
            "treatment": self.treatment,
            "outcome": self.outcome,
            "message": self.message,
            "verifier": self.verifier,
            "metrics": list(self.metrics),
            "pvalue": self.pvalue,
            "pvalue_adjusted": self.pvalue_adjusted,
            "correction": self.correction,
            "alpha": self.alpha,
            "n_baseline": self.n_baseline,
            "n_treatment": self.n_treatment,
            "mean_baseline": self.mean_baseline,
            "mean_treatment": self.mean_treatment,
            "difference": self.difference,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "effect_size": self.effect_size,
            "effect_size_name": self.effect_size_name,
            "mde": self.mde,
            "output": plain(self.output, finite=True),
            "notes": list(self.notes),
            "condition": self.condition or self.treatment,
            "comparison": self.comparison or None,
            "plan": plain(self.plan, finite=True),
            "look": self.look,
            "looks": self.looks,
            "boundary": self.boundary,
        }

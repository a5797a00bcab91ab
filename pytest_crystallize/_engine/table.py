"""The verdict table: one row per verdict, as the terminal summary and ``Result.summary()``
show it, and the per-replicate values a verbose summary adds below a row."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .context import BASELINE_CONDITION
from .numbers import number
from .verdict import Verdict

if TYPE_CHECKING:  # results imports this module, for Result.summary()
    from .results import ConditionMetrics

COLUMNS = (
    "experiment",
    "hypothesis",
    "treatment",
    "metric",
    "n",
    "means",
    "change [95% CI]",
    "p (adj)",
    "alpha",
    "verdict",
)
VALUES_SHOWN = 20  # per condition, in a verbose summary; then "... (N more)"


def _p(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def row(v: Verdict) -> tuple[str, ...]:
    """The cells of ``v``'s row, in :data:`COLUMNS` order.

    A comparison with a saved baseline names a metric as its treatment and the condition it
    compares in ``condition``: the treatment column shows the condition, the metric column
    the metric. The verdict column shows the comparison's word when there is one.
    """
    n = f"{v.n_baseline}/{v.n_treatment}" if v.n_baseline or v.n_treatment else "-"
    means = (
        f"{v.mean_baseline:.4g} -> {v.mean_treatment:.4g}"
        if v.mean_baseline is not None and v.mean_treatment is not None
        else "-"
    )
    change = "-"
    if v.difference is not None and v.ci_low is not None and v.ci_high is not None:
        change = f"{v.difference:+.3g} [{v.ci_low:+.3g}, {v.ci_high:+.3g}]"
    p = _p(v.pvalue) + (f" ({_p(v.pvalue_adjusted)})" if v.pvalue_adjusted is not None else "")
    about = v.condition if v.condition and v.condition != v.treatment else ""
    metric = ",".join(v.metrics) or (v.treatment if about else "-")
    return (
        v.experiment,
        v.hypothesis,
        about or v.treatment,
        metric,
        n,
        means,
        change,
        p,
        "-" if v.alpha is None else f"{v.alpha:g}",
        v.shown.upper() + (" !" if v.notes else ""),
    )


def table(verdicts: Sequence[Verdict]) -> list[str]:
    """The header and one line per verdict, columns padded to their widest cell."""
    rows = [COLUMNS, *(row(v) for v in verdicts)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(r, widths, strict=True)).rstrip()
        for r in rows
    ]


def _value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, tuple | list):
        return "(" + ", ".join(_value(v) for v in value) + ")"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return number(value)
    return repr(value)


def values_line(metric: str, values: Mapping[str, Sequence[Any]]) -> str:
    """``    total  baseline: 1.2, 1.4  boost: 2.3, 2.1``: each condition's values of
    ``metric`` in replicate order (``-`` where a run has none), at most
    :data:`VALUES_SHOWN` each, rounded to four significant digits."""
    parts = [f"    {metric}"]
    for condition, column in values.items():
        shown = ", ".join(_value(v) for v in column[:VALUES_SHOWN])
        more = f" ... ({len(column) - VALUES_SHOWN} more)" if len(column) > VALUES_SHOWN else ""
        parts.append(f"{condition}: {shown}{more}")
    return "  ".join(parts)


def verdict_values(v: Verdict, metrics: Mapping[str, ConditionMetrics]) -> str | None:
    """The :func:`values_line` below ``v``'s row: its first metric in the baseline and its
    treatment (or in the condition a comparison with a saved baseline is about), from
    ``metrics`` (:func:`~.results.build_metrics`); ``None`` when there is nothing to show."""
    if not v.metrics:
        return None
    metric = v.metrics[0]
    conditions = [v.condition] if v.condition else [BASELINE_CONDITION, v.treatment]
    values = {
        c: metrics[c].metrics[metric]
        for c in conditions
        if c in metrics and metric in metrics[c].metrics
    }
    return values_line(metric, values) if values else None

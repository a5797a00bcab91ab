"""Group-sequential designs: look at the replicates several times, stop early, keep alpha.

A design fixes its looks in advance, as information fractions ``t_1 < ... < t_K = 1`` (the
replicates per condition at each look over the maximum). :func:`efficacy_bounds` spends the
two-sided ``alpha`` over the looks (Lan-DeMets: O'Brien-Fleming-like spending keeps early
looks strict and the last one near the fixed design's; Pocock-like spending is even) and
returns one z bound per look; :func:`classic_bounds` gives the original equally spaced Pocock
and O'Brien-Fleming designs. At look ``k`` a comparison crosses when its own p-value (t
distribution for t tests, the exact or permutation null otherwise) is at most
``nominal_levels(bounds)[k - 1]``; with several comparisons, :func:`holm_at_look` applies
Holm's step-down at that level. :func:`max_sample_inflation` is what the looks cost in
maximum replicates at equal power.

Futility is non-binding (the bounds ignore it, so stopping for futility only lowers the
false-positive rate): :func:`futility_levels` gives the p-value above which a comparison is
futile at each interim look, where the predictive power of the last look (the chance of
crossing it, averaged over the effects the data so far allow) falls below 2.5%: early, an
estimate clearly pointing the wrong way; late, also one pointing weakly the right way. It
reads ``z`` in the test's direction (one-sided tests and gates) or in the direction the
caller calls better (two-sided tests: the judge takes the metric's), or ``|z|`` with
``two_sided=True``. The caller stops when every comparison that has not crossed is futile.

After stopping, :func:`stagewise_pvalue` and :func:`stagewise_interval` give the p-value and
the confidence interval that account for the looks (the stage-wise ordering); the interval
is for the drift ``eta``, in standard errors of the final look's estimate: the effect is
``Delta = eta * se_K`` with ``se_K = se_k * sqrt(t_k)`` from the stopping look ``k``.

The bounds live in ``_sequential_bounds``, the inference after stopping in
``_sequential_inference``; this module gathers their public names.
"""

from __future__ import annotations

from ._sequential_bounds import (
    classic_bounds,
    efficacy_bounds,
    futility_levels,
    holm_at_look,
    max_sample_inflation,
    nominal_levels,
    spent,
)
from ._sequential_inference import stagewise_interval, stagewise_pvalue

__all__ = [
    "classic_bounds",
    "efficacy_bounds",
    "futility_levels",
    "holm_at_look",
    "max_sample_inflation",
    "nominal_levels",
    "spent",
    "stagewise_interval",
    "stagewise_pvalue",
]

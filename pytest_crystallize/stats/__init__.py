"""Built-in verifiers: t, rank, permutation and bootstrap tests, and non-regression gates.

Use them as ``@hypothesis(verifier=stats.paired_t_test(alternative="greater"),
metrics="total")``. Each compares one metric and returns a frozen :class:`TestResult` in
scipy's vocabulary (``statistic``, ``pvalue``, ``alternative``, ``confidence_interval()``)
with the estimated difference (treatment minus baseline), an effect size, the smallest
difference the test could detect with 80% power (``mde``) and an ``outcome``: ``"passed"``,
``"failed"`` or ``"inconclusive"``. Degenerate data get a named ``reason`` instead of an
infinite or NaN p-value. ``as_dict()`` has the ``p_value`` and ``significant`` keys that
tutorial-style rankers read. scipy is imported when a test runs, never at import.

This module holds the public names only; the tests live in private modules: ``_parametric``
(t-tests), ``_rank`` (Mann-Whitney, Wilcoxon), ``_resampling`` (permutation, bootstrap),
``_auto``, ``_gates`` (non-inferiority, equivalence), ``_power`` (p-value floors, planning).
"""

from __future__ import annotations

from .._engine.correction import adjust_pvalues
from ._auto import auto
from ._common import (
    BOOTSTRAP_RESAMPLES,
    MAX_RESAMPLES,
    ConfidenceInterval,
    TestResult,
    cliffs_delta,
    pairs_by_seed,
)
from ._gates import equivalent, non_inferior
from ._parametric import paired_t_test, welch_t_test
from ._power import PlanResult, min_pvalue, plan, replicates_needed
from ._rank import mann_whitney, wilcoxon
from ._resampling import bootstrap_ci, permutation_test

__all__ = [
    "BOOTSTRAP_RESAMPLES",
    "ConfidenceInterval",
    "MAX_RESAMPLES",
    "PlanResult",
    "TestResult",
    "adjust_pvalues",
    "auto",
    "bootstrap_ci",
    "cliffs_delta",
    "equivalent",
    "mann_whitney",
    "min_pvalue",
    "non_inferior",
    "paired_t_test",
    "pairs_by_seed",
    "permutation_test",
    "plan",
    "replicates_needed",
    "welch_t_test",
    "wilcoxon",
]


def __dir__() -> list[str]:
    """``dir(stats)``: the public names, not the private modules the package is made of."""
    return list(__all__)

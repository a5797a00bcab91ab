"""Family correction: p-values adjusted together across an experiment's family of tests.

The engine applies it when it evaluates an experiment's hypotheses (every hypothesis x
treatment x metric group of the definition is one member of the family);
``pytest_crystallize.stats`` re-exports :func:`adjust_pvalues`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .errors import CrystallizeUsageError

CORRECTIONS = ("holm", "bonferroni", "bh", "none")


def check_correction(method: Any, where: str) -> str:
    """Return ``method`` if it names a correction; else a usage error naming ``where``."""
    if method not in CORRECTIONS:
        msg = f"{where} takes one of {', '.join(CORRECTIONS)}, got {method!r}"
        raise CrystallizeUsageError(msg)
    return str(method)


def adjust_pvalues(pvalues: Sequence[float], method: str) -> list[float]:
    """Family-wise (Holm, Bonferroni) or false-discovery-rate (Benjamini-Hochberg) adjusted
    p-values, in the input order; ``"none"`` returns them unchanged."""
    check_correction(method, "adjust_pvalues(method=...)")
    m = len(pvalues)
    if method == "none" or m == 0:
        return list(pvalues)
    if method == "bonferroni":
        return [min(1.0, p * m) for p in pvalues]
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [0.0] * m
    if method == "holm":
        running = 0.0
        for rank, i in enumerate(order):
            running = max(running, min(1.0, (m - rank) * pvalues[i]))
            adjusted[i] = running
        return adjusted
    running = 1.0  # Benjamini-Hochberg, from the largest p down
    for rank in range(m - 1, -1, -1):
        i = order[rank]
        running = min(running, pvalues[i] * m / (rank + 1))
        adjusted[i] = min(1.0, running)
    return adjusted

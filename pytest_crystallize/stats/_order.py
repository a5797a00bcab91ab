"""Order statistics of pairwise values without forming them: the differences ``t_i - b_j``
(Mann-Whitney's Hodges-Lehmann estimate and Moses interval) and the Walsh averages
``(d_i + d_j) / 2, i <= j`` (Wilcoxon's).

There are n * m (or n (n + 1) / 2) such values: 10^8 at n = 10,000, 800 MB and minutes to
sort. Here each row ``i`` of the implicit matrix is monotone along sorted columns, so the
number of values below a pivot is found by a vectorised binary search in every row, in
O(n log n); a randomised selection (Monahan's approach to the Hodges-Lehmann estimator,
ACM TOMS 10(3), 1984) narrows per-row windows around the k-th value by such counts until few
candidates are left, which are then partitioned directly. Expected cost O(n log^2 n) time and
O(n) memory per order statistic.

The values are the very floating-point numbers ``np.subtract.outer(t, b)`` and
``np.add.outer(d, d) / 2`` hold (rounding is monotone, so each row stays sorted), and the
result is the exact order statistic, whatever the pivots drawn: identical to sorting them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

# Below this many candidates left, they are gathered and partitioned in one go.
_GATHER = 1 << 16


class _Rows:
    """An implicit matrix whose row ``i`` holds ``value(i, j)`` for ``j`` in
    ``[start[i], width)``, non-decreasing in ``j``."""

    def __init__(self, value: Callable[[Any, Any], Any], start: Any, width: int) -> None:
        self.value = value
        self.start = start
        self.width = width

    def first_above(self, low: Any, high: Any, pivot: float, strict: bool) -> Any:
        """Per row, the first ``j`` in ``[low, high)`` whose value is above ``pivot``
        (``strict``: at or above), else ``high``: a binary search in all rows at once."""
        import numpy as np  # lazy: numpy adds ~0.15 s to importing the plugin

        low, high = low.copy(), high.copy()
        rows = np.arange(len(low))
        while True:
            active = low < high
            if not active.any():
                return low
            mid = (low + high) // 2
            values = self.value(rows[active], mid[active])
            below = values < pivot if strict else values <= pivot
            low[active] = np.where(below, mid[active] + 1, low[active])
            high[active] = np.where(below, high[active], mid[active])


def _select(rows: _Rows, ranks: Sequence[int], seed: int = 0) -> list[float]:
    """The values at 0-based ``ranks`` of the sorted values of ``rows``."""
    import numpy as np  # lazy: numpy adds ~0.15 s to importing the plugin

    rng = np.random.default_rng(seed)
    out = []
    for k in ranks:
        low, high = rows.start.copy(), np.full_like(rows.start, rows.width)
        before = 0  # values known to be below every candidate
        while True:
            sizes = high - low
            ends = np.cumsum(sizes)
            total = int(ends[-1]) if len(ends) else 0
            if total <= _GATHER:  # every candidate left: row r's columns low[r]..high[r]-1
                firsts = np.repeat(ends - sizes, sizes)
                columns = np.repeat(low, sizes) + np.arange(total) - firsts
                candidates = rows.value(np.repeat(np.arange(len(low)), sizes), columns)
                out.append(float(np.partition(candidates, k - before)[k - before]))
                break
            pick = int(rng.integers(total))  # a candidate drawn uniformly: the pivot
            row = int(np.searchsorted(ends, pick, side="right"))
            column = int(low[row] + pick - (ends[row] - sizes[row]))
            pivot = float(rows.value(np.array([row]), np.array([column]))[0])
            under = rows.first_above(low, high, pivot, strict=True)  # first value >= pivot
            upto = rows.first_above(under, high, pivot, strict=False)  # first value > pivot
            below = before + int((under - low).sum())
            through = below + int((upto - under).sum())
            if k < below:
                high = under
            elif k < through:
                out.append(pivot)
                break
            else:
                low, before = upto, through
    return out


def pairwise_differences(t: Any, b: Any, ranks: Sequence[int]) -> list[float]:
    """The values at ``ranks`` of the sorted ``t_i - b_j`` over all pairs."""
    import numpy as np  # lazy: numpy adds ~0.15 s to importing the plugin

    columns = np.sort(np.asarray(b, dtype=float))[::-1]  # t_i - b_j grows along a row
    rows_of = np.asarray(t, dtype=float)
    rows = _Rows(
        lambda i, j: rows_of[i] - columns[j],
        np.zeros(len(rows_of), dtype=np.intp),
        len(columns),
    )
    return _select(rows, ranks)


def walsh_averages(d: Any, ranks: Sequence[int]) -> list[float]:
    """The values at ``ranks`` of the sorted Walsh averages ``(d_i + d_j) / 2``, ``i <= j``."""
    import numpy as np  # lazy: numpy adds ~0.15 s to importing the plugin

    ordered = np.sort(np.asarray(d, dtype=float))
    rows = _Rows(
        lambda i, j: (ordered[i] + ordered[j]) / 2,
        np.arange(len(ordered), dtype=np.intp),
        len(ordered),
    )
    return _select(rows, ranks)


def median_of(select: Callable[[Sequence[int]], list[float]], count: int) -> float:
    """The median of ``count`` implicit values, as ``np.median`` computes it (the mean of
    the two middle ones when ``count`` is even)."""
    import numpy as np  # lazy: numpy adds ~0.15 s to importing the plugin

    if count % 2:
        return select([count // 2])[0]
    return float(np.mean(select([count // 2 - 1, count // 2])))

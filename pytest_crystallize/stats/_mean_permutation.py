"""Monte Carlo permutation tests of a mean (paired sign flips) or a difference of means
(relabelling of independent samples) at large n, in time and memory linear in n.

scipy's ``permutation_test`` draws each resample as a permutation of the data and calls the
statistic on it: at n = 10,000 per condition and thousands of resamples that is seconds. Both
statistics here are linear in the labels, so a resample is a vector of random labels and its
statistic one dot product:

* paired: independent random signs ``s`` (from random bits), ``mean(s * d)``;
* independent: a uniformly random subset of ``n_x`` of the pooled values as the first sample.
  It is drawn as independent labels (each in with probability about ``n_x / N``), then
  completed to exactly ``n_x`` by moving uniformly chosen labels in or out. Every step treats
  the positions alike, so the subset is uniform over the subsets of that size, as a random
  permutation's first ``n_x`` positions are.

Resamples go in batches of at most ``2^21`` values. The p-value follows scipy's Monte Carlo
convention: ``(hits + 1) / (resamples + 1)``, hits counted with scipy's relative tolerance of
``100 eps`` around the observed statistic, two-sided as twice the smaller tail, at most 1.
"""

from __future__ import annotations

from typing import Any, NamedTuple

_BATCH_VALUES = 1 << 21


class Permuted(NamedTuple):
    statistic: float
    pvalue: float


def mean_permutation(
    data: tuple[Any, ...], *, paired: bool, alternative: str, n_resamples: int, seed: int
) -> Permuted:
    """The permutation test of ``mean(data[0])`` (``paired``: one sample of differences,
    signs flipped) or of ``mean(data[0]) - mean(data[1])`` (labels permuted)."""
    import numpy as np  # lazy: numpy adds ~0.15 s to importing the plugin

    rng = np.random.default_rng(seed)
    if paired:
        (d,) = (np.asarray(x, dtype=float) for x in data)
        observed = float(np.mean(d))
        null = _sign_flips(d, n_resamples, rng)
    else:
        x, y = (np.asarray(v, dtype=float) for v in data)
        observed = float(np.mean(x) - np.mean(y))
        null = _relabelled(x, y, n_resamples, rng)
    return Permuted(observed, _pvalue(null, observed, alternative))


def _sign_flips(d: Any, resamples: int, rng: Any) -> Any:
    import numpy as np  # lazy: numpy adds ~0.15 s to importing the plugin

    n, total = len(d), float(np.sum(d))
    batch = max(1, _BATCH_VALUES // n)
    out = []
    for start in range(0, resamples, batch):
        rows = min(batch, resamples - start)
        bits = rng.integers(0, 256, size=(rows, (n + 7) // 8), dtype=np.uint8)
        positive = np.unpackbits(bits, axis=1, count=n).astype(float) @ d  # sum where +1
        out.append((2 * positive - total) / n)
    return np.concatenate(out)


def _relabelled(x: Any, y: Any, resamples: int, rng: Any) -> Any:
    import numpy as np  # lazy: numpy adds ~0.15 s to importing the plugin

    pooled = np.concatenate([x, y])
    size, total, n_x = len(pooled), float(np.sum(pooled)), len(x)
    threshold = min(255, max(1, round(256 * n_x / size)))  # P(in) = threshold / 256
    batch = max(1, _BATCH_VALUES // size)
    out = []
    for start in range(0, resamples, batch):
        rows = min(batch, resamples - start)
        labels = rng.integers(0, 256, size=(rows, size), dtype=np.uint8) < threshold
        sums = labels.astype(float) @ pooled
        for row, count in enumerate(labels.sum(axis=1)):
            if count == n_x:
                continue
            # Move uniformly chosen labels in (too few) or out (too many) of the subset.
            pool = np.flatnonzero(~labels[row] if count < n_x else labels[row])
            moved = rng.choice(pool, size=abs(n_x - int(count)), replace=False)
            change = float(np.sum(pooled[moved]))
            sums[row] += change if count < n_x else -change
        out.append(sums / n_x - (total - sums) / (size - n_x))
    return np.concatenate(out)


def _pvalue(null: Any, observed: float, alternative: str) -> float:
    import numpy as np  # lazy: numpy adds ~0.15 s to importing the plugin

    gamma = abs(np.finfo(float).eps * 100 * observed)
    resamples = len(null)
    less = (int(np.sum(null <= observed + gamma)) + 1) / (resamples + 1)
    greater = (int(np.sum(null >= observed - gamma)) + 1) / (resamples + 1)
    if alternative == "less":
        return less
    if alternative == "greater":
        return greater
    return min(1.0, 2 * min(less, greater))

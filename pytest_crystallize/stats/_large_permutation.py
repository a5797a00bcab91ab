"""Monte Carlo permutation tests of a mean or a median (paired sign flips) or of a difference
of means or medians (relabelling of independent samples) at large n, in time and memory
linear in n per resample.

scipy's ``permutation_test`` draws each resample as a permutation of the data and calls the
statistic on it: at n = 10,000 per condition and thousands of resamples that is seconds and
gigabytes. Here a resample is a row of random labels over the values sorted once:

* paired: independent random signs (from random bits) on the differences, sorted by their
  absolute value;
* independent: a uniformly random subset of ``n_x`` of the pooled values as the first sample.
  It is drawn as independent labels (each in with probability about ``n_x / N``), then
  completed to exactly ``n_x`` by moving uniformly chosen labels in or out. Every step treats
  the positions alike, so the subset is uniform over the subsets of that size, as a random
  permutation's first ``n_x`` positions are.

A mean is then one dot product per row; a median, the value where a row's running count of
labels reaches the middle (the labelled values being already in order). Resamples go in
batches of at most ``2^21`` values. The p-value follows scipy's Monte Carlo convention:
``(hits + 1) / (resamples + 1)``, hits counted with scipy's relative tolerance of ``100 eps``
around the observed statistic, two-sided as twice the smaller tail, at most 1.
"""

from __future__ import annotations

from typing import Any, NamedTuple

_BATCH_VALUES = 1 << 21


class Permuted(NamedTuple):
    statistic: float
    pvalue: float


def large_permutation(
    data: tuple[Any, ...],
    *,
    center: str,
    paired: bool,
    alternative: str,
    n_resamples: int,
    seed: int,
) -> Permuted:
    """The permutation test of ``center(data[0])`` (``paired``: one sample of differences,
    signs flipped) or of ``center(data[0]) - center(data[1])`` (labels permuted), where
    ``center`` is ``"mean"`` or ``"median"``."""
    import numpy as np  # lazy: numpy adds ~0.15 s to importing the plugin

    rng = np.random.default_rng(seed)
    middle = np.mean if center == "mean" else np.median
    if paired:
        (d,) = (np.asarray(x, dtype=float) for x in data)
        observed = float(middle(d))
        null = _sign_flips(d, n_resamples, rng, center)
    else:
        x, y = (np.asarray(v, dtype=float) for v in data)
        observed = float(middle(x) - middle(y))
        null = _relabelled(x, y, n_resamples, rng, center)
    return Permuted(observed, _pvalue(null, observed, alternative))


def _sign_flips(d: Any, resamples: int, rng: Any, center: str) -> Any:
    import numpy as np  # lazy: numpy adds ~0.15 s to importing the plugin

    size = np.sort(np.abs(d))  # a row's values: +size where its bit is 1, -size where 0
    n, total = len(d), float(np.sum(size))
    batch = max(1, _BATCH_VALUES // n)
    out = []
    for start in range(0, resamples, batch):
        rows = min(batch, resamples - start)
        bits = rng.integers(0, 256, size=(rows, (n + 7) // 8), dtype=np.uint8)
        plus = np.unpackbits(bits, axis=1, count=n).astype(bool)
        if center == "mean":
            positive = plus.astype(float) @ size
            out.append((2 * positive - total) / n)
        else:
            out.append(_middle(lambda r, plus=plus: _flipped_rank(size, plus, r), n))
    return np.concatenate(out)


def _flipped_rank(size: Any, plus: Any, rank: int) -> Any:
    """Per row, the ``rank``-th smallest of the signed values: the negatives come first,
    largest size first, then the positives, smallest first."""
    import numpy as np  # lazy: numpy adds ~0.15 s to importing the plugin

    negatives = np.cumsum(~plus, axis=1)
    count = negatives[:, -1]
    among_negatives = rank < count
    # a negative: the (count - rank)-th negative in increasing size
    want = np.where(among_negatives, count - rank, 1)
    negative_at = np.argmax(negatives >= want[:, None], axis=1)
    # a positive: the (rank - count + 1)-th positive in increasing size
    positives = np.cumsum(plus, axis=1)
    want = np.where(among_negatives, 1, rank - count + 1)
    positive_at = np.argmax(positives >= want[:, None], axis=1)
    return np.where(among_negatives, -size[negative_at], size[positive_at])


def _relabelled(x: Any, y: Any, resamples: int, rng: Any, center: str) -> Any:
    import numpy as np  # lazy: numpy adds ~0.15 s to importing the plugin

    pooled = np.sort(np.concatenate([x, y]))  # positions are exchangeable: sort once
    size, total, n_x = len(pooled), float(np.sum(pooled)), len(x)
    threshold = min(255, max(1, round(256 * n_x / size)))  # P(in) = threshold / 256
    batch = max(1, _BATCH_VALUES // size)
    out = []
    for start in range(0, resamples, batch):
        rows = min(batch, resamples - start)
        labels = rng.integers(0, 256, size=(rows, size), dtype=np.uint8) < threshold
        for row, count in enumerate(labels.sum(axis=1)):
            if count != n_x:  # move uniformly chosen labels in (too few) or out (too many)
                pool = np.flatnonzero(labels[row] == (count > n_x))
                moved = rng.choice(pool, size=abs(n_x - int(count)), replace=False)
                labels[row, moved] = count < n_x
        if center == "mean":
            sums = labels.astype(float) @ pooled
            out.append(sums / n_x - (total - sums) / (size - n_x))
        else:
            inside, outside = labels, ~labels
            first = _middle(lambda r, m=inside: pooled[_position(m, r)], n_x)
            second = _middle(lambda r, m=outside: pooled[_position(m, r)], size - n_x)
            out.append(first - second)
    return np.concatenate(out)


def _position(labels: Any, rank: int) -> Any:
    """Per row, the position of its ``rank``-th (0-based) labelled value."""
    import numpy as np  # lazy: numpy adds ~0.15 s to importing the plugin

    return np.argmax(np.cumsum(labels, axis=1) > rank, axis=1)


def _middle(value_at: Any, count: int) -> Any:
    """The median of ``count`` ordered values per row, from ``value_at(rank)``: the middle
    one, or the mean of the two middle ones (as ``np.median``)."""
    if count % 2:
        return value_at(count // 2)
    return (value_at(count // 2 - 1) + value_at(count // 2)) / 2


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

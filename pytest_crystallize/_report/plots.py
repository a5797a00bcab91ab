"""The HTML report's plots: inline SVG strip plots with round axis ticks, one colour per condition.

A strip plot shows one column of points per condition (the per-replicate values), each
condition's mean (bar) and 95% CI (whisker); the paired plot shows treatment minus baseline,
replicate by replicate, around a labelled zero line. The y axis has 4 to 6 ticks at "nice"
numbers (1, 2, 2.5 or 5 times a power of ten, see :func:`nice_ticks`). Colours come from a
fixed palette assigned by condition order over the whole report (:func:`condition_colours`),
the baseline always the same, so a condition looks the same in every plot and table. The SVG
is written here rather than with matplotlib: it keeps the report dependency-free and
byte-for-byte reproducible (the jitter is a function of the replicate index).
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

from .._engine.numbers import finite, number

BASELINE = "baseline"
BASELINE_COLOUR = "#4c72b0"
# Treatments in order; red comes last so that it rarely suggests "failed".
PALETTE = (
    "#dd8452",
    "#55a868",
    "#8172b3",
    "#937860",
    "#da8bc3",
    "#ccb974",
    "#64b5cd",
    "#c44e52",
)
_MULTIPLIERS = (1.0, 2.0, 2.5, 5.0)
_W, _H = 540, 250
_LEFT, _RIGHT, _TOP, _BOTTOM = 60, 16, 34, 40
_INSET = 8  # pixels between the outer ticks and the plot's edges: no point sits on the frame


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


# --- axes -----------------------------------------------------------------------------------


def nice_ticks(low: float, high: float) -> list[float]:
    """4 to 6 evenly spaced round ticks covering ``[low, high]``: the first at or below
    ``low``, the last at or above ``high``, spaced 1, 2, 2.5 or 5 times a power of ten (the
    smallest such step that needs at most 6). Equal ends are widened around their value."""
    if not (math.isfinite(low) and math.isfinite(high)) or low > high:
        msg = f"an axis needs finite ends with low <= high, got low={low!r} and high={high!r}"
        raise ValueError(msg)
    if low == high:
        pad = abs(low) * 0.1 or 1.0
        low, high = low - pad, high + pad
    exponent = math.floor(math.log10((high - low) / 6))
    for power in range(exponent, exponent + 3):
        for multiplier in _MULTIPLIERS:
            step = multiplier * 10.0**power
            # a hair of tolerance, so that 0.3 / 0.1 = 2.9999999999999996 counts as 3
            first = math.floor(low / step + 1e-9)
            last = math.ceil(high / step - 1e-9)
            if last - first <= 5:
                digits = max(0, -power + (1 if multiplier == 2.5 else 0))
                return [round((first + i) * step, digits) + 0.0 for i in range(last - first + 1)]
    msg = "unreachable: a step of 100 times the span needs at most 3 ticks"
    raise AssertionError(msg)


def tick_labels(ticks: Sequence[float]) -> list[str]:
    """The labels of ``ticks``: as few decimals as tell them apart exactly (``0.5``, ``2.5``,
    ``10``); the exponent form, with as many digits as that needs, when a label would be
    longer than 8 characters (``1.35e+07``, ``2e-08``); never ``-0``."""
    step = abs(ticks[1] - ticks[0]) if len(ticks) > 1 else 1.0

    def exact(labels: list[str]) -> bool:
        return all(
            abs(float(label) - t) < step * 1e-6 for label, t in zip(labels, ticks, strict=True)
        )

    fixed: list[str] = []
    for decimals in range(12):
        fixed = [f"{round(t, decimals) + 0.0:.{decimals}f}" for t in ticks]
        if exact(fixed):
            break
    if max(len(label.lstrip("-")) for label in fixed) <= 8:
        return fixed
    for digits in range(1, 17):
        short = [f"{t + 0.0:.{digits}g}" for t in ticks]
        if exact(short):
            return short
    return [repr(t + 0.0) for t in ticks]


# --- colours --------------------------------------------------------------------------------


def condition_colours(experiments: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Condition name -> colour, for every table and plot of the report.

    The baseline has its own colour; every other condition gets, when it first appears (in
    experiment order, then condition order), the first palette colour that no other condition
    of its experiment has yet, so the conditions of one experiment differ (up to the
    palette's size) and a name shared by experiments keeps one colour everywhere.
    """
    colours = {BASELINE: BASELINE_COLOUR}
    for experiment in experiments:
        names = [c["name"] for c in experiment.get("conditions", ())]
        for k, name in enumerate(names):
            if name in colours:
                continue
            taken = {colours[n] for n in names if n in colours}
            free = [c for c in PALETTE if c not in taken]
            colours[name] = free[0] if free else PALETTE[k % len(PALETTE)]
    return colours


# --- the numbers plotted --------------------------------------------------------------------


def _t975(df: int) -> float:
    from scipy import stats  # lazy: scipy.stats takes seconds to import

    return float(stats.t.ppf(0.975, df))


def summary(values: Sequence[float]) -> tuple[float, float, float] | None:
    """(mean, CI low, CI high) of ``values`` (t-based 95%), or ``None`` for no values."""
    if not values:
        return None
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, mean, mean
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = _t975(n - 1) * sd / math.sqrt(n)
    return mean, mean - half, mean + half


def numbers(column: Sequence[Any]) -> dict[int, float]:
    """Replicate -> value for a metric's finite numbers (flags, text and gaps left out)."""
    found = {}
    for i, v in enumerate(column):
        x = None if isinstance(v, bool | str) else finite(v)
        if x is not None:
            found[i] = x
    return found


def paired_differences(
    conditions: Sequence[Mapping[str, Any]], metric: str
) -> list[tuple[str, list[float]]]:
    """(treatment, treatment minus baseline per replicate) for each treatment whose
    replicates pair with the baseline's (the same seeds); empty without a baseline."""
    base = next((c for c in conditions if c["name"] == BASELINE), None)
    if base is None:
        return []
    b = numbers(base["metrics"].get(metric, []))
    diffs = []
    for c in conditions:
        if c is base or c["seeds"] != base["seeds"]:
            continue  # replicates pair only when they share seeds
        t = numbers(c["metrics"].get(metric, []))
        diffs.append((c["name"], [t[i] - b[i] for i in sorted(b) if i in t]))
    return diffs


# --- drawing --------------------------------------------------------------------------------


def strip_plot(
    plot_id: str,
    title: str,
    groups: Sequence[tuple[str, Sequence[float]]],
    colours: Mapping[str, str],
    *,
    zero: bool = False,
) -> str:
    """An SVG of points per group with mean (bar) and 95% CI (whisker), or ``""`` when there
    is nothing to draw. ``zero`` includes 0 in the axis and draws it as a labelled line."""
    values = [v for _, vs in groups for v in vs]
    if not values:
        return ""
    # the axis covers every point, every whisker and (for differences) zero
    whiskers = [x for _, vs in groups if (s := summary(vs)) is not None for x in s[1:]]
    limits = [*values, *whiskers, *([0.0] if zero else [])]
    ticks = nice_ticks(min(limits), max(limits))
    low, high = ticks[0], ticks[-1]
    inner = _H - _TOP - _BOTTOM
    right = _W - _RIGHT

    def y(v: float) -> float:
        return _TOP + _INSET + (high - v) / (high - low) * (inner - 2 * _INSET)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" '
        f'viewBox="0 0 {_W} {_H}" role="img" data-plot="{_e(plot_id)}" '
        f'aria-label="{_e(plot_id)}" font-family="system-ui,sans-serif">',
        f'<text class="plot-title" x="{_LEFT}" y="20" font-size="13" font-weight="600" '
        f'fill="#222">{_e(title)}</text>',
    ]
    for tick, label in zip(ticks, tick_labels(ticks), strict=True):
        parts.append(
            f'<line class="grid" x1="{_LEFT}" y1="{y(tick):.1f}" x2="{right}" '
            f'y2="{y(tick):.1f}" stroke="#e8e8e8"/>'
            f'<text class="tick" x="{_LEFT - 6}" y="{y(tick) + 4:.1f}" font-size="11" '
            f'text-anchor="end" fill="#444">{label}</text>'
        )
    parts.append(f'<path d="M{_LEFT} {_TOP}V{_TOP + inner}H{right}" fill="none" stroke="#999"/>')
    if zero:
        parts.append(
            f'<line class="zero" x1="{_LEFT}" y1="{y(0):.1f}" x2="{right}" y2="{y(0):.1f}" '
            f'stroke="#333" stroke-width="1.5" stroke-dasharray="6 3"/>'
            f'<text class="zero-label" x="{right - 4}" y="{y(0) - 5:.1f}" font-size="11" '
            f'text-anchor="end" fill="#333">0 = no change</text>'
        )
    step = (right - _LEFT) / max(len(groups), 1)
    for k, (name, vs) in enumerate(groups):
        parts.append(_group(name, vs, colours.get(name, "#777"), _LEFT + step * (k + 0.5), step, y))
    parts.append("</svg>")
    return "".join(parts)


def _group(
    name: str, values: Sequence[float], colour: str, center: float, step: float, y: Any
) -> str:
    """One condition's column: its points, mean bar and CI whisker, and its label."""
    parts = []
    for i, v in enumerate(values):
        jitter = ((i * 37) % 21 - 10) / 10 * step * 0.18
        parts.append(
            f'<circle class="point" cx="{center + jitter:.1f}" cy="{y(v):.1f}" r="3.5" '
            f'fill="{colour}" fill-opacity="0.75" stroke="{colour}">'
            f"<title>{_e(name)}: {number(v, 6)}</title></circle>"
        )
    stats = summary(values)
    if stats is not None:
        mean, ci_low, ci_high = stats
        half = min(step * 0.25, 40)
        parts.append(
            f'<line class="ci" x1="{center:.1f}" y1="{y(ci_low):.1f}" x2="{center:.1f}" '
            f'y2="{y(ci_high):.1f}" stroke="#222" stroke-width="2"/>'
            f'<line class="mean" x1="{center - half:.1f}" y1="{y(mean):.1f}" '
            f'x2="{center + half:.1f}" y2="{y(mean):.1f}" stroke="#222" '
            f'stroke-width="3"><title>mean {number(mean, 6)}, 95% CI '
            f"[{number(ci_low, 6)}, {number(ci_high, 6)}]</title></line>"
        )
    parts.append(
        f'<text class="condition" x="{center:.1f}" y="{_H - _BOTTOM + 18}" font-size="12" '
        f'font-weight="600" text-anchor="middle" fill="{colour}">{_e(name)}</text>'
        f'<text x="{center:.1f}" y="{_H - _BOTTOM + 32}" font-size="10" text-anchor="middle" '
        f'fill="#666">n={len(values)}</text>'
    )
    return "".join(parts)


def metric_figures(experiment: Mapping[str, Any], metric: str, colours: Mapping[str, str]) -> str:
    """The figures of one metric of an experiment: the values by condition and, when the
    replicates pair by seed, the paired differences to the baseline."""
    conditions = experiment["conditions"]
    name = experiment["name"]
    groups = [(c["name"], list(numbers(c["metrics"].get(metric, [])).values())) for c in conditions]
    out = []
    plot = strip_plot(f"{name}: {metric}", metric, groups, colours)
    if plot:
        out.append(
            f"<figure>{plot}<figcaption>{_e(metric)} per replicate: points, mean (bar) "
            f"and 95% CI (whisker)</figcaption></figure>"
        )
    diffs = paired_differences(conditions, metric)
    plot = strip_plot(
        f"{name}: {metric} paired",
        f"{metric}: treatment \N{MINUS SIGN} baseline",
        diffs,
        colours,
        zero=True,
    )
    if plot:
        out.append(
            f"<figure>{plot}<figcaption>{_e(metric)}: treatment minus baseline, replicate "
            f"by replicate (same seeds)</figcaption></figure>"
        )
    return f"<div class='metric'>{''.join(out)}</div>" if out else ""

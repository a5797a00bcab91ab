"""The HTML report: one self-contained file (inline CSS and SVG, no scripts, no fetches).

Per experiment and metric, a strip plot of the per-replicate values by condition with each
condition's mean and 95% CI, a plot of the paired differences to the baseline when the
replicates pair by seed, and the verdict table. The SVG is written here rather than with
matplotlib: a few dozen lines keep the report dependency-free and byte-for-byte reproducible.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

from .._engine.numbers import finite, number

_W, _H, _PAD = 520, 220, 48
_COLORS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3")
_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px}
th{background:#f3f3f3}.passed{color:#1b7f3b}.failed,.error{color:#b3261e}
.skipped,.inconclusive{color:#8a6d00}figure{display:inline-block;margin:0 1em 1em 0}
figcaption{font-size:90%;color:#555}svg{background:#fff;border:1px solid #ddd}
pre{white-space:pre-wrap;background:#f8f8f8;padding:.5em}
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _t975(df: int) -> float:
    from scipy import stats  # lazy: scipy.stats takes seconds to import

    return float(stats.t.ppf(0.975, df))


def _summary(values: Sequence[float]) -> tuple[float, float, float] | None:
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


def _numbers(column: Sequence[Any]) -> list[tuple[int, float]]:
    """The (replicate, value) pairs of a metric's finite numbers (flags and text left out)."""
    found = []
    for i, v in enumerate(column):
        x = None if isinstance(v, bool | str) else finite(v)
        if x is not None:
            found.append((i, x))
    return found


def _strip_plot(title: str, groups: Sequence[tuple[str, list[float]]], zero: bool) -> str:
    """An SVG of points per group with mean (bar) and 95% CI (whisker)."""
    values = [v for _, vs in groups for v in vs] + ([0.0] if zero else [])
    if not values:
        return ""
    low, high = min(values), max(values)
    if high == low:
        low, high = low - 1, high + 1
    span = high - low
    low, high = low - 0.08 * span, high + 0.08 * span

    def y(v: float) -> float:
        return _PAD / 2 + (high - v) / (high - low) * (_H - _PAD)

    step = (_W - _PAD) / max(len(groups), 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" role="img" '
        f'data-plot="{_e(title)}" aria-label="{_e(title)}">',
        f'<line x1="{_PAD}" y1="{_PAD / 2}" x2="{_PAD}" y2="{_H - _PAD / 2}" stroke="#999"/>',
    ]
    for tick in (low + span * 0.08, (low + high) / 2, high - span * 0.08):
        parts.append(
            f'<text x="{_PAD - 4}" y="{y(tick) + 4:.1f}" font-size="10" text-anchor="end">'
            f"{number(tick, 3)}</text>"
        )
    if zero:
        parts.append(
            f'<line x1="{_PAD}" y1="{y(0):.1f}" x2="{_W}" y2="{y(0):.1f}" stroke="#888" '
            f'stroke-dasharray="4 3"/>'
        )
    for k, (name, vs) in enumerate(groups):
        color = _COLORS[k % len(_COLORS)]
        center = _PAD + step * (k + 0.5)
        for i, v in enumerate(vs):
            jitter = ((i * 37) % 21 - 10) / 10 * step * 0.18
            parts.append(
                f'<circle class="point" cx="{center + jitter:.1f}" cy="{y(v):.1f}" r="3" '
                f'fill="{color}" fill-opacity="0.6"><title>{_e(name)}: {number(v, 6)}</title>'
                "</circle>"
            )
        stats = _summary(vs)
        if stats is not None:
            mean, ci_low, ci_high = stats
            parts.append(
                f'<line class="ci" x1="{center:.1f}" y1="{y(ci_low):.1f}" x2="{center:.1f}" '
                f'y2="{y(ci_high):.1f}" stroke="#222" stroke-width="2"/>'
                f'<line class="mean" x1="{center - step * 0.25:.1f}" y1="{y(mean):.1f}" '
                f'x2="{center + step * 0.25:.1f}" y2="{y(mean):.1f}" stroke="#222" '
                f'stroke-width="3"><title>mean {number(mean, 6)}, 95% CI '
                f"[{number(ci_low, 6)}, {number(ci_high, 6)}]</title></line>"
            )
        parts.append(
            f'<text x="{center:.1f}" y="{_H - 8}" font-size="11" text-anchor="middle">'
            f"{_e(name)} (n={len(vs)})</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _experiment_section(experiment: Mapping[str, Any]) -> str:
    conditions = experiment["conditions"]
    base = next((c for c in conditions if c["name"] == "baseline"), None)
    out = [f"<section><h2>{_e(experiment['name'])}</h2>"]
    out.append(f"<p>{_e(experiment['file'])}, {_e(experiment['replicates'])} replicates</p>")
    metrics = sorted({m for c in conditions for m in c["metrics"]})
    for metric in metrics:
        groups = [
            (c["name"], [v for _, v in _numbers(c["metrics"].get(metric, []))]) for c in conditions
        ]
        plot = _strip_plot(f"{experiment['name']}: {metric}", groups, zero=False)
        out.append(
            f"<figure>{plot}<figcaption>{_e(metric)} per replicate: points, mean (bar) "
            f"and 95% CI (whisker)</figcaption></figure>"
        )
        if base is None:
            continue
        diffs = []
        for c in conditions:
            if c is base or c["seeds"] != base["seeds"]:
                continue  # replicates pair only when they share seeds
            b = dict(_numbers(base["metrics"].get(metric, [])))
            t = dict(_numbers(c["metrics"].get(metric, [])))
            diffs.append((c["name"], [t[i] - b[i] for i in sorted(b) if i in t]))
        if diffs:
            plot = _strip_plot(f"{experiment['name']}: {metric} paired", diffs, zero=True)
            out.append(
                f"<figure>{plot}<figcaption>{_e(metric)}: treatment minus baseline, "
                f"replicate by replicate (same seeds)</figcaption></figure>"
            )
    out.append(_verdict_table(experiment["verdicts"]))
    out.append("</section>")
    return "".join(out)


def _verdict_table(verdicts: Sequence[Mapping[str, Any]]) -> str:
    if not verdicts:
        return "<p>No verdicts.</p>"
    rows = [
        "<table class='verdicts'><tr><th>hypothesis</th><th>treatment</th><th>test</th>"
        "<th>change [95% CI]</th><th>p</th><th>p adjusted</th><th>detectable</th>"
        "<th>outcome</th></tr>"
    ]
    for v in verdicts:
        p, p_adjusted, mde = (
            number(v[key], missing="-") for key in ("pvalue", "pvalue_adjusted", "mde")
        )
        change = "-"
        if v.get("difference") is not None and v.get("ci_low") is not None:
            low, high = (number(v.get(k), sign=True, missing="-") for k in ("ci_low", "ci_high"))
            change = f"{number(v['difference'], sign=True)} [{low}, {high}]"
        rows.append(
            f"<tr><td>{_e(v['hypothesis'])}</td><td>{_e(v['treatment'])}</td>"
            f"<td>{_e(v['verifier'])}</td><td>{_e(change)}</td><td>{_e(p)}</td>"
            f"<td>{_e(p_adjusted)}</td><td>{_e(mde)}</td>"
            f"<td class='{_e(v['outcome'])}' title='{_e(v['message'])}'>{_e(v['outcome'])}</td>"
            f"</tr>"
        )
    rows.append("</table>")
    return "".join(rows)


def render(document: Mapping[str, Any]) -> str:
    env = document["environment"]
    git = env.get("git") or {}
    head = (
        f"Python {_e(env['python'])} on {_e(env['platform'])}"
        + (f", commit {_e(git.get('commit', '')[:12])}" if git else "")
        + (" (dirty)" if git.get("dirty") else "")
    )
    sections = "".join(_experiment_section(e) for e in document["experiments"])
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<title>crystallize report</title>"
        f"<style>{_STYLE}</style></head><body><h1>crystallize report</h1>"
        f"<p>{head}; created {_e(document['created'])}</p>{sections}</body></html>\n"
    )

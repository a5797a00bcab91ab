"""The HTML report: one self-contained file (inline CSS and SVG, no scripts, no fetches).

It answers at a glance: the tally first (``❌ 1 failed · ✅ 3 passed · 2 experiments``), then
every verdict in one table, the most severe first, each with its reason written out; then,
per experiment, plots of the metrics the hypotheses judge (the others folded away in a
``<details>``). Plots are drawn by :mod:`.plots`.

The file is byte-for-byte reproducible: it shows no wall-clock time, duration, cache count,
absolute path or working-tree state, only what the same experiments give again. Its date is
``SOURCE_DATE_EPOCH`` (UTC) when that is set (the reproducible-builds convention), else none.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from .._engine.numbers import number
from .plots import condition_colours, metric_figures
from .stagewise import stagewise_note
from .tally import ORDER, bucket, severity, tally, tally_line

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em 2em;color:#222;max-width:1200px}
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.2em;margin:1.4em 0 .3em}
.meta{color:#555;margin:.2em 0}
.tally{font-size:1.6em;font-weight:600;margin:.4em 0 .6em;padding:.3em .6em;
border-left:6px solid #1b7f3b;background:#f3f9f4}
.tally.bad{border-color:#b3261e;background:#fdf1f0}.tally.warn{border-color:#b08800;background:#fdf8e6}
.dot{display:inline-block;width:.65em;height:.65em;border-radius:50%;margin-right:.3em;
background:currentColor;vertical-align:.05em}
.b-failed,.b-error{color:#b3261e}.b-inconclusive{color:#a07800}.b-regressed{color:#c0561b}
.b-skipped{color:#6b6b6b}.b-passed{color:#1b7f3b}.b-none{color:#222}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:14px;width:100%}
td,th{border:1px solid #d5d5d5;padding:4px 8px;vertical-align:top;text-align:left}
th{background:#f3f3f3}td.num{white-space:nowrap;font-variant-numeric:tabular-nums}
td.outcome{white-space:nowrap;font-weight:600}tr.why td{border-top:none;padding:0 8px 6px 2.2em}
tbody tr:first-child td{border-bottom:none}
tr.failed,tr.error{background:#fdf1f0}tr.inconclusive,tr.regressed{background:#fdf8e6}
.reason{white-space:pre-wrap;font-family:ui-monospace,monospace;font-size:12px;margin:0}
tr.passed .reason,tr.skipped .reason{color:#666}
.swatch{display:inline-block;width:.8em;height:.8em;border-radius:2px;margin-right:.3em;
vertical-align:-1px}
.metric{display:flex;flex-wrap:wrap;gap:1em}figure{margin:0 0 1em}
figcaption{font-size:90%;color:#555}svg{background:#fff;border:1px solid #ddd}
details{margin:.5em 0 1em}summary{cursor:pointer;color:#333}
"""
_COLUMNS = 8
_WARN = {"inconclusive", "regressed", "skipped"}


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def report_date(environ: Mapping[str, str]) -> str | None:
    """``SOURCE_DATE_EPOCH`` as a UTC date (``1970-01-01``), or ``None`` when it is not set.

    Raises ``ValueError`` naming the variable and its value when it is not a whole number of
    seconds (the reproducible-builds rule: a malformed value is an error, never ignored; a
    session refuses one before it runs, see ``documents.created``).
    """
    raw = environ.get("SOURCE_DATE_EPOCH")
    if raw is None or raw == "":
        return None
    if re.fullmatch(r"[0-9]+", raw):
        try:
            return datetime.fromtimestamp(int(raw), tz=timezone.utc).date().isoformat()
        except (ValueError, OverflowError, OSError):
            pass  # past the year 9999
    msg = (
        f"SOURCE_DATE_EPOCH={raw!r} is not a date the HTML report can show: it must be a whole "
        f"number of seconds since 1970-01-01 UTC (such as the last commit's, from "
        f"'git log -1 --format=%ct'); set it to one or unset it"
    )
    raise ValueError(msg)


# --- the verdict table ----------------------------------------------------------------------


def _means(v: Mapping[str, Any]) -> str:
    if v.get("mean_baseline") is None and v.get("mean_treatment") is None:
        return "-"
    base, treated = (number(v.get(k), missing="-") for k in ("mean_baseline", "mean_treatment"))
    return f"{base} → {treated}"


def _change(v: Mapping[str, Any]) -> str:
    if v.get("difference") is None:
        return "-"
    shown = number(v["difference"], 3, sign=True)
    if v.get("ci_low") is not None and v.get("ci_high") is not None:
        low, high = number(v["ci_low"], 3, sign=True), number(v["ci_high"], 3, sign=True)
        shown += f" [{low}, {high}]"
    return shown


def _p(v: Mapping[str, Any]) -> str:
    p = number(v.get("pvalue"), 3, missing="-") + stagewise_note(v)
    if v.get("pvalue_adjusted") is not None:
        p += f" ({number(v['pvalue_adjusted'], 3)})"
    return p


def ordered_verdicts(experiments: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Every verdict of the session, the most severe first (in report order within a bucket)."""
    found = [v for e in experiments for v in e.get("verdicts", ())]
    return sorted(found, key=severity)  # stable: the document's order within a bucket


def _verdict_row(v: Mapping[str, Any], colours: Mapping[str, str]) -> str:
    kind = bucket(v)
    word = v.get("comparison") or v["outcome"]
    reported = v.get("reported_as")
    also = (
        f"<br><small>reported as {_e(reported)}</small>"
        if reported and reported != v["outcome"]
        else ""
    )
    condition = v.get("condition") or v["treatment"]
    swatch = colours.get(condition)
    mark = f"<span class='swatch' style='background:{swatch}'></span>" if swatch else ""
    metrics = ", ".join(v.get("metrics") or ()) or "-"
    return (
        f"<tr class='{_e(kind)}' data-nodeid='{_e(v.get('nodeid', ''))}'>"
        f"<td class='outcome b-{_e(kind)}'><span class='dot'></span>{_e(word)}{also}</td>"
        f"<td>{_e(v['experiment'])}</td><td>{_e(v['hypothesis'])}</td>"
        f"<td>{mark}{_e(condition)}</td><td>{_e(metrics)}</td>"
        f"<td class='num'>{_e(_means(v))}</td><td class='num'>{_e(_change(v))}</td>"
        f"<td class='num'>{_e(_p(v))}</td></tr>"
        f"<tr class='{_e(kind)} why'><td colspan='{_COLUMNS}'>"
        f"<p class='reason'>{_e(v['message'])}</p></td></tr>"
    )


def verdict_table(experiments: Sequence[Mapping[str, Any]], colours: Mapping[str, str]) -> str:
    verdicts = ordered_verdicts(experiments)
    if not verdicts:
        return "<p>No verdicts.</p>"
    head = (
        "<table class='verdicts'><thead><tr><th>outcome</th><th>experiment</th>"
        "<th>hypothesis</th><th>treatment</th><th>metric</th><th>means</th>"
        "<th>change [95% CI]</th><th>p (adj)</th></tr></thead>"
    )
    # one <tbody> per verdict: its numbers, then its reason written out across the table
    rows = "".join(f"<tbody>{_verdict_row(v, colours)}</tbody>" for v in verdicts)
    return f"{head}{rows}</table>"


# --- the experiments ------------------------------------------------------------------------


def judged_metrics(experiment: Mapping[str, Any]) -> list[str]:
    """The metrics the experiment's verdicts judge, in the order they first name them."""
    return list(
        dict.fromkeys(m for v in experiment.get("verdicts", ()) for m in v.get("metrics") or ())
    )


def _experiment_section(experiment: Mapping[str, Any], colours: Mapping[str, str]) -> str:
    conditions = experiment["conditions"]
    names = ", ".join(
        f"<span class='swatch' style='background:{colours[c['name']]}'></span>{_e(c['name'])}"
        for c in conditions
    )
    out = [
        f"<section class='experiment'><h2>{_e(experiment['name'])}</h2>",
        f"<p class='meta'>{_e(experiment['file'])} · {_e(experiment['replicates'])} "
        f"replicates · {names}</p>",
    ]
    present = sorted({m for c in conditions for m in c["metrics"]})
    judged = [m for m in judged_metrics(experiment) if m in present]
    others = [m for m in present if m not in judged]
    out += [metric_figures(experiment, m, colours) for m in judged]
    if others:
        label = "other metric" if len(others) == 1 else "other metrics"
        out.append(
            f"<details class='others'><summary>{len(others)} {label}, judged by no "
            f"hypothesis: {_e(', '.join(others))}</summary>"
            + "".join(metric_figures(experiment, m, colours) for m in others)
            + "</details>"
        )
    if not present:
        out.append("<p class='meta'>No metric values: no replicate recorded any.</p>")
    out.append("</section>")
    return "".join(out)


def headline(counts: Mapping[str, int]) -> str:
    """The tally as the report's headline: the words and order of ``tally_line``, each
    bucket's count in its colour after a dot (drawn, not an emoji: it needs no emoji font)."""
    parts = [
        f"<span class='b-{name}'><span class='dot'></span>{counts[name]} {name}</span>"
        for name in ORDER
        if counts.get(name)
    ] or ["<span class='b-none'>no verdicts</span>"]
    experiments = counts.get("experiments", 0)
    parts.append(f"{experiments} experiment{'' if experiments == 1 else 's'}")
    return " · ".join(parts)


def render(document: Mapping[str, Any], *, environ: Mapping[str, str] | None = None) -> str:
    """The report of a session document (see ``documents.session_document``).

    ``environ`` (default ``os.environ``) gives ``SOURCE_DATE_EPOCH``, the report's date.
    """
    date = report_date(os.environ if environ is None else environ)
    experiments = document["experiments"]
    counts = tally(experiments)
    tone = (
        "bad"
        if counts["failed"] or counts["error"]
        else "warn"
        if any(counts[k] for k in _WARN)
        else "good"
    )
    env = document["environment"]
    commit = (env.get("git") or {}).get("commit") or ""
    facts = [f"Python {_e(env['python'])} on {_e(env['platform'])}"]
    if commit:
        facts.append(f"commit {_e(commit[:12])}")
    if date is not None:
        facts.append(f"<time datetime='{date}'>{date}</time>")
    colours = condition_colours(experiments)
    sections = "".join(_experiment_section(e, colours) for e in experiments)
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>crystallize: {_e(tally_line(counts))}</title>"
        f"<style>{_STYLE}</style></head><body><h1>crystallize report</h1>"
        f"<p class='meta'>{' · '.join(facts)}</p>"
        f"<p class='tally {tone}' id='tally'>{headline(counts)}</p>"
        f"{verdict_table(experiments, colours)}{sections}</body></html>\n"
    )

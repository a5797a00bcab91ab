"""The Markdown summary of a session (``--crystallize-md``, ``$GITHUB_STEP_SUMMARY``), from
the session's plain-data document (see ``documents.py``).

Made to be read in five seconds: the first line is the tally, the table lists the verdicts
most severe first, a long run of passed verdicts is folded, and the messages of the problems
follow. Every user string is escaped: a name cannot break the table or become HTML, and a
message sits verbatim in a code block it cannot close.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from .._engine.numbers import number
from .stagewise import stagewise_note
from .tally import ICONS, bucket, severity, tally, tally_line

# Passed rows are folded away under <details> when there are more than this many.
FOLD_PASSED = 15
HEADER = (
    "| experiment | hypothesis | treatment | metric | means (baseline → treatment) "
    "| change [95% CI] | p (adj) | outcome |"
)
RULE = "|---|---|---|---|---|---|---|---|"
PROBLEMS = ("failed", "error", "inconclusive")

_INLINE = str.maketrans(
    {
        "\\": "\\\\",
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        "|": "\\|",
        "`": "\\`",
        "*": "\\*",
        "~": "\\~",
        "[": "\\[",
        "]": "\\]",
        "\n": " ",
        "\r": " ",
    }
)
_EDGE_UNDERSCORE = re.compile(r"(?<![^\W_])_|_(?![^\W_])")  # one that could start emphasis


def _cell(text: object) -> str:
    """``text`` as literal Markdown on one line, safe in a table cell: HTML's ``<``, ``>`` and
    ``&`` become entities, ``|`` cannot end the cell, and backticks, ``*``, ``~``, brackets
    and ``_`` at a word's edge cannot start code, emphasis or a link (``my_metric`` stays
    as it is: an underscore inside a word is literal in Markdown)."""
    escaped = str(text).translate(_INLINE)
    return _EDGE_UNDERSCORE.sub(r"\\_", escaped)


def _code_block(text: str, indent: str) -> str:
    """``text`` verbatim in a fenced code block, whose fence is longer than any run of
    backticks in ``text``, so the text cannot close it early (nothing inside is parsed)."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    body = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\n" + indent)
    return f"{indent}{fence}\n{indent}{body}\n{indent}{fence}"


def _means(v: Mapping[str, Any]) -> str:
    if v.get("mean_baseline") is None and v.get("mean_treatment") is None:
        return "-"
    before, after = v.get("mean_baseline"), v.get("mean_treatment")
    return f"{number(before, missing='-')} → {number(after, missing='-')}"


def _change(v: Mapping[str, Any]) -> str:
    if v.get("difference") is None or v.get("ci_low") is None or v.get("ci_high") is None:
        return "-"
    low, high = number(v["ci_low"], 3, sign=True), number(v["ci_high"], 3, sign=True)
    return f"{number(v['difference'], 3, sign=True)} [{low}, {high}]"


def _p(v: Mapping[str, Any]) -> str:
    raw = number(v.get("pvalue"), 3, missing="-") + stagewise_note(v)
    adjusted = v.get("pvalue_adjusted")
    return raw if adjusted is None else f"{raw} ({number(adjusted, 3)})"


def _outcome(v: Mapping[str, Any]) -> str:
    """Icon and word: the comparison's word when there is one; in plan mode, the replicates
    the pilot says are needed."""
    icon = ICONS[bucket(v)]
    plan = v.get("plan")
    if plan:
        needed = plan.get("replicates_needed")
        return f"{icon} plan: " + ("no estimate" if needed is None else f"{needed} replicates")
    return f"{icon} {_cell(v.get('comparison') or v['outcome'])}"


def _row(v: Mapping[str, Any]) -> str:
    cells = [
        _cell(v["experiment"]),
        _cell(v["hypothesis"]),
        _cell(v.get("condition") or v["treatment"]),
        _cell(", ".join(v.get("metrics") or ())) or "-",
        _means(v),
        _change(v),
        _p(v),
        _outcome(v),
    ]
    return "| " + " | ".join(cells) + " |"


def _table(verdicts: Sequence[Mapping[str, Any]]) -> list[str]:
    return [HEADER, RULE, *(_row(v) for v in verdicts)] if verdicts else []


def _messages(verdicts: Sequence[Mapping[str, Any]]) -> list[str]:
    return [
        f"- **{_cell(v['nodeid'])}** ({_cell(v.get('comparison') or v['outcome'])}):\n\n"
        + _code_block(v["message"], "  ")
        for v in verdicts
    ]


def markdown(document: Mapping[str, Any]) -> str:
    """The summary: the tally on the first line, the step cache, the verdicts most severe
    first (passed ones folded when there are more than ``FOLD_PASSED``), then the messages
    of failed, errored, inconclusive and regressed verdicts, why the others were skipped,
    and the notes."""
    if document.get("shard"):
        return _shard(document["shard"])
    experiments = document["experiments"]
    counts = document.get("tally") or tally(experiments)
    verdicts = sorted((v for e in experiments for v in e["verdicts"]), key=severity)
    cache = document["cache"]
    lines = [
        f"## crystallize: {tally_line(counts)}",
        "",
        f"{counts['verdicts']} verdict{'' if counts['verdicts'] == 1 else 's'}; step cache "
        f"{cache['hits']} hits, {cache['misses']} misses.",
    ]
    if document.get("settings", {}).get("plan"):
        lines += [
            "",
            "Plan mode: the runs were a pilot; each verdict says how many replicates detect "
            "the effect asked for with 80% power.",
        ]
    passed = [v for v in verdicts if bucket(v) == "passed"]
    folded = len(passed) > FOLD_PASSED
    shown = [v for v in verdicts if bucket(v) != "passed"] if folded else verdicts
    if shown:
        lines += ["", *_table(shown)]
    if folded:
        summary = f"<details><summary>{len(passed)} passed</summary>"
        lines += ["", summary, "", *_table(passed), "", "</details>"]
    problems = [v for v in verdicts if bucket(v) in PROBLEMS]
    if problems:
        lines += ["", "### Failed or inconclusive", "", *_messages(problems)]
    regressed = [v for v in verdicts if bucket(v) == "regressed"]
    if regressed:
        lines += ["", "### Regressed", "", *_messages(regressed)]
    skipped = [v for v in verdicts if bucket(v) == "skipped" and not v.get("plan")]
    if skipped:  # why, on one line each: a missing baseline, a quick look, a skipped step
        lines += ["", "### Skipped", ""]
        lines += [f"- {_cell(v['nodeid'])}: {_cell(v['message'])}" for v in skipped]
    notes = [f"- {_cell(v['nodeid'])}: {_cell(n)}" for v in verdicts for n in v.get("notes", ())]
    if notes:
        lines += ["", "### Notes", "", *notes]
    return "\n".join(lines) + "\n"


def _shard(shard: Mapping[str, Any]) -> str:
    """A shard's summary: what it ran, unit by unit status, and where the verdicts come from
    (a shard judges nothing: a table of verdicts would be empty, and read as none failed)."""
    k, n, entries = shard["index"], shard["count"], shard["experiments"]
    runs = sum(len(e["runs"]) for e in entries)
    lines = [
        f"## crystallize: shard {k}/{n} ran {runs} replicate{'' if runs == 1 else 's'} of "
        f"{len(entries)} experiment{'' if len(entries) == 1 else 's'}",
        "",
        f"No verdict is judged in a shard: the verdicts come from the merge of all {n} shards' "
        "JSON reports (`--crystallize-merge`).",
    ]
    if entries:
        lines += ["", "| experiment | units | runs | failed runs | units not run whole |"]
        lines.append("|---|---|---|---|---|")
    for e in entries:
        units = e["units"]
        failed = sum(u["failed_runs"] for u in units)
        broken = [u for u in units if u["status"] not in ("ran", "failed")]
        name = _cell(f"{e['file']}::{e['name']}")
        lines.append(f"| {name} | {len(units)} | {len(e['runs'])} | {failed} | {len(broken)} |")
    return "\n".join(lines) + "\n"

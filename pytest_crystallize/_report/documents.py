"""Machine-readable outputs of a session: the JSON report and the Markdown summary.

Both are built from one plain-data document (:func:`session_document`), written by the
process that owns the session, atomically. The JSON schema is in ``docs/report-schema.md``.
"""

from __future__ import annotations

import json
import platform
import re
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from .._engine.atomic import write_report
from .._engine.cache import CacheStats
from .._engine.numbers import number
from .._engine.plain import plain
from .._engine.results import build_metrics
from .._engine.runs import RunResult
from .._engine.verdict import Verdict

SCHEMA_VERSION = 1
_PACKAGES = ("pytest-crystallize", "pytest", "pluggy", "pytest-xdist", "scipy", "numpy")


def _git(root: Path) -> dict[str, Any] | None:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5
        )
        if commit.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}


def environment(root: Path) -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "python": sys.version.split()[0],
        "implementation": sys.implementation.name,
        "platform": platform.platform(),
        "packages": versions,
        "git": _git(root),
    }


def experiment_document(
    *,
    name: str,
    file: str,
    replicates: int,
    conditions: Sequence[str],
    runs: Sequence[RunResult],
    verdicts: Iterable[tuple[str, str, Verdict]],
    fingerprint: str,
) -> dict[str, Any]:
    """One experiment: its conditions with per-replicate values and seeds, and its verdicts."""
    metrics = build_metrics(runs, conditions, replicates)
    return {
        "name": name,
        "file": file,
        "replicates": replicates,
        "fingerprint": fingerprint,
        "conditions": [
            {
                "name": c.name,
                "seeds": list(c.seeds),
                "failed_replicates": list(c.failed),
                "metrics": plain(c.metrics, finite=True),
            }
            for c in metrics.values()
        ],
        "verdicts": [
            plain({**v.to_json(), "nodeid": nodeid, "reported_as": reported}, finite=True)
            for nodeid, reported, v in verdicts
        ],
    }


def session_document(
    *,
    root: Path,
    experiments: Sequence[Mapping[str, Any]],
    cache: CacheStats,
    settings: Mapping[str, Any],
) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "settings": dict(settings),
        "environment": environment(root),
        "cache": {
            "hits": cache.hits,
            "misses": cache.misses,
            "rejected": cache.rejected,
            "bytes_written": cache.bytes_written,
            "seconds_saved": round(cache.seconds_saved, 6),
        },
        "experiments": list(experiments),
    }


def write_json(path: Path, document: Mapping[str, Any]) -> None:
    """Write the JSON report where ``path`` leads (see ``write_report``)."""
    write_report(path, json.dumps(document, indent=2, allow_nan=False) + "\n")


# --- Markdown -----------------------------------------------------------------------------


def _change(v: Mapping[str, Any]) -> str:
    if v.get("difference") is None or v.get("ci_low") is None or v.get("ci_high") is None:
        return "-"
    low, high = number(v["ci_low"], 3, sign=True), number(v["ci_high"], 3, sign=True)
    return f"{number(v['difference'], 3, sign=True)} [{low}, {high}]"


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


_ICONS = {"passed": "✅", "failed": "❌", "error": "💥", "skipped": "⏭️", "inconclusive": "❔"}


def markdown(document: Mapping[str, Any]) -> str:
    """The summary table plus the messages of failed, errored and inconclusive verdicts."""
    rows = [
        "| experiment | hypothesis | treatment | change [95% CI] | p (raw / adjusted) | outcome |",
        "|---|---|---|---|---|---|",
    ]
    problems = []
    notes = []
    for experiment in document["experiments"]:
        for v in experiment["verdicts"]:
            outcome = v["outcome"]
            rows.append(
                f"| {_cell(v['experiment'])} | {_cell(v['hypothesis'])} | {_cell(v['treatment'])}"
                f" | {_change(v)} | {number(v['pvalue'], 3, missing='-')} / "
                f"{number(v['pvalue_adjusted'], 3, missing='-')} | "
                f"{_ICONS.get(outcome, '')} {_cell(outcome)} |"
            )
            notes += [f"- {_cell(v['nodeid'])}: {_cell(n)}" for n in v.get("notes", [])]
            if outcome in ("failed", "error", "inconclusive"):
                problems.append(
                    f"- **{_cell(v['nodeid'])}** ({_cell(outcome)}):\n\n"
                    + _code_block(v["message"], "  ")
                )
    total = sum(len(e["verdicts"]) for e in document["experiments"])
    cache = document["cache"]
    lines = [
        "## crystallize",
        "",
        f"{total} verdicts in {len(document['experiments'])} experiments; step cache "
        f"{cache['hits']} hits, {cache['misses']} misses.",
        "",
        *rows,
    ]
    if problems:
        lines += ["", "### Failed or inconclusive", "", *problems]
    if notes:
        lines += ["", "### Notes", "", *notes]
    return "\n".join(lines) + "\n"


def write_markdown(path: Path, text: str, *, append: bool = False) -> None:
    """Write (or, with ``append``, add to the end of) the Markdown where ``path`` leads."""
    write_report(path, text, append=append)

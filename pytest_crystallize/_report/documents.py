"""The session as one plain-data document (:func:`session_document`): the JSON report, and
what the Markdown summary (``markdown.py``) and the HTML report show. Written by the process
that owns the session, atomically. The JSON schema is in ``docs/report-schema.md``.
"""

from __future__ import annotations

import json
import os
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
from .._engine.errors import CrystallizeUsageError
from .._engine.plain import plain
from .._engine.results import build_metrics
from .._engine.runs import RunResult
from .._engine.verdict import Verdict
from .tally import tally

SCHEMA_VERSION = 4
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
    sequential: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One experiment: its conditions with per-replicate values and seeds, its verdicts, and
    its sequential design (looks, schedule, the look that decided it and the replicates per
    condition it used) or None."""
    metrics = build_metrics(runs, conditions, replicates)
    return {
        "name": name,
        "file": file,
        "replicates": replicates,
        "fingerprint": fingerprint,
        "sequential": dict(sequential) if sequential is not None else None,
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


def created(environ: Mapping[str, str] = os.environ) -> str:
    """When the document was made, ISO 8601 in UTC to the second: now, or the time
    ``SOURCE_DATE_EPOCH`` gives (whole seconds since 1970-01-01 UTC) when it is set, so that
    a report can be reproduced byte for byte."""
    value = environ.get("SOURCE_DATE_EPOCH")
    if value is None or value == "":
        return datetime.now(timezone.utc).isoformat(timespec="seconds")
    moment = None
    if re.fullmatch(r"[0-9]+", value):
        try:
            moment = datetime.fromtimestamp(int(value), timezone.utc)
        except (ValueError, OverflowError, OSError):
            moment = None  # past the year 9999
    if moment is None:
        msg = (
            f"SOURCE_DATE_EPOCH={value!r}: expected the time of the reports as whole seconds "
            f"since 1970-01-01 UTC, such as 1700000000; set it to such a number or unset it"
        )
        raise CrystallizeUsageError(msg)
    return moment.isoformat(timespec="seconds")


def session_document(
    *,
    root: Path,
    experiments: Sequence[Mapping[str, Any]],
    cache: CacheStats,
    settings: Mapping[str, Any],
) -> dict[str, Any]:
    """The session: settings, environment, step cache, experiments, and the ``tally`` of their
    verdicts by bucket (``tally.py``)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "created": created(),
        "settings": dict(settings),
        "environment": environment(root),
        "cache": {
            "hits": cache.hits,
            "misses": cache.misses,
            "rejected": cache.rejected,
            "bytes_written": cache.bytes_written,
            "seconds_saved": round(cache.seconds_saved, 6),
        },
        "tally": tally(experiments),
        "experiments": list(experiments),
        "shard": None,  # a shard's runs for the merge (``_harness/shards.py``)
        "merge": None,  # the shards a merge judged (``_harness/merge.py``)
    }


def write_json(path: Path, document: Mapping[str, Any]) -> None:
    """Write the JSON report where ``path`` leads (see ``write_report``)."""
    write_report(path, json.dumps(document, indent=2, allow_nan=False) + "\n")


def write_markdown(path: Path, text: str, *, append: bool = False) -> None:
    """Write (or, with ``append``, add to the end of) the Markdown where ``path`` leads."""
    write_report(path, text, append=append)

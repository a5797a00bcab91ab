"""The session's documents: the JSON report, Markdown (and the GitHub step summary), HTML."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

from .._engine.atomic import write_atomic
from .._engine.cache import CacheStats
from .._engine.fingerprint import fingerprint
from .._report.documents import (
    experiment_document,
    markdown,
    session_document,
    write_json,
    write_markdown,
)
from .tracking import Tracked


def document(
    root: Path, tracked: Iterable[Tracked], cache: CacheStats, settings: Mapping[str, Any]
) -> dict[str, Any]:
    """The session as plain data, from the experiments it selected."""
    experiments = [
        experiment_document(
            name=t.name,
            file=t.path.relative_to(root).as_posix(),
            replicates=t.experiment.replicates,
            conditions=t.conditions_selected(),
            runs=t.runs,
            verdicts=t.reported,
            fingerprint=fingerprint(t.experiment),
        )
        for t in tracked
        if t.selected
    ]
    return session_document(root=root, experiments=experiments, cache=cache, settings=settings)


def write_documents(config: pytest.Config, make: Callable[[], dict[str, Any]]) -> None:
    """Write the documents the options ask for (``make`` builds the data only then)."""
    targets = {
        "json": config.getoption("crystallize_json"),
        "md": config.getoption("crystallize_md"),
        "html": config.getoption("crystallize_html"),
    }
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if config.getoption("crystallize_no_step_summary"):
        summary = None
    if not any(targets.values()) and not summary:
        return
    data = make()
    if targets["json"]:
        write_json(Path(targets["json"]), data)
    text = markdown(data)
    if targets["md"]:
        write_markdown(Path(targets["md"]), text)
    if summary:
        write_markdown(Path(summary), text, append=True)
    if targets["html"]:
        from .._report.html import render  # lazy: only --crystallize-html needs it

        write_atomic(Path(targets["html"]), render(data))

"""The session's documents: the JSON report, Markdown (and the GitHub step summary), HTML."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

from .._engine.atomic import write_report
from .._engine.cache import CacheStats
from .._engine.fingerprint import fingerprint
from .._report.documents import (
    experiment_document,
    session_document,
    write_json,
    write_markdown,
)
from .._report.markdown import markdown
from .looks import sequential_document
from .targets import REPORT_OPTIONS, STEP_SUMMARY, describe, step_summary
from .tracking import Tracked


def document(
    root: Path, tracked: Iterable[Tracked], cache: CacheStats, settings: Mapping[str, Any]
) -> dict[str, Any]:
    """The session as plain data, from the experiments it selected. A sequential experiment
    decided early holds the replicates of the looks up to the decision only."""
    experiments = []
    for t in tracked:
        if not t.selected:
            continue
        sequential = sequential_document(t)
        used = sequential and sequential["replicates_used"]
        experiments.append(
            experiment_document(
                name=t.name,
                file=t.path.relative_to(root).as_posix(),
                replicates=used if isinstance(used, int) else t.experiment.replicates,
                conditions=t.conditions_selected(),
                runs=t.runs,
                verdicts=t.reported,
                fingerprint=fingerprint(t.experiment),
                sequential=sequential,
            )
        )
    return session_document(root=root, experiments=experiments, cache=cache, settings=settings)


def write_documents(session: pytest.Session, make: Callable[[], dict[str, Any]]) -> list[str]:
    """Write the documents the options ask for (``make`` builds the data only then).

    Returns one line per document that could not be written (which, where, why), for the end
    of the terminal summary; none of them ends the session with a traceback. A report the
    user asked for that could not be written makes a passing session fail with exit code 3
    (``INTERNAL_ERROR``: the tests passed, the session's output did not get out); a session
    that already failed keeps its own code. The GitHub step summary is best effort, as it is
    when checked at the start: its line is said and the exit code stays.
    """
    config = session.config
    targets = [(name, config.getoption(name)) for name in REPORT_OPTIONS]
    summary = step_summary(config)
    if not any(value for _, value in targets) and not summary:
        return []
    data = make()
    text = markdown(data)
    writes: list[tuple[str, str, Callable[[Path], None]]] = []
    for name, value in targets:
        if value:
            writes.append((describe(name), value, _writer(name, data, text)))
    if summary:
        writes.append((STEP_SUMMARY, summary, lambda p: write_markdown(p, text, append=True)))
    failed = []
    for what, value, write in writes:
        try:
            write(Path(value))
        except OSError as exc:
            why = exc.strerror or str(exc)
            failed.append(f"crystallize: could not write {what} to {value!r}: {why}")
            if what != STEP_SUMMARY and session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.INTERNAL_ERROR
    return failed


def _writer(name: str, data: Mapping[str, Any], text: str) -> Callable[[Path], None]:
    if name == "crystallize_json":
        return lambda path: write_json(path, data)
    if name == "crystallize_md":
        return lambda path: write_markdown(path, text)
    from .._report.html import render  # lazy: only --crystallize-html needs it

    return lambda path: write_report(path, render(data))

"""Where the session's reports go, checked when the session is configured.

A report path that cannot be written (``--crystallize-json``, ``--crystallize-md``,
``--crystallize-html`` or their ini twins) is a usage error before anything runs, rather than
a lost report after an hour of experiments. ``$GITHUB_STEP_SUMMARY`` is not the user's choice
but the CI's: an unwritable one is a warning, and the session goes on without the step
summary. Only the process that owns the session checks: xdist workers write no reports.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .._engine.atomic import report_problem
from .._engine.errors import CrystallizeUsageError
from .._report.documents import created

REPORT_OPTIONS = ("crystallize_json", "crystallize_md", "crystallize_html")
_KINDS = {
    "crystallize_json": "the JSON report",
    "crystallize_md": "the Markdown summary",
    "crystallize_html": "the HTML report",
}
STEP_SUMMARY = "the GitHub step summary ($GITHUB_STEP_SUMMARY)"


def describe(name: str) -> str:
    """``"the JSON report (--crystallize-json)"``: what a report option writes, and the flag."""
    return f"{_KINDS[name]} (--{name.replace('_', '-')})"


def step_summary(config: pytest.Config) -> str | None:
    """The step summary file to append to: ``$GITHUB_STEP_SUMMARY``, unless opted out."""
    if config.getoption("crystallize_no_step_summary"):
        return None
    return os.environ.get("GITHUB_STEP_SUMMARY") or None


def check_targets(config: pytest.Config, from_ini: set[str]) -> None:
    """Refuse an unwritable report path (``pytest.UsageError``, exit code 4); warn once about
    an unwritable ``$GITHUB_STEP_SUMMARY`` and turn the step summary off. ``from_ini``: the
    report options whose value came from the ini file (the message names the ini key)."""
    if hasattr(config, "workerinput"):
        return  # the controller checked; workers write no reports
    for name in REPORT_OPTIONS:
        value = config.getoption(name)
        if not value:
            continue
        problem = report_problem(Path(value))
        if problem is None:
            continue
        flag = f"ini {name}" if name in from_ini else f"--{name.replace('_', '-')}"
        msg = (
            f"{flag} {value!r}: cannot write {_KINDS[name]} there: {problem}; choose a "
            f"file path you can write to (missing folders are created)"
        )
        raise pytest.UsageError(msg)
    summary = step_summary(config)
    problem = None if summary is None else report_problem(Path(summary), append=True)
    if problem is not None:
        msg = (
            f"$GITHUB_STEP_SUMMARY {summary!r}: cannot append the Markdown summary there: "
            f"{problem}; the session goes on without the step summary (point "
            f"GITHUB_STEP_SUMMARY at a writable file, or pass --crystallize-no-step-summary)"
        )
        config.issue_config_time_warning(pytest.PytestConfigWarning(msg), stacklevel=2)
        config.option.crystallize_no_step_summary = True
    if any(config.getoption(name) for name in REPORT_OPTIONS) or step_summary(config):
        try:
            created()  # a malformed SOURCE_DATE_EPOCH is refused now, not after the runs
        except CrystallizeUsageError as exc:
            raise pytest.UsageError(str(exc)) from None

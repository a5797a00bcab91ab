"""How a verdict becomes pytest reports: setup, call and teardown, as a test's would be.

Terminal, ``-rA``, JUnit XML, ``--lf``, ``--sw`` and the exit code then treat it as a test. An
error is a failed setup; a skip, a skipped setup; an ``xfail`` mark turns a failed verdict
into XFAIL and a passed one into XPASS (a failure when strict), as pytest would for a test.
"""

from __future__ import annotations

from typing import Any

import pytest

from .._engine.verdict import Verdict
from .collect import definition_line
from .terminal import VERDICT_ATTR
from .tracking import Tracked

INCONCLUSIVE_AS = {"fail": "failed", "skip": "skipped", "pass": "passed"}


def send(config: pytest.Config, tracked: Tracked, verdict: Verdict, inconclusive: str) -> None:
    """Report ``verdict`` of ``tracked`` through the hooks; ``inconclusive`` is what an
    inconclusive verdict counts as (``--crystallize-inconclusive``)."""
    file = tracked.path.relative_to(config.rootpath).as_posix()
    nodeid = f"{file}::{verdict.name}"
    location = (file, definition_line(tracked.experiment, tracked.path), verdict.name)
    keywords: dict[str, Any] = dict.fromkeys(
        (tracked.name, verdict.hypothesis, verdict.treatment, "crystallize"), 1
    )
    hook = config.hook
    hook.pytest_runtest_logstart(nodeid=nodeid, location=location)

    def report(when: Any, outcome: Any, longrepr: Any, **extra: Any) -> None:
        rep = pytest.TestReport(nodeid, location, keywords, outcome, longrepr, when, **extra)
        setattr(rep, VERDICT_ATTR, verdict.to_json())
        hook.pytest_runtest_logreport(report=rep)

    outcome = verdict.outcome
    if outcome == "inconclusive":
        outcome = INCONCLUSIVE_AS[inconclusive]
    xfail = (tracked.wanted or {}).get((verdict.hypothesis, verdict.treatment))
    tracked.reported.append((nodeid, outcome, verdict))
    if outcome == "error":  # never hidden by an xfail mark: the data is not valid
        report("setup", "failed", verdict.message)
    elif outcome == "skipped":
        report("setup", "skipped", (file, location[1], f"{verdict.name}: {verdict.message}"))
    elif xfail is not None:  # a known regression, recorded as such
        reason, strict = xfail
        report("setup", "passed", None)
        if outcome == "failed":
            report("call", "skipped", verdict.message, wasxfail=reason)
        elif strict:
            report("call", "failed", f"[XPASS(strict)] {reason}\n{verdict.message}")
        else:
            report("call", "passed", None, wasxfail=reason)
    else:
        report("setup", "passed", None)
        report("call", outcome, verdict.message)
    report("teardown", "passed", None, user_properties=verdict.properties())
    hook.pytest_runtest_logfinish(nodeid=nodeid, location=location)

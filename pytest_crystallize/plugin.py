"""The pytest plugin: ``pytest --crystallize`` collects experiments as test items.

Every hook here is a few lines that delegate. Nothing heavy is imported until
``--crystallize`` (or ini ``crystallize = true``) turns collection on, because this module is
loaded by every pytest run of every project that installs pytest-crystallize.
"""

from __future__ import annotations

import argparse
import fnmatch
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ._harness.board import VerdictBoard

_ENABLED = pytest.StashKey[bool]()
_BOARD: pytest.StashKey[VerdictBoard] = pytest.StashKey()

# --- options ------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        msg = f"expected a positive whole number of replicates, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _plan_effect(text: str) -> tuple[float, bool]:
    relative = text.endswith("%")
    try:
        value = float(text[:-1] if relative else text)
    except ValueError:
        value = 0.0
    if value == 0:
        msg = f"expected an effect such as 0.5 (absolute) or 5% (of the baseline), got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return (value / 100 if relative else value), relative


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("crystallize", "crystallize (statistically gated experiments)")
    group.addoption(
        "--crystallize",
        action="store_true",
        default=False,
        help="collect experiment files (ini crystallize_files) and report their verdicts",
    )
    group.addoption(
        "--crystallize-replicates",
        type=_positive_int,
        default=None,
        metavar="N",
        help="run every experiment with N replicates instead of its own count (quick checks)",
    )
    group.addoption(
        "--crystallize-no-cache",
        action="store_true",
        default=False,
        help="do not read or write the step cache in this run",
    )
    group.addoption(
        "--crystallize-cache-clear",
        action="store_true",
        default=False,
        help="empty the step cache (in .pytest_cache) before running",
    )
    group.addoption(
        "--crystallize-correction",
        choices=("holm", "bonferroni", "bh", "none"),
        default=None,
        help="adjust p-values over each experiment's comparisons (default: ini, else holm)",
    )
    group.addoption(
        "--crystallize-inconclusive",
        choices=("fail", "skip", "pass"),
        default="fail",
        help="what an inconclusive gate counts as (default: fail)",
    )
    group.addoption(
        "--crystallize-plan",
        type=_plan_effect,
        default=None,
        metavar="EFFECT",
        help="pilot run: report the replicates needed to detect EFFECT (0.5, or 5%% of the "
        "baseline) with 80%% power, instead of gating",
    )
    group.addoption(
        "--crystallize-json",
        default=None,
        metavar="PATH",
        help="write the session's experiments, runs and verdicts as JSON",
    )
    group.addoption(
        "--crystallize-md",
        default=None,
        metavar="PATH",
        help="write a Markdown summary of the verdicts (also appended to $GITHUB_STEP_SUMMARY)",
    )
    group.addoption(
        "--crystallize-no-step-summary",
        action="store_true",
        default=False,
        help="do not append the Markdown summary to $GITHUB_STEP_SUMMARY",
    )
    group.addoption(
        "--crystallize-html",
        default=None,
        metavar="PATH",
        help="write a self-contained HTML report with plots of every metric",
    )
    group.addoption(
        "--crystallize-save",
        default=None,
        metavar="NAME",
        help="save each experiment's runs as baseline NAME (.crystallize/baselines/NAME.json)",
    )
    group.addoption(
        "--crystallize-compare",
        default=None,
        metavar="NAME",
        help="compare each experiment's baseline condition with the saved baseline NAME",
    )
    group.addoption(
        "--crystallize-compare-fail",
        action="append",
        default=[],
        metavar="METRIC:+-MARGIN",
        help="gate a comparison: 'total:-5%%' fails when total falls by more than 5%% "
        "(non-inferiority); repeatable",
    )
    parser.addini(
        "crystallize_correction",
        default="holm",
        help="multiple-comparison correction: holm (default), bonferroni, bh or none",
    )
    parser.addini(
        "crystallize_cache_max_mb",
        type="string",
        default="",
        help="cap the step cache at this many MB; least recently used entries go first",
    )
    parser.addini(
        "crystallize",
        type="bool",
        default=False,
        help="collect experiment files without --crystallize",
    )
    parser.addini(
        "crystallize_files",
        type="args",
        default=["experiment_*.py", "*_experiment.py"],
        help="glob patterns of experiment files (default: experiment_*.py *_experiment.py)",
    )


# --- configuration ------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    enabled = bool(config.getoption("crystallize") or config.getini("crystallize"))
    config.stash[_ENABLED] = enabled
    if not enabled:
        return
    from ._engine.errors import CrystallizeUsageError
    from ._engine.hypotheses import check_correction
    from ._harness import board as _verdicts
    from ._harness import collect as _collect

    try:  # bad settings are usage errors: a clear line and exit code 4, not a traceback
        check_correction(config.getini("crystallize_correction"), "ini crystallize_correction")
        config.stash[_collect.REPLICATES] = config.getoption("crystallize_replicates")
        _collect.configure_cache(config)
        _collect.configure_upstream(config)
        board = None if hasattr(config, "workerinput") else _verdicts.VerdictBoard(config)
    except CrystallizeUsageError as exc:
        raise pytest.UsageError(str(exc)) from None
    if config.pluginmanager.hasplugin("xdist"):
        from ._harness.xdist import XdistHooks

        config.pluginmanager.register(XdistHooks(config), "crystallize-xdist")
    if board is not None:  # the process that owns the session decides the verdicts
        config.stash[_BOARD] = board
        config.pluginmanager.register(board, "crystallize-verdicts")


# --- collection ---------------------------------------------------------------------------


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    config = parent.config
    if not config.stash.get(_ENABLED, False) or file_path.suffix != ".py":
        return None
    patterns = config.getini("crystallize_files")
    if not parent.session.isinitpath(file_path) and not any(
        fnmatch.fnmatch(file_path.name, pattern) for pattern in patterns
    ):
        return None
    from ._harness.collect import ExperimentFile

    return ExperimentFile.from_parent(parent, path=file_path)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.stash.get(_ENABLED, False) and config.getoption("lf", False):
        from ._harness.collect import rerun_failed_experiments

        rerun_failed_experiments(config, items)


# --- running ------------------------------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if call.when == "call" and item.config.stash.get(_ENABLED, False):
        from ._harness.collect import attach_runs

        attach_runs(item, report)
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    if session.config.stash.get(_ENABLED, False):
        from ._harness.collect import finish_cache, teardown_runtimes

        teardown_runtimes(session.config)
        finish_cache(session.config)


# --- reporting ----------------------------------------------------------------------------


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> Any:
    if config.stash.get(_ENABLED, False):
        from ._harness.terminal import verdict_status

        return verdict_status(report)
    return None


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    board = config.stash.get(_BOARD, None)
    if board is not None and (board.verdicts or board.cache.hits or board.cache.misses):
        from ._harness.terminal import write_summary

        write_summary(terminalreporter, board.verdicts, board.cache)


def pytest_report_collectionfinish(config: pytest.Config, items: list[pytest.Item]) -> Any:
    if config.stash.get(_ENABLED, False) and config.getoption("collectonly"):
        from ._harness.collect import verdict_ids

        ids = verdict_ids(items)
        if ids:
            return [f"{len(ids)} verdicts, reported once their chunks have run:"] + [
                f"  {nodeid}" for nodeid in ids
            ]
    return None


def pytest_unconfigure(config: pytest.Config) -> None:
    if config.stash.get(_ENABLED, False):
        from ._harness.collect import unconfigure_upstream

        unconfigure_upstream()

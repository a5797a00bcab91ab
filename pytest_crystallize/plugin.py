"""The pytest plugin: ``pytest --crystallize`` collects experiments as test items.

Every hook here is a few lines that delegate. Nothing heavy is imported until
``--crystallize`` (or ini ``crystallize = true``) turns collection on, because this module is
loaded by every pytest run of every project that installs pytest-crystallize.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ._harness.options import add_options, resolve_settings, setting

if TYPE_CHECKING:
    from ._harness.board import VerdictBoard

_ENABLED = pytest.StashKey[bool]()
_BOARD: pytest.StashKey[VerdictBoard] = pytest.StashKey()

# --- options ------------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)  # one row per setting: a --flag and its ini twin (_harness/options.py)


# --- configuration ------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    enabled = bool(setting(config, "crystallize"))
    config.stash[_ENABLED] = enabled
    if not enabled:
        return
    resolve_settings(config)  # a bad ini value is a usage error before anything runs
    # Deferred, as every import of the harness below: --crystallize is on from here.
    from ._engine.errors import CrystallizeUsageError  # deferred: see above
    from ._harness import collect as _collect  # deferred: see above
    from ._harness.stepcache import configure_cache  # deferred: see above

    try:  # bad settings are usage errors: a clear line and exit code 4, not a traceback
        config.stash[_collect.REPLICATES] = setting(config, "crystallize_replicates")
        configure_cache(config)
        from ._harness.shards import check_modes  # deferred: see above

        check_modes(config)
        board = None if hasattr(config, "workerinput") else _board_class(config)(config)
    except CrystallizeUsageError as exc:
        raise pytest.UsageError(str(exc)) from None
    from ._harness.selection import Selection  # deferred: see above

    # Registered after pytest's own plugins (--lf's too), so its collection wrapper is the
    # outermost and sees what they selected.
    config.pluginmanager.register(Selection(config), "crystallize-selection")
    if setting(config, "crystallize_shard"):  # after the selection: keeps one share of it
        from ._harness.shards import ShardFilter  # deferred: only in a shard

        config.pluginmanager.register(ShardFilter(config), "crystallize-shard")
    if config.pluginmanager.hasplugin("xdist"):
        from ._harness.xdist import XdistHooks  # deferred: only with --crystallize

        config.pluginmanager.register(XdistHooks(config), "crystallize-xdist")
    if board is not None:  # the process that owns the session decides the verdicts
        config.stash[_BOARD] = board
        config.pluginmanager.register(board, "crystallize-verdicts")
        from ._harness.progress import register_progress  # deferred: only with --crystallize

        register_progress(config)  # progress lines in logs, printed by the session's owner


def _board_class(config: pytest.Config) -> type[VerdictBoard]:
    """The session owner's board: a shard's (judges nothing), a merge's, or the usual."""
    if config.getoption("crystallize_shard"):
        from ._harness.shards import ShardBoard  # deferred: only in a shard

        return ShardBoard
    if config.getoption("crystallize_merge"):
        from ._harness.merge import MergeBoard  # deferred: only in a merge

        return MergeBoard
    from ._harness.board import VerdictBoard  # deferred: only with --crystallize

    return VerdictBoard


# --- collection ---------------------------------------------------------------------------


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    config = parent.config
    if not config.stash.get(_ENABLED, False) or file_path.suffix != ".py":
        return None
    patterns = setting(config, "crystallize_files")
    if not parent.session.isinitpath(file_path) and not any(
        fnmatch.fnmatch(file_path.name, pattern) for pattern in patterns
    ):
        return None
    from ._harness.files import collector  # deferred: only with --crystallize

    return collector(parent, file_path)


def _off_hint(config: pytest.Config) -> str | None:
    """Without --crystallize, a line naming the experiment files given on the command line:
    they were not collected. Names only: nothing is imported."""
    if config.stash.get(_ENABLED, False) or config.args_source != pytest.Config.ArgsSource.ARGS:
        return None
    patterns = setting(config, "crystallize_files")
    named = dict.fromkeys(
        path.name
        for path in (config.invocation_params.dir / arg.split("::")[0] for arg in config.args)
        if path.is_file() and any(fnmatch.fnmatch(path.name, p) for p in patterns)
    )
    if not named:
        return None
    verb = "holds" if len(named) == 1 else "hold"
    return (
        f"crystallize: {', '.join(named)} {verb} experiments, which run only with "
        "--crystallize (or ini crystallize = true)"
    )


# --- running ------------------------------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if item.config.stash.get(_ENABLED, False):
        from ._harness.collect import attach_runs  # deferred: only with --crystallize

        attach_runs(item, report)
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    if session.config.stash.get(_ENABLED, False):
        from ._harness.collect import teardown_runtimes  # deferred: only with --crystallize
        from ._harness.stepcache import finish_cache  # deferred: only with --crystallize

        teardown_runtimes(session.config)
        finish_cache(session.config)


# --- reporting ----------------------------------------------------------------------------


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> Any:
    if config.stash.get(_ENABLED, False):
        from ._harness.terminal import verdict_status  # deferred: only with --crystallize

        return verdict_status(report)
    return None


def pytest_report_header(config: pytest.Config) -> str | None:
    if not config.stash.get(_ENABLED, False):
        return None
    from ._harness.layout import worker_count  # deferred: only with --crystallize
    from ._harness.stepcache import CACHE_OFF, CACHE_ROOT  # deferred: only with --crystallize
    from ._harness.terminal import header_line  # deferred: only with --crystallize

    off = config.stash.get(CACHE_OFF, None) or (
        "-p no:cacheprovider"
        if getattr(config, "cache", None) is None
        else "--crystallize-no-cache or ini crystallize_no_cache"
    )
    return header_line(
        correction=setting(config, "crystallize_correction"),
        replicates=setting(config, "crystallize_replicates"),
        cache_root=config.stash.get(CACHE_ROOT, None),
        cache_off=off,
        rootpath=config.rootpath,
        workers=worker_count(config),
    )


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    hint = _off_hint(config)
    if hint:
        terminalreporter.write_line(hint)
    board = config.stash.get(_BOARD, None)
    if board is not None and (board.verdicts or board.cache.hits or board.cache.misses):
        from ._harness.terminal import replicate_values, write_summary  # deferred: --crystallize

        verbose = config.get_verbosity() >= 2  # -vv: each verdict's values below its row
        values = replicate_values(board.tracked.values()) if verbose else None
        write_summary(terminalreporter, board.verdicts, board.cache, values)


def pytest_report_collectionfinish(config: pytest.Config, items: list[pytest.Item]) -> Any:
    if config.stash.get(_ENABLED, False):
        from ._harness.layout import shard_option  # deferred: only with --crystallize
        from ._harness.selection import collected_line  # deferred: only with --crystallize

        shard = shard_option(config)
        return collected_line(items, None if shard is None else "{}/{}".format(*shard))
    return None

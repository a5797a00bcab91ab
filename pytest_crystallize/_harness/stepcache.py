"""The step cache under pytest: where it lives, whether it can be used, and its upkeep.

The cache lives in ``.pytest_cache/d/crystallize-steps``. Every process (the owner and each
xdist worker) decides at configuration whether it can be used, the same way, so no worker
reads or writes a cache the owner refused; only the owner warns, clears and evicts.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from .._engine.cache import StepCache, check_cache_size
from .._engine.errors import CrystallizeUsageError
from .._engine.signing import UnusableKeyError, check_signing_key

CACHE_ROOT = pytest.StashKey[Path | None]()
CACHE_OFF = pytest.StashKey[str]()  # why the cache is off, when not for an option
CACHE_STARTED = pytest.StashKey[float]()  # temporary files older than this are leftovers


def configure_cache(config: pytest.Config) -> None:
    """Decide where steps are cached in this session (``None``: not at all).

    The cache lives in ``.pytest_cache`` (``-p no:cacheprovider`` or ``--crystallize-no-cache``
    turn it off). Only the process that owns the session clears it, so a worker restarted
    after a crash can never empty it mid-run. A signing key too short is a usage error; an
    untrusted key file, or a key or folder that cannot be written, turns the cache off: every
    process finds that out alike, and the owner alone warns. Under pytest-cov the owner also
    warns (:class:`CoverageCacheWarning`) that cached steps are replayed, so not measured.
    """
    check_cache_size(config.getini("crystallize_cache_max_mb"), "ini crystallize_cache_max_mb")
    started = config.stash[CACHE_STARTED] = time.time()
    config.stash[CACHE_ROOT] = None
    pytest_cache = getattr(config, "cache", None)
    if pytest_cache is None or config.getoption("crystallize_no_cache") or only_looks(config):
        return
    owner = not hasattr(config, "workerinput")
    problem = unwritable = None
    try:
        check_signing_key()  # the key file is created when a step first needs it
    except UnusableKeyError as exc:
        problem = str(exc)
    try:
        root = pytest_cache.mkdir("crystallize-steps")
    except OSError as exc:
        unwritable = (
            f"the step cache folder {exc.filename} cannot be created ({exc.strerror or exc}), "
            "so steps run uncached"
        )
    else:
        cache = StepCache(root)
        if owner and config.getoption("crystallize_cache_clear"):
            cache.clear(older_than=started)
        unwritable = None if problem else cache.check_writable()
    if unwritable is not None and problem is None:
        problem = f"{unwritable} (--crystallize-no-cache turns the cache off without a warning)"
    if problem is None:
        config.stash[CACHE_ROOT] = root
        if owner and measures_coverage(config):
            _warn(config, CoverageCacheWarning(_COVERAGE_NOTE))
        return
    config.stash[CACHE_OFF] = "not usable: see the warnings summary"
    if owner:
        _warn(config, pytest.PytestConfigWarning(f"crystallize: {problem}"))


def _warn(config: pytest.Config, warning: pytest.PytestWarning) -> None:
    """Say ``warning`` in the warnings summary, once (the owner calls it)."""
    try:
        config.issue_config_time_warning(warning, stacklevel=3)
    except Warning as exc:  # -W error: a usage error rather than a traceback
        raise CrystallizeUsageError(str(exc)) from None


class CoverageCacheWarning(pytest.PytestWarning):
    """Coverage is measured while cached steps are replayed, not run (pytest-cov is on)."""


_COVERAGE_NOTE = (
    "crystallize: coverage is measured (pytest-cov), but cached steps are replayed from the "
    "step cache, not executed, so their lines are not measured on a warm run; run coverage "
    "with --crystallize-no-cache (or ini crystallize_no_cache = true)"
)


def measures_coverage(config: pytest.Config) -> bool:
    """Whether pytest-cov measures this session: its plugin is registered (``--cov``) and
    ``--no-cov`` does not turn it off."""
    on = config.pluginmanager.hasplugin("_cov") or bool(getattr(config.option, "cov_source", None))
    return on and not getattr(config.option, "no_cov", False)


# Options with which a session only shows something (runs no step): it writes nothing.
_LOOKING = ("collectonly", "help", "showfixtures", "show_fixtures_per_test", "markers", "version")


def only_looks(config: pytest.Config) -> bool:
    """The session lists or shows something and runs nothing: no cache folder, no probe."""
    return any(getattr(config.option, name, False) for name in _LOOKING)


def finish_cache(config: pytest.Config) -> None:
    """Evict least recently used entries above ``crystallize_cache_max_mb``, and temporary
    files that writers killed before this session left (owner only)."""
    root = config.stash.get(CACHE_ROOT, None)
    limit = check_cache_size(config.getini("crystallize_cache_max_mb"), "crystallize_cache_max_mb")
    if root is not None and limit is not None and not hasattr(config, "workerinput"):
        StepCache(root).evict(limit, older_than=config.stash.get(CACHE_STARTED, None))

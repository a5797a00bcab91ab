"""BasePlugin, the plugin manager, and the default LoggingPlugin and SeedPlugin."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

from .. import hookspecs
from .errors import CrystallizeUsageError
from .seeds import default_seed_function, stable_int

if TYPE_CHECKING:
    from .context import FrozenContext
    from .experiment import Experiment
    from .results import Result
    from .run import RunPlan
    from .runs import RunResult
    from .steps import PipelineStep

_LOGGER = logging.getLogger("pytest_crystallize")
METADATA_FILENAME = "metadata.json"


class BasePlugin:
    """Base class of experiment plugins: override the hooks of :mod:`hookspecs` you need.

    Only overridden hooks are registered, so a plugin pays for nothing it does not use.
    """

    def init_hook(self, experiment: Experiment) -> None:
        """See :func:`pytest_crystallize.hookspecs.init_hook`."""

    def before_run(self, experiment: Experiment) -> None:
        """See :func:`pytest_crystallize.hookspecs.before_run`."""

    def before_replicate(self, experiment: Experiment, ctx: FrozenContext) -> None:
        """See :func:`pytest_crystallize.hookspecs.before_replicate`."""

    def before_step(self, experiment: Experiment, step: PipelineStep, ctx: FrozenContext) -> None:
        """See :func:`pytest_crystallize.hookspecs.before_step`."""

    def after_step(
        self, experiment: Experiment, step: PipelineStep, data: Any, ctx: FrozenContext
    ) -> None:
        """See :func:`pytest_crystallize.hookspecs.after_step`."""

    def save_artifacts(
        self,
        experiment: Experiment,
        step: PipelineStep,
        ctx: FrozenContext,
        files: dict[str, bytes],
    ) -> dict[str, str] | None:
        """See :func:`pytest_crystallize.hookspecs.save_artifacts`."""
        return None

    def after_run(self, experiment: Experiment, result: Result) -> None:
        """See :func:`pytest_crystallize.hookspecs.after_run`."""

    def run_experiment_loop(self, experiment: Experiment, plan: RunPlan) -> list[RunResult] | None:
        """See :func:`pytest_crystallize.hookspecs.run_experiment_loop`."""
        return None

    # Hooks an instance switches off although its class overrides them.
    _inactive_hooks: frozenset[str] = frozenset()


def overrides(plugin: BasePlugin, name: str) -> bool:
    """Return whether ``plugin``'s class overrides hook ``name`` and has not switched it off."""
    method = getattr(type(plugin), name, None)
    return (
        method is not None
        and method is not getattr(BasePlugin, name)
        and name not in plugin._inactive_hooks
    )


class PluginManager(pluggy.PluginManager):
    """A pluggy manager that treats a BasePlugin's overridden methods as implementations."""

    def __init__(self, plugins: Sequence[BasePlugin]) -> None:
        super().__init__("crystallize")
        self.add_hookspecs(hookspecs)
        # pluggy calls the last registered implementation first: register in reverse so hooks
        # run in the order of the experiment's plugin list.
        for plugin in reversed(plugins):
            self.register(plugin)

    def parse_hookimpl_opts(self, plugin: object, name: str) -> Any:
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is None and name in hookspecs.HOOK_NAMES and isinstance(plugin, BasePlugin):
            return {} if overrides(plugin, name) else None
        return opts


# --- LoggingPlugin ------------------------------------------------------------------------


class LoggingPlugin(BasePlugin):
    """Logs one line when an experiment starts and one when it ends.

    Messages go to the ``"pytest_crystallize"`` logger; no handler is installed and no global
    logging configuration changes. ``verbose=True`` adds a DEBUG line per step of every run.
    """

    def __init__(self, verbose: bool = False, log_level: str | int = "INFO") -> None:
        level = logging.getLevelName(log_level) if isinstance(log_level, str) else log_level
        if not isinstance(level, int):
            msg = (
                f"LoggingPlugin(log_level=...) must be a logging level such as 'INFO' or "
                f"logging.DEBUG, got {log_level!r}"
            )
            raise CrystallizeUsageError(msg)
        self.verbose = verbose
        self.log_level = level
        if not verbose:
            self._inactive_hooks = frozenset({"before_step", "after_step"})

    def before_run(self, experiment: Experiment) -> None:
        _LOGGER.log(
            self.log_level,
            "experiment %r: %d replicates x %d conditions, %d hypotheses",
            experiment.name,
            experiment.replicates,
            1 + len(experiment.treatments),
            len(experiment.hypotheses),
        )

    def before_step(self, experiment: Experiment, step: PipelineStep, ctx: FrozenContext) -> None:
        _LOGGER.debug(
            "%s replicate %s: step %r starts", ctx["condition"], ctx["replicate"], step.name
        )

    def after_step(
        self, experiment: Experiment, step: PipelineStep, data: Any, ctx: FrozenContext
    ) -> None:
        _LOGGER.debug(
            "%s replicate %s: step %r done", ctx["condition"], ctx["replicate"], step.name
        )

    def after_run(self, experiment: Experiment, result: Result) -> None:
        failed = len(result.errors)
        if failed:
            first = next(iter(result.errors.values()))
            _LOGGER.warning(
                "experiment %r: %d of %d runs failed, first: %s (see result.errors)",
                experiment.name,
                failed,
                len(result.runs),
                first.summary(),
            )
        else:
            _LOGGER.log(
                self.log_level, "experiment %r: %d runs done", experiment.name, len(result.runs)
            )


# --- SeedPlugin ---------------------------------------------------------------------------


class SeedPlugin(BasePlugin):
    """Decides the root seed and seeds global random state before each run.

    Parameters
    ----------
    seed:
        The root seed. ``None`` (the default) derives it from the experiment's name, so every
        run of an experiment is reproducible without configuration.
    auto_seed:
        Seed :mod:`random` and numpy's legacy global state before each run (through
        ``seed_fn``). With ``False`` global state is left alone; ``ctx.seed``, ``ctx.rng`` and
        ``ctx.rng_for`` are always seeded.
    seed_fn:
        Called with the run's seed instead of :func:`default_seed_function`, for example to
        seed torch as well.
    """

    def __init__(
        self,
        seed: int | None = None,
        auto_seed: bool = True,
        seed_fn: Callable[[int], Any] | None = None,
    ) -> None:
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            msg = f"SeedPlugin(seed=...) takes an int or None, got {seed!r} ({type(seed).__name__})"
            raise CrystallizeUsageError(msg)
        if seed is not None and seed < 0:
            msg = f"SeedPlugin(seed=...) must be >= 0, got {seed!r}"
            raise CrystallizeUsageError(msg)
        if seed_fn is not None and not callable(seed_fn):
            msg = f"SeedPlugin(seed_fn=...) must be callable, got {seed_fn!r}"
            raise CrystallizeUsageError(msg)
        self.seed = seed
        self.auto_seed = auto_seed
        self.seed_fn = seed_fn

    def root_seed(self, experiment_name: str) -> int:
        """Return the root seed for an experiment of this name."""
        if self.seed is not None:
            return self.seed
        return stable_int(f"crystallize-root:{experiment_name}")

    def global_seeder(self) -> Callable[[int], Any] | None:
        """What each run calls with its seed before its data source (``None``: nothing)."""
        if not self.auto_seed:
            return None
        return self.seed_fn or default_seed_function

    def __repr__(self) -> str:
        return f"SeedPlugin(seed={self.seed!r}, auto_seed={self.auto_seed!r})"

"""BasePlugin, the plugin manager, and the default LoggingPlugin and ArtifactPlugin."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

from .. import hookspecs
from .errors import CrystallizeUsageError
from .results import plain

if TYPE_CHECKING:
    from .context import FrozenContext
    from .experiment import Experiment
    from .results import Result, RunResult
    from .run import RunPlan
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


# --- ArtifactPlugin -----------------------------------------------------------------------


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()


def write_atomic(path: Path, *parts: bytes | str) -> None:
    """Write ``parts`` one after the other through a temporary file in the same folder and
    ``os.replace``, so a reader never sees half a file; the file gets the usual permissions
    (umask), not the temporary file's 0600: artifacts and reports are meant to be shared."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            for part in parts:
                handle.write(part.encode("utf-8") if isinstance(part, str) else part)
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ArtifactPlugin(BasePlugin):
    """Writes the files steps add with ``ctx.artifacts.add(name, data)``.

    Layout: ``<root_dir>/<experiment>/v<N>/replicate_<i>/<condition>/<step>/<name>``. With
    ``versioned=False`` every run writes ``v0``, which is emptied first so no file of an earlier
    run is mixed in; with ``versioned=True`` each run writes a new version and only the newest
    ``artifact_retention`` versions are kept (``<= 0`` keeps all), the older kept ones losing
    their files larger than ``big_file_threshold_mb``. Files are written where the run executes
    (thread, process, xdist worker) and their paths travel back on the run's result.
    """

    def __init__(
        self,
        root_dir: str | os.PathLike[str] = "data",
        versioned: bool = False,
        artifact_retention: int = 3,
        big_file_threshold_mb: float = 10,
    ) -> None:
        self.root_dir = Path(root_dir)
        self.versioned = versioned
        self.artifact_retention = artifact_retention
        self.big_file_threshold_mb = big_file_threshold_mb
        self.version_dir: Path | None = None

    def experiment_dir(self, experiment: Experiment) -> Path:
        return self.root_dir / experiment.artifact_name

    def _versions(self, experiment: Experiment) -> list[int]:
        return _version_numbers(self.experiment_dir(experiment))

    def before_run(self, experiment: Experiment) -> None:
        versions = self._versions(experiment)
        if getattr(experiment, "strategy", "rerun") == "resume":
            version = versions[-1] if versions else 0  # continue the newest version
        elif self.versioned:
            version = versions[-1] + 1 if versions else 0
        else:
            version = 0
            shutil.rmtree(self.experiment_dir(experiment) / "v0", ignore_errors=True)
        self.version_dir = self.experiment_dir(experiment) / f"v{version}"

    def completed_runs(self, experiment: Experiment) -> list[RunResult]:
        """The runs of conditions that finished without error in this version, if it was made
        from the same definition: what ``run(strategy="resume")`` need not compute again."""
        from .._store.baselines import fingerprint

        if self.version_dir is None:
            return []
        try:
            metadata = json.loads((self.version_dir / METADATA_FILENAME).read_text("utf-8"))
        except (OSError, ValueError):
            return []
        if metadata.get("fingerprint") != fingerprint(experiment):
            return []
        runs: list[RunResult] = []
        for name, _ in experiment.conditions():
            folder = self.version_dir / name
            if not (folder / ".crystallize_complete").is_file():
                continue
            try:
                saved = json.loads((folder / "results.json").read_text("utf-8"))
                loaded = _runs_from_results(name, saved)
            except (OSError, ValueError, KeyError, TypeError, IndexError):
                continue
            if sorted(r.replicate for r in loaded) == list(range(experiment.replicates)):
                runs += loaded
        return runs

    def save_artifacts(
        self,
        experiment: Experiment,
        step: PipelineStep,
        ctx: FrozenContext,
        files: dict[str, bytes],
    ) -> dict[str, str] | None:
        if self.version_dir is None:
            return None  # outside run(): experiment.apply() writes nothing
        folder = self.version_dir / f"replicate_{ctx['replicate']}" / ctx["condition"] / step.name
        for name, data in files.items():
            write_atomic(folder / name, data)
        return {name: str(folder / name) for name in files}

    def after_run(self, experiment: Experiment, result: Result) -> None:
        """Write ``metadata.json``, ``_manifest.json`` and each condition's ``results.json``.

        A condition whose every run succeeded also gets a ``.crystallize_complete`` marker.
        """
        if self.version_dir is None:
            return
        manifest: dict[str, list[str]] = {}
        for run in result.runs:
            for step_name, name, _ in run.artifacts:
                steps = manifest.setdefault(name, [])
                if step_name not in steps:
                    steps.append(step_name)
        from .._store.baselines import fingerprint

        metadata = {
            "name": experiment.artifact_name,
            "replicates": result.replicates,
            "conditions": list(result.conditions),
            "fingerprint": fingerprint(experiment),
        }
        write_atomic(self.version_dir / "_manifest.json", json.dumps(manifest).encode())
        write_atomic(self.version_dir / METADATA_FILENAME, json.dumps(metadata).encode())
        metrics = result.metrics
        for condition in (metrics.baseline, *metrics.treatments.values()):
            folder = self.version_dir / condition.name
            runs = [r for r in result.runs if r.condition == condition.name]
            payload = {
                "metrics": condition.metrics,  # per replicate; NaN written as NaN
                "seeds": condition.seeds,
                "multi": sorted(
                    {m for r in runs for m, values in r.metrics.items() if len(values) != 1}
                ),
                "artifacts": [[r.replicate, *a] for r in runs for a in r.artifacts],
            }
            write_atomic(folder / "results.json", json.dumps(payload, default=_plain).encode())
            marker = folder / ".crystallize_complete"
            if condition.failed:
                marker.unlink(missing_ok=True)
            else:
                marker.touch()
        self._apply_retention(experiment)

    def _apply_retention(self, experiment: Experiment) -> None:
        if not self.versioned or self.artifact_retention <= 0:
            return
        versions = self._versions(experiment)
        base = self.experiment_dir(experiment)
        for old in versions[: -self.artifact_retention]:
            shutil.rmtree(base / f"v{old}", ignore_errors=True)
        limit = self.big_file_threshold_mb * 1024 * 1024
        for kept in versions[-self.artifact_retention : -1]:
            for path in (base / f"v{kept}").rglob("*"):
                if path.is_file() and path.stat().st_size > limit:
                    path.unlink()

    def __repr__(self) -> str:
        return f"ArtifactPlugin(root_dir={str(self.root_dir)!r}, versioned={self.versioned!r})"


def _plain(value: Any) -> Any:
    """What json cannot encode itself (numpy values, result objects), as plain data."""
    return plain(value)


def _runs_from_results(condition: str, saved: Mapping[str, Any]) -> list[RunResult]:
    """The runs of one condition from its ``results.json`` (columns per metric)."""
    from .results import RunResult

    multi = set(saved.get("multi", ()))
    files: dict[int, list[tuple[str, str, str]]] = {}
    for replicate, step, name, path in saved.get("artifacts", ()):
        files.setdefault(replicate, []).append((step, name, path))
    runs = []
    for replicate, seed in enumerate(saved["seeds"]):
        metrics = {
            metric: tuple(column[replicate]) if metric in multi else (column[replicate],)
            for metric, column in saved["metrics"].items()
            if column[replicate] is not None
        }
        artifacts = tuple(files.get(replicate, ()))
        runs.append(RunResult(condition, replicate, seed, metrics, artifacts))
    return runs


def _load_results(version_dir: Path) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    if version_dir.is_dir():
        for folder in sorted(version_dir.iterdir()):
            results = folder / "results.json"
            if results.is_file():
                found[folder.name] = json.loads(results.read_text(encoding="utf-8"))["metrics"]
    return found


def _version_numbers(exp_dir: Path) -> list[int]:
    if not exp_dir.is_dir():
        return []
    names = (p.name[1:] for p in exp_dir.iterdir() if p.is_dir() and p.name.startswith("v"))
    return sorted(int(v) for v in names if v.isdigit())


def load_metrics(
    exp_dir: str | os.PathLike[str], version: int | None = None
) -> tuple[int, dict[str, Any], dict[str, dict[str, Any]]]:
    """Read the metrics an ArtifactPlugin saved: ``(version, baseline, {treatment: metrics})``.

    ``exp_dir`` is ``<root_dir>/<experiment>``; the newest version unless ``version`` is
    given; ``(-1, {}, {})`` when nothing was saved.
    """
    versions = _version_numbers(Path(exp_dir))
    if version is None:
        if not versions:
            return -1, {}, {}
        version = versions[-1]
    found = _load_results(Path(exp_dir) / f"v{version}")
    baseline = found.pop("baseline", {})
    return version, baseline, found


def load_all_metrics(
    exp_dir: str | os.PathLike[str], version: int | None = None
) -> tuple[int, dict[str, Any], dict[str, tuple[int, dict[str, Any]]]]:
    """Like :func:`load_metrics`, but each treatment from the newest version that has it.

    Returns ``(latest version, baseline of it, {treatment: (version, metrics)})``.
    """
    versions = [v for v in _version_numbers(Path(exp_dir)) if version is None or v <= version]
    if not versions:
        return -1, {}, {}
    treatments: dict[str, tuple[int, dict[str, Any]]] = {}
    for number in reversed(versions):
        for name, metrics in _load_results(Path(exp_dir) / f"v{number}").items():
            if name != "baseline":
                treatments.setdefault(name, (number, metrics))
    latest = versions[-1]
    return latest, _load_results(Path(exp_dir) / f"v{latest}").get("baseline", {}), treatments

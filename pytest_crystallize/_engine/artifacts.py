"""The ArtifactPlugin (a default plugin of every experiment) and reading what it saved.

Layout: ``<root_dir>/<experiment>/v<N>/replicate_<i>/<condition>/<step>/<name>``, with each
version's ``metadata.json``, ``_manifest.json`` and each condition's ``results.json``.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .atomic import write_atomic
from .context import REPLICATE_KEY, FrozenContext
from .fingerprint import fingerprint
from .names import check_name
from .plain import plain
from .plugins import BasePlugin
from .runs import RunResult
from .sources import DataSource

if TYPE_CHECKING:
    from .experiment import Experiment
    from .results import Result
    from .steps import PipelineStep

METADATA_FILENAME = "metadata.json"


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
        """The folder of ``experiment``'s artifacts: one ``v<N>`` folder per version."""
        return self.root_dir / experiment.artifact_name

    def versions(self, experiment: Experiment) -> list[int]:
        """The version numbers on disk, oldest first."""
        return _version_numbers(self.experiment_dir(experiment))

    def before_run(self, experiment: Experiment) -> None:
        versions = self.versions(experiment)
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
            write_atomic(folder / "results.json", json.dumps(payload, default=plain).encode())
            marker = folder / ".crystallize_complete"
            if condition.failed:
                marker.unlink(missing_ok=True)
            else:
                marker.touch()
        self._apply_retention(experiment)

    def _apply_retention(self, experiment: Experiment) -> None:
        if not self.versioned or self.artifact_retention <= 0:
            return
        versions = self.versions(experiment)
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


def _runs_from_results(condition: str, saved: Mapping[str, Any]) -> list[RunResult]:
    """The runs of one condition from its ``results.json`` (columns per metric)."""
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


class DiskArtifact(DataSource):
    """The path of a file an experiment wrote, in the newest version on disk."""

    def __init__(self, experiment: Experiment, step: str, name: str, condition: str) -> None:
        self.experiment = experiment
        self.step = check_name("step", step)
        self.file_name = check_name("artifact", name)
        self.condition = check_name("treatment", condition)

    @property
    def name(self) -> str:
        """``experiment:step:file``: shown in errors; a data source name has no ``/``."""
        return f"{self.experiment.artifact_name}:{self.step}:{self.file_name}"

    def fetch(self, ctx: FrozenContext) -> Path:
        plugin = self.experiment.get_plugin(ArtifactPlugin) or ArtifactPlugin()
        base = plugin.experiment_dir(self.experiment)
        versions = _version_numbers(base)
        replicate = ctx[REPLICATE_KEY] % self.experiment.replicates
        path = (
            base
            / f"v{versions[-1] if versions else 0}"
            / f"replicate_{replicate}"
            / self.condition
            / self.step
            / self.file_name
        )
        if not path.is_file():
            msg = (
                f"experiment {self.experiment.artifact_name!r} has no file {self.file_name!r} "
                f"from step {self.step!r} at {path}; run it first"
            )
            raise FileNotFoundError(msg)
        return path

"""The ArtifactPlugin (a default plugin of every experiment) and reading what it saved.

Layout: ``<root_dir>/<experiment>/v<N>/replicate_<i>/<condition>/<step>/<name>``, with each
version's ``metadata.json``, ``_manifest.json`` and each condition's ``results.json``.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .atomic import write_atomic
from .context import REPLICATE_KEY, FrozenContext
from .fingerprint import fingerprint
from .locks import Hold, exclusive
from .names import check_name
from .paths import (
    ROOT_LOCK,
    VERSION_MARKER,
    claim,
    contained,
    refuse_foreign,
    retain,
    session_version,
    version_numbers,
)
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

    Layout: ``<root_dir>/<experiment>/v<N>/replicate_<i>/<condition>/<step>/<name>``. A
    relative ``root_dir`` starts from the current directory in a script and from the rootdir
    under pytest. Each run (each pytest session) claims its own version folder: with
    ``versioned=False`` that is ``v0``, emptied first so no file of an earlier run is mixed in
    (or, while another session is writing ``v0``, the next free version); with
    ``versioned=True`` a new version, and only the newest ``artifact_retention`` versions are
    kept (``<= 0`` keeps all), the older kept ones losing their files larger than
    ``big_file_threshold_mb``. Only folders under the root, and versions the plugin made (they
    hold a ``.crystallize-version`` file), are ever written, emptied or removed (see
    :mod:`.paths`). Files are written where the run executes (thread, process, xdist worker)
    and their paths travel back on the run's result; under pytest the version is claimed when
    the first file is written, so an experiment that writes none makes no folder.
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
        self.base: Path | None = None  # where a relative root_dir starts (None: cwd)
        self._session: str | None = None  # pytest: the first file claims this session's version
        self._hold: Hold | None = None
        self._mutex = threading.Lock()
        self._checked: set[Path] = set()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        # A worker elsewhere (a Dask worker started in another directory) writes relative
        # paths where the sender's current directory is, and reports them as the sender sees them.
        state.update(_hold=None, _mutex=None, _sender_cwd=os.getcwd())
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _mutex=threading.Lock())

    def root(self) -> Path:
        """The artifact root, relative when it starts from the current directory."""
        if self.base is None or self.root_dir.is_absolute():
            return self.root_dir
        if os.path.realpath(self.base) == os.path.realpath(os.curdir):
            return self.root_dir
        return self.base / self.root_dir

    def experiment_dir(self, experiment: Experiment) -> Path:
        """The folder of ``experiment``'s artifacts: one ``v<N>`` folder per version."""
        return self.root() / experiment.artifact_name

    def versions(self, experiment: Experiment) -> list[int]:
        """The version numbers on disk, oldest first."""
        return version_numbers(self.experiment_dir(experiment))

    def before_run(self, experiment: Experiment) -> None:
        self.release()
        resume = getattr(experiment, "strategy", "rerun") == "resume"
        self.version_dir = self._claim(experiment, uuid.uuid4().hex, resume=resume)

    def join_session(self, base: Path, session: str) -> None:
        """Under pytest: files go to the version of ``session``, claimed by the first one
        written in any of its processes; a relative root starts from ``base``."""
        self.release()
        self.base, self._session, self.version_dir = base, session, None

    def leave_session(self) -> None:
        """The session is over in this process: stop writing, let others have the version."""
        self.release()
        self._session = self.version_dir = None

    def finish_session(self, experiment: Experiment, session: str) -> None:
        """The owner, at the end of a session that wrote files: apply the retention."""
        exp_dir = self.experiment_dir(experiment)
        if self.versioned and session_version(exp_dir, session) is not None:
            with exclusive(self.root() / ROOT_LOCK):
                self._retain(experiment)

    def release(self) -> None:
        """Stop holding the version: other sessions may empty or remove it again."""
        if self._hold is not None:
            self._hold.release()
            self._hold = None

    def _owner(self, experiment: Experiment) -> str:
        return f"experiment {experiment.artifact_name!r}"

    def _claim(self, experiment: Experiment, session: str, *, resume: bool) -> Path:
        root, owner = self.root(), self._owner(experiment)
        exp_dir = contained(root, root / experiment.artifact_name, owner)
        refuse_foreign(
            root, exp_dir, versioned=self.versioned, resume=resume, owner=owner, locked=False
        )
        exp_dir.mkdir(parents=True, exist_ok=True)
        contained(root, exp_dir, owner)
        with exclusive(root / ROOT_LOCK):
            version = claim(
                root, exp_dir, session, versioned=self.versioned, resume=resume, owner=owner
            )
            self._hold = Hold(version / VERSION_MARKER)
        self._checked = set()
        return version

    def _retain(self, experiment: Experiment) -> None:
        if self.versioned:
            size = self.big_file_threshold_mb * 1024 * 1024
            retain(self.experiment_dir(experiment), self.artifact_retention, size)

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
        version = self.version_dir
        if version is None:
            if self._session is None:
                return None  # outside run(): experiment.apply() writes nothing
            with self._mutex:
                if self.version_dir is None:
                    self.version_dir = self._claim(experiment, self._session, resume=False)
                version = self.version_dir
        folder = version / f"replicate_{ctx['replicate']}" / ctx["condition"] / step.name
        if folder not in self._checked:
            contained(self.root(), folder, self._owner(experiment))
            self._checked.add(folder)
        sender = self.__dict__.get("_sender_cwd")
        target = folder if sender is None or folder.is_absolute() else Path(sender) / folder
        for name, data in files.items():
            write_atomic(target / name, data)
        return {name: str(folder / name) for name in files}

    def after_run(self, experiment: Experiment, result: Result) -> None:
        """Write ``metadata.json``, ``_manifest.json`` and each condition's ``results.json``.

        A condition whose every run succeeded also gets a ``.crystallize_complete`` marker.
        """
        if self.version_dir is None:
            return
        owner = self._owner(experiment)
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
            folder = contained(self.root(), self.version_dir / condition.name, owner)
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
        if self.versioned:
            with exclusive(self.root() / ROOT_LOCK):
                self._retain(experiment)
        self.release()

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


def load_metrics(
    exp_dir: str | os.PathLike[str], version: int | None = None
) -> tuple[int, dict[str, Any], dict[str, dict[str, Any]]]:
    """Read the metrics an ArtifactPlugin saved: ``(version, baseline, {treatment: metrics})``.

    ``exp_dir`` is ``<root_dir>/<experiment>``; the newest version unless ``version`` is
    given; ``(-1, {}, {})`` when nothing was saved.
    """
    versions = version_numbers(Path(exp_dir))
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
    versions = [v for v in version_numbers(Path(exp_dir)) if version is None or v <= version]
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
        versions = version_numbers(base)
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

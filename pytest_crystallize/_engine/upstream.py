"""Where a run finds the files of the upstream experiments it reads.

Inside :meth:`ExperimentGraph.run` the files come from this graph run (``known``); anywhere
else (a lone experiment, pytest workers) the upstream run is computed in the same process,
by a plan for the producer that the owning run plan makes (so it shares its step cache);
seeds make both identical.
"""

from __future__ import annotations

import atexit
import hashlib
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import CrystallizeError

if TYPE_CHECKING:
    from .experiment import Experiment
    from .run import RunPlan

_KEEP = 256  # upstream runs remembered per plan
_SCRATCH: list[Path] = []  # one scratch folder per process, removed at exit


def _scratch() -> Path:
    if not _SCRATCH:
        folder = Path(tempfile.mkdtemp(prefix="crystallize-upstream-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        _SCRATCH.append(folder)
    return _SCRATCH[0]


class Upstream:
    """The upstream files one run plan's runs read.

    ``known`` maps ``(artifact, condition, replicate)`` to a file a graph run produced;
    ``plan_for(producer)`` makes the plan that computes any other upstream run.
    """

    def __init__(self, plan_for: Callable[[Experiment], RunPlan]) -> None:
        self.known: dict[tuple[str, str, int], str] = {}
        self.plan_for = plan_for
        self._plans: dict[str, RunPlan] = {}
        self._files: dict[tuple[str, str, int], dict[str, Path]] = {}

    def path(self, producer: Experiment, name: str, condition: str, replicate: int) -> Path:
        """The file ``name`` of the producer's run: known, remembered, or computed now."""
        known = self.known.get((name, condition, replicate))
        if known:
            return Path(known)
        key = (producer.artifact_name, condition, replicate)
        files = self._files.get(key)
        if files is None:
            files = self._files[key] = self._compute(producer, condition, replicate)
            if len(self._files) > _KEEP:
                del self._files[next(iter(self._files))]
        if name not in files:
            made = ", ".join(sorted(files)) or "none"
            msg = (
                f"experiment {producer.name!r} lists artifact {name!r} in outputs, but its run "
                f"({condition!r}, replicate {replicate}) wrote no file of that name (it wrote: "
                f"{made}); call ctx.artifacts.add({name!r}, data) or artifact.write(obj) in a "
                f"step"
            )
            raise CrystallizeError(msg)
        return files[name]

    def _compute(self, producer: Experiment, condition: str, replicate: int) -> dict[str, Path]:
        plan = self._plans.get(producer.artifact_name)
        if plan is None:
            plan = self._plans[producer.artifact_name] = self.plan_for(producer)
        result, kept = plan.execute_keeping(plan.index_of(condition, replicate))
        if result.error is not None:
            msg = (
                f"the upstream experiment {producer.name!r} failed in the run this one reads "
                f"({condition!r}, replicate {replicate}): {result.error.summary()}"
            )
            raise CrystallizeError(msg)
        digest = hashlib.sha256(f"{producer.name}|{condition}|{replicate}".encode()).hexdigest()
        folder = _scratch() / digest[:16]
        folder.mkdir(parents=True, exist_ok=True)
        files = {}
        for file_name, data in kept.items():
            (folder / file_name).write_bytes(data)
            files[file_name] = folder / file_name
        return files

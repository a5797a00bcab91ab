"""Baselines across commits: the file a session saves and a later one compares with.

``--crystallize-save NAME`` writes ``.crystallize/baselines/NAME.json`` (format 2): per
experiment, its definition fingerprint (what makes two runs comparable, code aside), the code
digest of each data source, step and callable treatment, the metric names, and the
per-replicate metrics and seeds of every condition, merged under a lock with what other
sessions saved there. ``--crystallize-compare NAME`` compares with it (:mod:`.compare`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .._engine.atomic import write_atomic
from .._engine.errors import CrystallizeUsageError
from .._engine.experiment import Experiment
from .._engine.fingerprint import code_prints, definition_fingerprint
from .._engine.locks import exclusive
from .._engine.numbers import finite
from .._engine.results import build_metrics
from .._engine.runs import RunResult

FORMAT = 2
_GATE = re.compile(r"^(?P<metric>[^:]+):(?P<sign>[+-])(?P<size>\d+(?:\.\d*)?|\.\d+)(?P<pct>%?)$")


def baseline_path(root: Path, name: str) -> Path:
    if not re.fullmatch(r"[\w.-]+", name):
        msg = f"a baseline name may hold letters, digits, '.', '_' and '-', got {name!r}"
        raise CrystallizeUsageError(msg)
    return root / ".crystallize" / "baselines" / f"{name}.json"


def parse_gate(text: str) -> tuple[str, float, bool, bool]:
    """``"total:-5%"`` -> (metric, margin, relative, higher_is_better).

    The sign says which way is worse: ``-`` (the metric may fall by at most the margin, higher
    is better) or ``+`` (it may rise by at most the margin, lower is better).
    """
    match = _GATE.match(text.strip())
    if match is None or float(match["size"]) == 0:
        msg = (
            f"--crystallize-compare-fail takes METRIC:-MARGIN or METRIC:+MARGIN with an "
            f"absolute or percentage margin, such as 'total:-5%' or 'latency:+0.2', got {text!r}"
        )
        raise CrystallizeUsageError(msg)
    relative = bool(match["pct"])
    size = float(match["size"]) / (100 if relative else 1)
    return match["metric"], size, relative, match["sign"] == "-"


def saved_number(value: Any) -> float | None:
    """A saved metric value: a finite int or float (no bool, no numeric string), else None."""
    return finite(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def record(
    experiment: Experiment, runs: Sequence[RunResult], conditions: Sequence[str]
) -> dict[str, Any]:
    metrics = build_metrics(runs, conditions, experiment.replicates)
    return {
        "definition": definition_fingerprint(experiment),
        "code": code_prints(experiment),
        "metrics": sorted({m for c in metrics.values() for m in c.metrics}),
        "replicates": experiment.replicates,
        "conditions": {
            name: {
                "seeds": list(c.seeds),
                "metrics": {
                    m: [saved_number(v) for v in values] for m, values in c.metrics.items()
                },
            }
            for name, c in metrics.items()
        },
    }


def save(path: Path, records: Mapping[str, Any]) -> None:
    """Merge ``records`` (experiment key -> record) into the baseline file, atomically.

    Under a lock (``baselines.lock`` beside the baselines folder), the file is read, merged
    and replaced: a session saving the same baseline at the same time keeps its records. A
    file that is not a baseline of this format is replaced whole (saving again is the remedy
    the comparison suggests).
    """
    with exclusive(path.parent.with_name(f"{path.parent.name}.lock")):
        try:
            existing = load(path) if path.is_file() else {}
        except CrystallizeUsageError:  # an older format or a broken file: replaced
            existing = {}
        experiments = dict(existing.get("experiments", {}))
        experiments.update(records)
        payload = {"format": FORMAT, "experiments": experiments}
        write_atomic(path, json.dumps(payload, indent=1, sort_keys=True) + "\n")


def saved_experiments(path: Path) -> dict[str, Any] | None:
    """The experiments the baseline file holds, by key; ``None`` when there is no such file
    (a state, not an error: the comparisons say so). A file that cannot be read as a baseline
    is a usage error."""
    if not path.is_file():
        return None
    experiments = load(path).get("experiments")
    if not isinstance(experiments, dict):
        msg = f"the baseline file {path} holds no 'experiments' mapping; save it again"
        raise CrystallizeUsageError(msg)
    return experiments


def load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        msg = f"no saved baseline at {path}; make one first with --crystallize-save {path.stem}"
        raise CrystallizeUsageError(msg) from None
    except ValueError as exc:
        msg = f"the baseline file {path} is not valid JSON ({exc}); save it again"
        raise CrystallizeUsageError(msg) from exc
    if isinstance(data, dict) and data.get("format") == 1:
        msg = (
            f"the baseline file {path} has format 1, from an older pytest-crystallize (it "
            f"compared code, not definitions); save it again with --crystallize-save "
            f"{path.stem} on the commit to compare with"
        )
        raise CrystallizeUsageError(msg)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        shown = data.get("format") if isinstance(data, dict) else type(data).__name__
        msg = (
            f"the baseline file {path} has an unknown format ({shown!r}; this version reads "
            f"format {FORMAT}); save it again with --crystallize-save {path.stem}"
        )
        raise CrystallizeUsageError(msg)
    return data

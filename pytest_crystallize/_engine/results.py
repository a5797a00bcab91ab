"""Frozen result objects: one run, one condition's metrics, a hypothesis, an experiment."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, final

from .errors import ExperimentRunError
from .plain import plain
from .runs import RunError, RunResult
from .table import table
from .verdict import Verdict


@final
@dataclass(frozen=True, slots=True)
class ConditionMetrics:
    """The metrics of one condition, one entry per replicate, in replicate order.

    ``metrics[name][i]`` is replicate *i*'s value, so entry *i* of the baseline pairs with
    entry *i* of every treatment. A metric recorded several times in a run has a tuple per
    replicate; a run that failed or did not record the metric has ``None``.
    """

    name: str
    metrics: Mapping[str, list[Any]]
    seeds: tuple[int, ...]
    failed: tuple[int, ...] = ()

    def __getitem__(self, metric: str) -> list[Any]:
        return self.metrics[metric]


TreatmentMetrics = ConditionMetrics


@final
@dataclass(frozen=True, slots=True)
class HypothesisResult:
    """A hypothesis evaluated for every treatment.

    ``results[treatment]`` is the verifier's output (a list of outputs for a hypothesis with
    several metric groups), or ``{"error": why}`` when the treatment's data is incomplete (a
    run of it or of the baseline failed, a run lacks a judged metric, a value is not a real
    number): no verdict is given on partial data; ``ranking`` is ``{"best": name,
    "ranked": [(name, score), ...]}`` with the lowest score first; ``replicates[treatment]``
    lists the replicates used;
    ``warnings[treatment]`` holds the warnings the verifier emitted (they are recorded, not
    raised, so a precision warning never turns into an error); ``unverified`` lists the
    treatments with no replicate complete in both conditions, which have no result;
    ``adjusted[treatment]`` is the p-value adjusted with ``correction`` over the experiment's
    family of ``family_size`` comparisons (a list for several metric groups; ``None`` where
    the verifier stated no p-value), ``family_not_run`` of which did not run in this session
    (not selected) and count as p = 1.
    """

    name: str
    results: Mapping[str, Any]
    ranking: Mapping[str, Any]
    replicates: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    warnings: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    unverified: tuple[str, ...] = ()
    adjusted: Mapping[str, Any] = field(default_factory=dict)
    correction: str = "none"
    family_size: int = 0
    family_not_run: int = 0

    def get_for_treatment(self, treatment: str) -> Any:
        """The verifier's output for ``treatment``, or None."""
        return self.results.get(treatment)


@final
@dataclass(frozen=True, slots=True)
class ExperimentMetrics:
    """Per-condition metrics and the evaluated hypotheses."""

    baseline: ConditionMetrics
    treatments: Mapping[str, ConditionMetrics]
    hypotheses: tuple[HypothesisResult, ...] = ()

    def condition(self, name: str) -> ConditionMetrics:
        """The metrics of condition ``name`` (the baseline or a treatment)."""
        return self.baseline if name == self.baseline.name else self.treatments[name]


@final
@dataclass(frozen=True, slots=True)
class Result:
    """The result of ``experiment.run()``.

    Attributes
    ----------
    metrics:
        ``metrics.baseline.metrics["total"]`` and ``metrics.treatments[name].metrics[...]``.
    runs:
        Every :class:`RunResult`, in plan order.
    errors:
        ``{"<condition>_rep_<i>": RunError}`` for each failed run.
    artifacts:
        ``{file name: {condition: (path of replicate 0, path of replicate 1, ...)}}``.
    verdicts:
        One :class:`Verdict` per (hypothesis, treatment): passed, failed, inconclusive or
        error, with its numbers and a ``message`` saying why, decided by the same judge as
        ``pytest --crystallize``. :meth:`summary` shows them as the table pytest prints;
        ``print_summary()`` prints it.
    sequential:
        For a sequential design, ``{"looks": K, "schedule": [replicates per condition at
        each look], "stopped_at_look": k, "replicates_used": n}``; the verdicts are those of
        look ``k``, and the replicates after ``n`` were not run (so are absent, not errors).
        ``None`` for a fixed design.
    """

    metrics: ExperimentMetrics
    runs: tuple[RunResult, ...]
    errors: Mapping[str, RunError]
    artifacts: Mapping[str, Mapping[str, tuple[Path, ...]]]
    provenance: Mapping[str, Any]
    replicates: int
    conditions: tuple[str, ...]
    verdicts: tuple[Verdict, ...] = field(default=(), compare=False)
    sequential: Mapping[str, Any] | None = field(default=None, compare=False)

    @property
    def cache_stats(self) -> dict[str, float]:
        """Step cache counters over every run: hits, misses, rejected, bytes_written and
        seconds_saved (all zero when no step is cacheable)."""
        totals = [0, 0, 0, 0, 0.0]
        for run in self.runs:
            for i, value in enumerate(run.cache or ()):
                totals[i] += value
        names = ("hits", "misses", "rejected", "bytes_written", "seconds_saved")
        return dict(zip(names, totals, strict=True))

    @property
    def incomplete_replicates(self) -> tuple[int, ...]:
        """Replicates in which at least one condition failed."""
        return tuple(sorted({e.replicate for e in self.errors.values()}))

    def get_hypothesis(self, name: str) -> HypothesisResult | None:
        """The evaluated hypothesis ``name``, or None."""
        for hypothesis in self.metrics.hypotheses:
            if hypothesis.name == name:
                return hypothesis
        return None

    def get_artifact(self, name: str) -> Mapping[str, tuple[Path, ...]]:
        """``{condition: (path per replicate, ...)}`` of artifact file ``name`` ({} if none)."""
        return self.artifacts.get(name, {})

    def raise_for_errors(self) -> None:
        """Raise :class:`ExperimentRunError` if any run failed (the result stays on it)."""
        if not self.errors:
            return
        errors = list(self.errors.values())
        lines = [f"{len(errors)} of {len(self.runs)} runs failed:"]
        lines += [f"  {e.key}: {e.summary()}" for e in errors[:10]]
        if len(errors) > 10:
            lines.append(f"  ... and {len(errors) - 10} more (see result.errors)")
        lines.append(f"first traceback:\n{errors[0].traceback}")
        error = ExperimentRunError("\n".join(lines))
        error.result = self
        raise error from errors[0].exception

    def to_dict(self) -> dict[str, Any]:
        """A JSON-compatible dict of metrics, hypotheses, errors and artifacts."""
        conditions = [self.metrics.baseline, *self.metrics.treatments.values()]
        return {
            "timestamp": datetime.now(timezone.utc).isoformat(),
            "replicates": self.replicates,
            "metrics": {c.name: plain(c.metrics, finite=True) for c in conditions},
            "seeds": {c.name: list(c.seeds) for c in conditions},
            "hypotheses": [
                {
                    "name": h.name,
                    "results": plain(h.results, finite=True),
                    "ranking": plain(h.ranking, finite=True),
                }
                for h in self.metrics.hypotheses
            ],
            "verdicts": [v.to_json() for v in self.verdicts],
            **({"sequential": plain(self.sequential)} if self.sequential is not None else {}),
            "errors": {k: e.summary() for k, e in self.errors.items()},
            "artifacts": plain(self.artifacts),
        }

    def summary(self) -> str:
        """The verdict table ``pytest --crystallize`` prints: a header and one row per
        verdict (experiment, hypothesis, treatment, metric, n, means, change with its 95% CI,
        p-value (adjusted), alpha, verdict), then a line per note (a row ending in ``!``).
        Each verdict's reasons are in ``result.verdicts[i].message``."""
        if not self.verdicts:
            if self.metrics.hypotheses:
                return (
                    "no verdicts: no judge is loaded (import Experiment from pytest_crystallize "
                    "to load it)"
                )
            return "no hypotheses"
        notes = [f"! {v.name}: {note}" for v in self.verdicts for note in v.notes]
        return "\n".join([*table(self.verdicts), *notes])

    def print_summary(self, file: Any = None) -> None:
        """Print :meth:`summary` (to ``file``, default standard output)."""
        print(self.summary(), file=file)

    def print_tree(self, fmt: str = "treatment > replicate", file: Any = None) -> str:
        """Print (and return) the metrics as a tree: ``"treatment > replicate"`` (the
        default) or ``"replicate > treatment"``; leaves are each run's metrics, or its error.
        """
        order = [part.strip() for part in fmt.split(">")]
        if sorted(order) != ["replicate", "treatment"]:
            msg = (
                f"print_tree(fmt=...) orders 'treatment' and 'replicate', such as "
                f"'treatment > replicate', got {fmt!r}"
            )
            raise ValueError(msg)
        runs = {(r.condition, r.replicate): r for r in self.runs}
        outer = list(self.conditions) if order[0] == "treatment" else range(self.replicates)
        inner = range(self.replicates) if order[0] == "treatment" else list(self.conditions)
        lines = []
        for a in outer:
            lines.append(str(a) if order[0] == "treatment" else f"replicate {a}")
            for b in inner:
                condition, replicate = (a, b) if order[0] == "treatment" else (b, a)
                run = runs.get((str(condition), int(replicate)))
                label = f"replicate {b}" if order[0] == "treatment" else str(b)
                if run is None:
                    leaf = "not run"
                elif run.error is not None:
                    leaf = f"error: {run.error.summary()}"
                else:
                    leaf = ", ".join(
                        f"{k}={v[0] if len(v) == 1 else list(v)!r}" for k, v in run.metrics.items()
                    )
                lines.append(f"  {label}: {leaf}")
        text = "\n".join(lines)
        print(text, file=file)
        return text

    def to_df(self) -> Any:
        """A pandas DataFrame, one row per (condition, replicate, metric); needs pandas."""
        try:
            import pandas as pd  # lazy: pandas is optional and slow to import
        except ImportError as exc:
            msg = "Result.to_df() needs pandas, which is not installed: pip install pandas"
            raise ImportError(msg) from exc
        conditions = [self.metrics.baseline, *self.metrics.treatments.values()]
        rows = [
            {"condition": c.name, "replicate": i, "seed": c.seeds[i], "metric": m, "value": v}
            for c in conditions
            for m, values in c.metrics.items()
            for i, v in enumerate(values)
        ]
        return pd.DataFrame(rows, columns=["condition", "replicate", "seed", "metric", "value"])

    def to_parquet(self, path: str | Path) -> None:
        """Write :meth:`to_df` to a Parquet file; needs pandas and pyarrow."""
        self.to_df().to_parquet(path)

    def to_json(self, path: str | Path | None = None, indent: int = 2) -> str:
        """The result as JSON text, also written to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=indent)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text


def build_metrics(
    runs: Sequence[RunResult], conditions: Sequence[str], replicates: int
) -> dict[str, ConditionMetrics]:
    """Arrange run results into one :class:`ConditionMetrics` per condition."""
    by_condition: dict[str, list[RunResult | None]] = {c: [None] * replicates for c in conditions}
    for done in runs:
        by_condition[done.condition][done.replicate] = done
    # Every condition lists every metric any condition recorded (None where it has none), so
    # a condition whose runs all failed still has its per-replicate lists.
    names: dict[str, bool] = {}  # metric -> recorded more than once in some run
    for slots in by_condition.values():
        for run in slots:
            if run is not None and run.ok:
                for key, values in run.metrics.items():
                    names[key] = names.get(key, False) or len(values) != 1
    out: dict[str, ConditionMetrics] = {}
    for condition, slots in by_condition.items():
        metrics: dict[str, list[Any]] = {}
        for key, multi in names.items():
            column: list[Any] = []
            for slot in slots:
                found = slot.metrics.get(key) if slot is not None and slot.ok else None
                if found is None:
                    column.append(None)
                else:
                    column.append(tuple(found) if multi else found[0])
            metrics[key] = column
        out[condition] = ConditionMetrics(
            name=condition,
            metrics=metrics,
            seeds=tuple(run.seed if run is not None else -1 for run in slots),
            failed=tuple(i for i, run in enumerate(slots) if run is None or not run.ok),
        )
    return out


def build_artifacts(runs: Sequence[RunResult]) -> dict[str, dict[str, tuple[Path, ...]]]:
    found: dict[str, dict[str, list[tuple[int, Path]]]] = {}
    for run in runs:
        for _step, name, path in run.artifacts:
            found.setdefault(name, {}).setdefault(run.condition, []).append(
                (run.replicate, Path(path))
            )
    return {
        name: {cond: tuple(p for _, p in sorted(paths)) for cond, paths in by_cond.items()}
        for name, by_cond in found.items()
    }

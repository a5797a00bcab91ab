"""Baselines across commits: save an experiment's runs, compare a later run against them.

``--crystallize-save NAME`` writes ``.crystallize/baselines/NAME.json``: per experiment, the
per-replicate metrics and seeds of every condition and a fingerprint of the definition (data
source, steps' code and parameters, treatments, initial context), merged under a lock with
what other sessions saved there. ``--crystallize-compare NAME`` then adds, for each
experiment's baseline condition and each metric, a verdict "now vs NAME": paired when the
seeds match, a non-inferiority gate when ``--crystallize-compare-fail`` names the metric,
otherwise informational (it never fails). A baseline whose fingerprint differs from the
current definition is flagged on every such verdict.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .._engine.atomic import write_atomic
from .._engine.context import BASELINE_CONDITION
from .._engine.errors import CrystallizeUsageError
from .._engine.experiment import Experiment
from .._engine.fingerprint import fingerprint
from .._engine.hypotheses import Samples
from .._engine.locks import exclusive
from .._engine.numbers import finite, number
from .._engine.results import ConditionMetrics, build_metrics
from .._engine.runs import RunResult
from .._engine.verdict import Verdict

FORMAT = 1
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


def _number(value: Any) -> float | None:
    """A saved metric value: a finite int or float (no bool, no numeric string), else None."""
    return finite(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def record(
    experiment: Experiment, runs: Sequence[RunResult], conditions: Sequence[str]
) -> dict[str, Any]:
    metrics = build_metrics(runs, conditions, experiment.replicates)
    return {
        "fingerprint": fingerprint(experiment),
        "replicates": experiment.replicates,
        "conditions": {
            name: {
                "seeds": list(c.seeds),
                "metrics": {m: [_number(v) for v in values] for m, values in c.metrics.items()},
            }
            for name, c in metrics.items()
        },
    }


def save(path: Path, records: Mapping[str, Any]) -> None:
    """Merge ``records`` (experiment key -> record) into the baseline file, atomically.

    Under a lock (``baselines.lock`` beside the baselines folder), the file is read, merged
    and replaced: a session saving the same baseline at the same time keeps its records.
    """
    with exclusive(path.parent.with_name(f"{path.parent.name}.lock")):
        existing = load(path) if path.is_file() else {}
        experiments = dict(existing.get("experiments", {}))
        experiments.update(records)
        payload = {"format": FORMAT, "experiments": experiments}
        write_atomic(path, json.dumps(payload, indent=1, sort_keys=True) + "\n")


def load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        msg = f"no saved baseline at {path}; make one first with --crystallize-save {path.stem}"
        raise CrystallizeUsageError(msg) from None
    except ValueError as exc:
        msg = f"the baseline file {path} is not valid JSON ({exc}); save it again"
        raise CrystallizeUsageError(msg) from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        msg = f"the baseline file {path} has an unknown format; save it again"
        raise CrystallizeUsageError(msg)
    return data


def _samples(
    values: Sequence[Any], seeds: Sequence[int], rows: Sequence[int], metric: str
) -> Samples:
    made = Samples({metric: [values[i] for i in rows]})
    made.seeds = tuple(seeds[i] for i in rows)
    return made


def compare(
    name: str,
    experiment: Experiment,
    runs: Sequence[RunResult],
    stored: Mapping[str, Any],
    label: str,
    gates: Mapping[str, tuple[float, bool, bool]],
) -> list[Verdict]:
    """One verdict per metric of the baseline condition: now vs the stored baseline."""

    baseline_runs = [r for r in runs if r.condition == BASELINE_CONDITION]
    current = build_metrics(baseline_runs, [BASELINE_CONDITION], experiment.replicates)[
        BASELINE_CONDITION
    ]
    then = stored["conditions"].get(BASELINE_CONDITION, {"seeds": [], "metrics": {}})
    notes: list[str] = []
    if stored.get("fingerprint") != fingerprint(experiment):
        notes.append(
            f"stale baseline: {label!r} was saved from a different definition of {name!r} "
            f"(data source, steps' code or parameters, or treatments changed since); save it "
            f"again to compare like with like"
        )
    verdicts = []
    for metric in sorted(set(current.metrics) & set(then["metrics"])):
        verdicts.append(_compare_metric(name, label, metric, current, then, gates, notes))
    return verdicts


def _compare_metric(
    name: str,
    label: str,
    metric: str,
    current: ConditionMetrics,
    then: Mapping[str, Any],
    gates: Mapping[str, tuple[float, bool, bool]],
    notes: list[str],
) -> Verdict:
    from .. import stats  # lazy: scipy costs seconds; only --crystallize-compare needs it

    now_values, old_values = current.metrics[metric], then["metrics"][metric]
    old_seeds = then["seeds"]
    now_rows = [i for i, v in enumerate(now_values) if _number(v) is not None]
    old_rows = [i for i, v in enumerate(old_values) if _number(v) is not None]
    rows = [i for i in now_rows if i in old_rows and i < len(old_seeds)]
    if rows and len(rows) == len(now_rows) == len(old_rows):
        # the same replicates: the verifier pairs them where their seeds match
        before = _samples(old_values, old_seeds, rows, metric)
        after = _samples(now_values, current.seeds, rows, metric)
    else:  # other replicates: independent samples
        before = Samples({metric: [old_values[i] for i in old_rows]})
        after = Samples({metric: [now_values[i] for i in now_rows]})
    gate = gates.get(metric)
    if gate is not None:
        margin, relative, higher = gate
        result = stats.non_inferior(margin=margin, relative=relative, higher_is_better=higher)(
            before, after
        )
        outcome = result.outcome
        why = result.reason
    else:
        test = (
            stats.paired_t_test
            if before.seeds and before.seeds == after.seeds
            else stats.welch_t_test
        )
        result = test()(before, after)
        outcome = "passed"  # informational: a comparison without a gate never fails
        why = f"informational (no gate for {metric!r}): {result.reason}"
    shown = result.as_dict()  # no difference or interval where none was estimated
    change, low, high = shown["difference"], shown["ci_low"], shown["ci_high"]
    interval = f" [{number(low, sign=True)}, {number(high, sign=True)}]" if low is not None else ""
    estimate = (
        f"change {number(change, sign=True)}{interval}"
        if change is not None
        else f"means {number(result.mean_treatment)} now vs {number(result.mean_baseline)} saved"
    )
    message = (
        f"{metric!r} now vs baseline {label!r}: {result.test}: {why}; {estimate}, "
        f"p={number(result.pvalue, 3)}, n={result.n_treatment} now vs {result.n_baseline} saved"
    )
    message += "".join(f"\n  note: {n}" for n in notes)
    return Verdict(
        experiment=name,
        hypothesis=f"vs-{label}",
        treatment=metric,
        outcome=outcome,
        message=message,
        verifier=result.test,
        metrics=(metric,),
        pvalue=result.pvalue,
        alpha=result.alpha,
        n_baseline=result.n_baseline,
        n_treatment=result.n_treatment,
        mean_baseline=result.mean_baseline,
        mean_treatment=result.mean_treatment,
        difference=change,
        ci_low=low,
        ci_high=high,
        effect_size=result.effect_size,
        effect_size_name=result.effect_size_name,
        mde=result.mde,
        output=result.as_dict(),
        notes=tuple(notes),
    )

"""A quick look: ``--crystallize-replicates N`` (or ini ``crystallize_replicates``) runs every
step with ``N`` replicates, even fewer than a verifier can judge. Those comparisons are skips
that say how many replicates would do, never failures or collection errors.

The experiment's own count is checked when it is defined (a built-in test that can never
reach its alpha is a definition error); a quick look's count is judged here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from .._engine.definition import too_few_replicates
from .._engine.experiment import Experiment
from .._engine.hypotheses import Hypothesis
from .._engine.numbers import alpha_of, number
from .._engine.verdict import Verdict


def unjudgeable(experiment: Experiment) -> dict[str, str]:
    """Why each hypothesis whose built-in test cannot reach its alpha at the quick look's
    count is skipped, by hypothesis name (empty unless ``experiment.quick_look``)."""
    if not experiment.quick_look:
        return {}
    found = {}
    for hyp in experiment.hypotheses:
        why = too_few_replicates(hyp, experiment.replicates)
        if why is not None:
            found[hyp.name] = why
    return found


def skipped(experiment: str, hyp: Hypothesis, treatment: str, why: str) -> Verdict:
    """The skipped verdict of a comparison the quick look's count cannot judge."""
    return Verdict(
        experiment,
        hyp.name,
        treatment,
        "skipped",
        why,
        verifier=hyp.verifier_name,
        alpha=alpha_of(hyp.verifier),
    )


def _too_few(output: Any) -> list[str]:
    """The reasons of an output's inconclusive results when each says ``too few ...``; else
    an empty list."""
    outputs = output if isinstance(output, list) else [output]
    reasons = [
        str(o.get("reason") or "")
        for o in outputs
        if isinstance(o, Mapping) and o.get("outcome") == "inconclusive"
    ]
    return reasons if reasons and all(r.startswith("too few") for r in reasons) else []


def quick_look_verdicts(verdicts: Sequence[Verdict], experiment: Experiment) -> list[Verdict]:
    """In a quick look, an inconclusive verdict because the data are too few (a t-test on 1
    replicate) is a skip that says so, as for a test whose floor the count cannot reach; a
    failure without a p-value (a user's verifier gave NaN) notes that the count may be why."""
    if not experiment.quick_look:
        return list(verdicts)
    names = {hyp.name: hyp.verifier_name for hyp in experiment.hypotheses}
    out = []
    for verdict in verdicts:
        reasons = _too_few(verdict.output) if verdict.outcome == "inconclusive" else []
        if reasons:
            shown = "; ".join(r.removeprefix("too few replicates: ") for r in reasons)
            verifier = names.get(verdict.hypothesis, verdict.verifier)
            message = (
                f"too few replicates for {verifier} at alpha {number(verdict.alpha)} ({shown})"
            )
            verdict = replace(verdict, outcome="skipped", message=message)
        elif verdict.outcome == "failed" and verdict.pvalue is None:
            verdict = replace(verdict, message=verdict.message + quick_look_note(experiment))
        out.append(verdict)
    return out


def quick_look_note(experiment: Experiment) -> str:
    """A note for a verifier that raised or gave no p-value in a quick look: the few
    replicates may be why."""
    if not experiment.quick_look:
        return ""
    n = experiment.replicates
    return (
        f"\n  note: this quick look (--crystallize-replicates) gives each condition {n} "
        f"replicate{'' if n == 1 else 's'}; the verifier may need more"
    )

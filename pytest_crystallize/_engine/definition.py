"""What makes an experiment definition valid, and the plugins every experiment gets.

The checks run when an experiment is made (and again when ``run()`` overrides its treatments,
hypotheses or replicates), so a bad definition fails at the user's line, before any run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .artifacts import ArtifactPlugin
from .context import RESERVED_KEYS
from .correction import check_correction
from .errors import CrystallizeUsageError, ExperimentDefinitionError
from .execution import SerialExecution
from .hypotheses import Hypothesis, Samples, as_mapping, output_pvalue
from .inputs import Artifact
from .names import check_name
from .numbers import alpha_of, number
from .plugins import BasePlugin, LoggingPlugin, SeedPlugin, overrides
from .sequential import SequentialDesign
from .sources import DataSource
from .steps import PipelineStep

if TYPE_CHECKING:
    from .experiment import Experiment

_DEFINITION = ExperimentDefinitionError


def check_definition(experiment: Experiment) -> None:
    """Raise :class:`ExperimentDefinitionError` for anything that would make runs fail."""
    label = experiment.name or "<unnamed>"
    _check_replicates(experiment.replicates, label)
    reserved = sorted(RESERVED_KEYS.intersection(experiment.initial_ctx))
    if reserved:
        msg = (
            f"experiment {label!r}: initial_ctx sets the reserved key {reserved[0]!r}; "
            f"{', '.join(sorted(RESERVED_KEYS))} are set for each run by the experiment"
        )
        raise ExperimentDefinitionError(msg)
    seen: set[str] = set()
    for listed in experiment.all_treatments:  # as given, a treatment named baseline included
        if listed.name in seen:
            msg = f"experiment {label!r}: two treatments are named {listed.name!r}; rename one"
            raise ExperimentDefinitionError(msg)
        seen.add(listed.name)
    components: list[DataSource | PipelineStep] = [
        experiment.datasource,
        *experiment.pipeline.steps,
    ]
    for comp in components:
        check_name(_kind(comp), comp.name, owner=f"experiment {label!r}: ", error=_DEFINITION)
    for name, t in experiment.conditions():
        payload = t.apply_map if t is not None else {}
        for key in payload:
            if key in RESERVED_KEYS:
                msg = (
                    f"experiment {label!r}: treatment {name!r} sets the reserved key "
                    f"{key!r}; {', '.join(sorted(RESERVED_KEYS))} are set for each run"
                )
                raise ExperimentDefinitionError(msg)
            if key == "ctx":
                msg = (
                    f"experiment {label!r}: treatment {name!r} sets 'ctx', which no step can "
                    f"receive (a step's ctx parameter is the run's context itself), so the "
                    f"treatment would have no effect; give the value another name"
                )
                raise ExperimentDefinitionError(msg)
            for comp in components:
                if key in comp.params:
                    msg = (
                        f"experiment {label!r}: treatment {name!r} sets {key!r}, but step "
                        f"{comp.name!r} receives {key}={comp.params[key]!r} explicitly, so "
                        f"the treatment would have no effect; remove the explicit argument "
                        f"(put the default in initial_ctx) or rename the key"
                    )
                    raise ExperimentDefinitionError(msg)
        if t is not None and t.is_callable:
            continue  # its keys are known only when it runs
        available = set(experiment.initial_ctx) | set(payload) | RESERVED_KEYS
        for comp in components:
            missing = [k for k in comp.required_context() if k not in available]
            if missing:
                msg = (
                    f"experiment {label!r}: {_kind(comp)} {comp.name!r} needs {missing[0]!r},"
                    f" which is not passed as {comp.name}({missing[0]}=...), has no default "
                    f"and is not in the context of condition {name!r}; pass it explicitly, "
                    f"add it to initial_ctx, or set it in every treatment"
                )
                raise ExperimentDefinitionError(msg)
    _check_hypotheses(experiment, label)
    _check_sequential(experiment, label)


def _check_hypotheses(experiment: Experiment, label: str) -> None:
    if experiment.correction is not None:
        check_correction(experiment.correction, f"experiment {label!r}: correction")
    names: set[str] = set()
    for hyp in experiment.hypotheses:
        if not isinstance(hyp, Hypothesis):
            msg = (
                f"experiment {label!r}: hypotheses() takes Hypothesis objects (made by "
                f"@hypothesis or Hypothesis(...)), got {hyp!r} ({type(hyp).__name__})"
            )
            raise ExperimentDefinitionError(msg)
        owner = f"experiment {label!r}: "
        check_name("hypothesis", hyp.name, owner=owner, error=_DEFINITION)
        for metric in {m: None for group in hyp.groups or () for m in group}:
            owner = f"experiment {label!r}: hypothesis {hyp.name!r}: "
            check_name("metric", metric, owner=owner, error=_DEFINITION)
        if hyp.name in names:
            msg = f"experiment {label!r}: two hypotheses are named {hyp.name!r}; rename one"
            raise ExperimentDefinitionError(msg)
        names.add(hyp.name)
    if experiment.hypotheses and not experiment.treatments:
        msg = (
            f"experiment {label!r} has hypotheses but no treatments to compare with the "
            f"baseline; add .treatments([...]) or drop the hypotheses"
        )
        raise ExperimentDefinitionError(msg)
    if experiment.quick_look:  # too few replicates give skipped verdicts (the judge's)
        return
    for hyp in experiment.hypotheses:
        _check_reachable(hyp, experiment.replicates, label)


def _check_sequential(experiment: Experiment, label: str) -> None:
    """The design fits the replicates, and every verifier gives a p-value to judge each look
    by (the nominal thresholds apply to it); a built-in verifier is known to give one."""
    design = experiment.sequential
    if design is None:
        return
    if not isinstance(design, SequentialDesign):
        msg = (
            f"experiment {label!r}: sequential takes the design .sequential(looks=...) "
            f"makes (a SequentialDesign), got {design!r} ({type(design).__name__})"
        )
        raise ExperimentDefinitionError(msg)
    why = design.problem(experiment.replicates)
    if why is not None:
        msg = f"experiment {label!r}: {why}"
        raise ExperimentDefinitionError(msg)
    for hyp in experiment.hypotheses:
        said = _probe(hyp)
        if said is not None:
            msg = (
                f"experiment {label!r}: hypothesis {hyp.name!r} cannot be judged "
                f"sequentially: its verifier {hyp.verifier_name!r} gives no p-value (on "
                f"synthetic samples it returned {said}), and a look is decided by comparing "
                f"the p-value with the look's nominal threshold, which a bare "
                f"'significant'/'passed' at the verifier's own alpha cannot be; return "
                f"'p_value' too, use a built-in verifier, or drop .sequential(...)"
            )
            raise ExperimentDefinitionError(msg)


_PROBE_BASELINE = (0.9, 1.1, 1.0, 1.2, 0.8, 1.05)
_PROBE_TREATMENT = (1.5, 1.4, 1.7, 1.6, 1.3, 1.55)


def _probe(hyp: Hypothesis) -> str | None:
    """What a user's verifier returned, shown, when it gave no p-value on small synthetic
    samples of its metrics (six replicates per condition, paired, the treatment higher);
    ``None`` when it gave one, is built in, or could not run on them (its output at a look
    is then checked when judged: no p-value gives an error verdict)."""
    factory = getattr(hyp.verifier, "factory", None)
    if getattr(factory, "floor", None) is not None:  # built in: always a p-value
        return None
    names = [m for group in hyp.groups or (("metric",),) for m in group]
    baseline = Samples({m: list(_PROBE_BASELINE) for m in names})
    treatment = Samples({m: list(_PROBE_TREATMENT) for m in names})
    baseline.seeds = treatment.seeds = tuple(range(len(_PROBE_BASELINE)))
    try:
        output = hyp.verifier(baseline, treatment)
        mapping = as_mapping(output)
        if output_pvalue(mapping) is not None:
            return None
        return repr(dict(mapping))
    except Exception:  # a probe: the real samples are judged at each look
        return None


def _check_replicates(value: Any, experiment: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        msg = (
            f"experiment {experiment!r}: replicates must be a positive int, got {value!r} "
            f"({type(value).__name__}); use 1 or more replicates"
        )
        raise ExperimentDefinitionError(msg)
    return value


def _unreachable(hyp: Hypothesis, replicates: int) -> tuple[str, float, float, int] | None:
    """``(verifier, alpha, floor, n)`` when ``hyp`` uses a built-in test whose smallest
    possible p-value at ``replicates`` is not below its alpha (``n``: the fewest replicates
    that can reach it, 0 when none can); ``None`` when it can pass."""
    verifier = hyp.verifier
    factory = getattr(verifier, "factory", None)
    floor_of = getattr(factory, "floor", None)  # built-in verifiers know their smallest p
    alpha = alpha_of(verifier)
    if factory is None or floor_of is None or alpha is None:
        return None
    floor = floor_of(verifier, replicates)
    if floor < alpha:
        return None
    needed = 0
    if floor_of(verifier, _ENOUGH) < alpha:  # else a resampling floor no n can lower
        needed = replicates + 1
        while floor_of(verifier, needed) >= alpha:
            needed += 1
    return factory.name, alpha, floor, needed


_ENOUGH = 1000  # replicates beyond which no built-in floor (n-dependent) stays above alpha


def too_few_replicates(hyp: Hypothesis, replicates: int) -> str | None:
    """Why ``hyp`` cannot be judged on ``replicates`` replicates (a quick look with fewer than
    the experiment's own: its built-in test can never reach alpha), else ``None``."""
    found = _unreachable(hyp, replicates)
    if found is None:
        return None
    name, alpha, floor, needed = found
    need = f"need N >= {needed}" if needed else "no N can reach it"
    return (
        f"too few replicates for {name} at alpha {alpha:g} ({need}): the smallest p-value "
        f"it can give with {replicates} per condition is {number(floor)}"
    )


def _check_reachable(hyp: Hypothesis, replicates: int, label: str) -> None:
    """Refuse a built-in test that can never reach its alpha with this many replicates."""
    found = _unreachable(hyp, replicates)
    if found is not None:
        name, alpha, floor, _ = found
        msg = (
            f"experiment {label!r}: hypothesis {hyp.name!r} uses {name} with "
            f"{replicates} replicates, whose smallest possible p-value is {number(floor)} >= "
            f"alpha={alpha:g}, so it can never pass; use more replicates or a t-test"
        )
        raise ExperimentDefinitionError(msg)


def claim_outputs(experiment: Experiment, outputs: list[Any], label: str) -> list[Any]:
    """Make ``experiment`` the producer of each declared Artifact (one producer each)."""
    for art in outputs:
        if not isinstance(art, Artifact):
            msg = f"experiment {label!r}: outputs=[...] takes Artifact objects, got {art!r}"
            raise CrystallizeUsageError(msg)
        if art.producer is not None and art.producer is not experiment:
            msg = (
                f"artifact {art.name!r} is produced by experiment {art.producer.name!r}; "
                f"experiment {label!r} cannot produce it too: give each its own Artifact"
            )
            raise ExperimentDefinitionError(msg)
        art.producer = experiment
    return outputs


def _kind(component: Any) -> str:
    return "data source" if isinstance(component, DataSource) else "step"


def with_defaults(plugins: list[BasePlugin], label: str) -> list[BasePlugin]:
    for plugin in plugins:
        if not isinstance(plugin, BasePlugin):
            msg = (
                f"experiment {label!r}: plugins() takes BasePlugin instances, got {plugin!r} "
                f"({type(plugin).__name__}); did you forget the parentheses?"
            )
            raise CrystallizeUsageError(msg)
    executors = [p for p in plugins if overrides(p, "run_experiment_loop")]
    if len(executors) > 1:
        shown = ", ".join(type(p).__name__ for p in executors)
        msg = f"experiment {label!r} has {len(executors)} execution plugins ({shown}); keep one"
        raise ExperimentDefinitionError(msg)
    defaults: list[BasePlugin] = [ArtifactPlugin(), SeedPlugin(), LoggingPlugin()]
    out = list(plugins)
    for default in defaults:
        if not any(isinstance(p, type(default)) for p in plugins):
            out.append(default)
    if not executors:
        out.append(SerialExecution())
    return out


def check_marks(marks: Any, label: str) -> tuple[Any, ...]:
    """The experiment's pytest marks, checked by their shape (the engine does not import
    pytest): a mark decorator (``pytest.mark.slow``) or a ``Mark``."""
    if isinstance(marks, str) or not hasattr(marks, "__iter__"):
        marks = (marks,)
    checked = tuple(marks)
    for mark in checked:
        inner = getattr(mark, "mark", mark)
        if not all(hasattr(inner, attr) for attr in ("name", "args", "kwargs")):
            msg = (
                f"experiment {label!r}: marks(...) takes pytest marks such as "
                f"pytest.mark.slow or pytest.mark.xfail(reason=...), got {mark!r} "
                f"({type(mark).__name__}); pass the mark itself"
            )
            raise ExperimentDefinitionError(msg)
    return checked

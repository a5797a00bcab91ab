"""Fingerprints of whole experiments, and the digests cache keys are made of.

Value and buffer digests live in :mod:`.digests`, code fingerprints in :mod:`.codeprint`,
module state digested by content in :mod:`.state`; the names other modules use are
re-exported here. An experiment's fingerprint covers what defines its data: the seed, the
code and parameters of its data source and steps, its initial context, its treatments, and
the upstream experiments it reads (resuming needs the code too). Its definition fingerprint
covers what makes two runs comparable, code aside: a saved baseline is compared by it, and
:func:`code_prints` says which parts' code changed since, as information.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .codeprint import CodePrint, code_print, step_print
from .codeprint import code_fingerprint as code_fingerprint
from .digests import KeyedHash as KeyedHash
from .digests import digest_value as digest_value
from .digests import update_buffer as update_buffer
from .digests import update_value as update_value
from .errors import CrystallizeUsageError
from .inputs import artifacts_read
from .plugins import SeedPlugin
from .state import update_state

if TYPE_CHECKING:
    from .experiment import Experiment


# --- steps and whole experiments ------------------------------------------------------------


def step_code(step: Any) -> bytes:
    """The code fingerprint of a step: its function, or its class for class-based steps."""
    return step_print(step).digest


def fingerprint(experiment: Experiment, _seen: frozenset[int] = frozenset()) -> str:
    """A digest of what defines the experiment's data: change any of it and it changes.

    The upstream experiments whose artifacts it reads are part of its data too.
    """
    h = hashlib.sha256(b"crystallize-definition-1")
    seeds = experiment.get_plugin(SeedPlugin) or SeedPlugin()
    update_value(h, seeds.root_seed(experiment.artifact_name))  # other seeds: other data
    source = experiment.datasource
    h.update(step_code(source))
    _lenient(h, source.params)
    seen = _seen | {id(experiment)}
    for artifact in artifacts_read(source):
        producer = artifact.producer
        if producer is not None and id(producer) not in seen:  # a cycle is refused elsewhere
            update_value(h, (artifact.name, producer.replicates, fingerprint(producer, seen)))
    for step in experiment.steps:
        h.update(step_code(step))
        _lenient(h, step.params)
    _lenient(h, experiment.initial_ctx)
    for name, treatment in experiment.conditions():
        update_value(h, name)
        if treatment is not None:
            if treatment.is_callable:
                h.update(code_fingerprint(treatment.function))
            else:
                _lenient(h, treatment.apply_map)
    return h.hexdigest()[:16]


def definition_fingerprint(experiment: Experiment, _seen: frozenset[int] = frozenset()) -> str:
    """A digest of what makes two runs of the experiment comparable, code aside.

    It covers the data source's name (not its code) and parameters, the steps' names, order
    and parameters (defaults included), the initial context, the conditions (a mapping
    treatment by its values, a callable one by its function's qualified name), the
    replicates, the root seed, the hypotheses (name, verifier and its parameters, metrics),
    the definition fingerprints of the upstream experiments it reads, and the sequential
    design (looks, spending, futility, first look) when there is one.
    """
    h = hashlib.sha256(b"crystallize-comparable-1")
    seeds = experiment.get_plugin(SeedPlugin) or SeedPlugin()
    update_value(h, ("seed", seeds.root_seed(experiment.artifact_name)))
    update_value(h, ("replicates", experiment.replicates))
    source = experiment.datasource
    update_value(h, ("source", _identity(source)))
    _lenient(h, _params(source))
    seen = _seen | {id(experiment)}
    for artifact in artifacts_read(source):
        producer = artifact.producer
        if producer is not None and id(producer) not in seen:  # a cycle is refused elsewhere
            upstream = definition_fingerprint(producer, seen)
            update_value(h, ("upstream", artifact.name, upstream))
    for step in experiment.steps:
        update_value(h, ("step", _identity(step)))
        _lenient(h, _params(step))
    update_value(h, "context")
    _lenient(h, experiment.initial_ctx)
    for name, treatment in experiment.conditions():
        update_value(h, ("condition", name))
        if treatment is not None:
            function = treatment.function
            if function is not None:
                update_value(h, ("callable", getattr(function, "__qualname__", repr(function))))
            else:
                _lenient(h, treatment.apply_map)
    for hyp in experiment.hypotheses:
        update_value(h, ("hypothesis", hyp.name, hyp.verifier_name))
        _lenient(h, dict(getattr(hyp.verifier, "params", None) or {}))
        _lenient(h, [list(g) for g in hyp.groups] if hyp.groups is not None else "every metric")
    design = experiment.sequential
    if design is not None:  # absent from a fixed design's digest, which stays as it was
        update_value(h, "sequential")
        _lenient(h, design.describe())
    return h.hexdigest()[:16]


def code_prints(experiment: Experiment) -> dict[str, str]:
    """The code digest of the data source, of each step and of each callable treatment, by
    name, in the experiment's order: their code, the helpers it calls and the module-level
    data it reads (by content)."""
    source = experiment.datasource
    prints = {_identity(source): _code_digest(step_print(source))}
    for step in experiment.steps:
        prints.setdefault(_identity(step), _code_digest(step_print(step)))
    for name, treatment in experiment.conditions():
        function = treatment.function if treatment is not None else None
        if function is not None:
            prints.setdefault(name, _code_digest(code_print(function)))
    return prints


def _code_digest(printed: CodePrint) -> str:
    h = hashlib.sha256(printed.digest)
    with contextlib.suppress(CrystallizeUsageError):  # data that cannot be digested
        update_state(h, printed.state)
    return h.hexdigest()[:16]


def _identity(component: Any) -> str:
    """A data source's or step's name: the decorated function's, else its class's."""
    name = getattr(component, "name", None)
    return name if isinstance(name, str) else type(component).__qualname__


def _params(component: Any) -> dict[str, Any]:
    """The parameters a data source or step runs with: explicit ones over the defaults."""
    factory = getattr(component, "factory", None)
    signature = getattr(factory, "signature", None)
    defaults = dict(getattr(signature, "defaults", None) or {})
    return {**defaults, **dict(component.params)}


def _lenient(h: Any, value: Any) -> None:
    """Digest ``value``; a part that cannot be digested counts by its type alone."""
    if isinstance(value, Mapping):
        for key in sorted(value, key=str):
            update_value(h, str(key))
            _lenient(h, value[key])
        return
    try:
        update_value(h, value)
    except TypeError:
        update_value(h, f"{type(value).__module__}.{type(value).__qualname__}")

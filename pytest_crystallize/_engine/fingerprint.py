"""Fingerprints of whole experiments, and the digests cache keys are made of.

Value and buffer digests live in :mod:`.digests`, code fingerprints in :mod:`.codeprint`,
module state digested by content in :mod:`.state`; the names other modules use are
re-exported here. An experiment's fingerprint covers what defines its data: the seed, the
code and parameters of its data source and steps, its initial context, its treatments, and
the upstream experiments it reads.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .codeprint import code_fingerprint as code_fingerprint
from .codeprint import step_print
from .digests import KeyedHash as KeyedHash
from .digests import digest_value as digest_value
from .digests import update_buffer as update_buffer
from .digests import update_value as update_value
from .inputs import artifacts_read
from .plugins import SeedPlugin

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

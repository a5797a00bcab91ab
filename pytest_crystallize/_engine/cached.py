"""A cacheable step's run through the step cache: its key, a hit replayed, a miss recorded.

The key covers the step's code (:mod:`.codeprint`), the module-level data that code reads
(digested by content, :mod:`.state`), the files it declares with ``depends_on``
(:mod:`.depends`), its resolved parameters, its input, and its seed unless it is
deterministic. What the step reads of the context through ``ctx[...]``, ``ctx.get`` or
``in`` is only known once it has run, so it keys the entry in a second step:

- under the key, a step that read nothing of the context stores its entry itself;
- a step that read the context stores, under the key, a small :class:`ReadsManifest` listing
  the sets of context keys it read (one per way it ran, usually one), and its entry under
  the digest of (key, those keys' values). A baseline and a treatment that give the step
  different values get two entries side by side, and both hit on the next run.

On a hit, the context values the entry recorded are checked once more against the run's:
an entry computed with other values is never served.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from time import perf_counter
from typing import Any

from .cache import CacheEntry, CacheStats, RandomWatch, StepCache, reads_digest, restore_random
from .codeprint import CodePrint
from .context import FrozenContext
from .depends import update_files
from .digests import update_value
from .state import update_state
from .steps import FunctionStep, PipelineStep

_MAX_SETS = 8  # distinct sets of context keys a manifest remembers (the latest ones)


@dataclass(frozen=True)
class ReadsManifest:
    """The sets of context keys a step read when its entries under one key were computed."""

    key_sets: tuple[tuple[str, ...], ...]


def entry_key(key: str, reads: tuple[tuple[str, bytes], ...]) -> str:
    """Where the entry of a step that read the context lives: the key and the values read."""
    h = hashlib.sha256(b"crystallize-reads-1")
    update_value(h, (key, reads))
    return h.hexdigest()


def _fresh(entry: CacheEntry, values: Any) -> bool:
    """Whether every context value the entry's step read is what this run holds."""
    return reads_digest(values, (k for k, _ in entry.reads)) == entry.reads


async def run_cached(
    cache: StepCache,
    stats: CacheStats,
    step: PipelineStep,
    data: Any,
    ctx: FrozenContext,
    printed: CodePrint,
    seed: tuple[int, int, int] | None,
) -> Any:
    """Run a cacheable step through the cache: replay a hit, record and store a miss."""
    params, call = call_of(step, data, ctx)
    key = cache.step_key(printed.digest, params, data, seed, _extra(step, printed))
    values = ctx.raw()
    probe = CacheStats()
    found = cache.load(key, probe)
    manifest = found.output if found is not None else None
    entry = None
    if isinstance(manifest, ReadsManifest):
        for keys in reversed(manifest.key_sets):  # the latest first
            current = reads_digest(values, keys)
            candidate = cache.load(entry_key(key, current), probe)
            if candidate is not None and candidate.reads == current:  # checked once more
                entry = candidate
                break
    else:
        manifest = None
        if found is not None and _fresh(found, values):
            entry = found
    stats.rejected += probe.rejected
    if entry is not None:
        stats.hits += 1
        stats.seconds_saved += entry.seconds
        return replay(entry, ctx)
    stats.misses += 1
    out, entry = await record(call, ctx)
    if not entry.reads and manifest is None:
        cache.store(key, entry, stats)
        return out
    cache.store(entry_key(key, entry.reads), entry, stats)
    read = tuple(k for k, _ in entry.reads)
    known = manifest.key_sets if manifest is not None else ()
    if read not in known:
        listed = ReadsManifest((*known, read)[-_MAX_SETS:])
        cache.store(key, CacheEntry(listed, (), (), (), (), 0.0), stats)
    return out


def _extra(step: PipelineStep, printed: CodePrint) -> Callable[[Any], None] | None:
    """What the key covers besides code, parameters, input and seed: the module-level data
    the step's code reads, and the files it declares."""
    files = None
    if isinstance(step, FunctionStep) and step.factory.depends_on:
        files = step.dependencies()
    if not printed.state and files is None:
        return None

    def feed(h: Any) -> None:
        update_state(h, printed.state)
        if files is not None:
            update_files(h, *files)

    return feed


def call_of(step: PipelineStep, data: Any, ctx: FrozenContext) -> tuple[Any, Callable[[], Any]]:
    """What a cacheable step's key covers of its arguments, and the call that computes it.

    A function step's parameters are resolved once (explicit, else injected from the
    context); an artifact argument counts by its name. A class step keys on ``params``.
    """
    if not isinstance(step, FunctionStep):
        return step.params, lambda: step(data, ctx)
    kwargs = step.factory.signature.resolve(step.explicit, ctx, step.bound)
    params = {
        k: (("artifact", step.explicit[k].name) if k in step.bound else v)
        for k, v in kwargs.items()
        if k != "ctx"
    }
    fn = step.factory.fn
    return params, lambda: fn(data, **kwargs)


def replay(entry: CacheEntry, ctx: FrozenContext) -> Any:
    """Leave ``ctx`` as the step left it when the entry was recorded; return its output."""
    for name, value in entry.writes:
        ctx.add(name, value)
    for name, value, tags in entry.metrics:
        ctx.metrics.add(name, value, tags)
    for name, blob in entry.artifacts:
        ctx.artifacts.add(name, blob)
    restore_random(ctx, entry.random)
    return entry.output


async def record(call: Callable[[], Any], ctx: FrozenContext) -> tuple[Any, CacheEntry]:
    """Compute a step, recording what it did to the context: its output and the entry."""
    values = ctx.raw()
    keys_before = set(values)
    counts = ctx.metrics.counts()
    pending = {name for name, _ in ctx.artifacts}
    watch = RandomWatch()
    start = perf_counter()
    with ctx.recording_reads() as reads:
        out = call()
        if inspect.isawaitable(out):
            out = await out
    seconds = perf_counter() - start
    read_keys = [k for k in reads if k in keys_before or k not in values]
    entry = CacheEntry(
        out,
        ctx.metrics.since(counts),
        tuple((n, b) for n, b in ctx.artifacts if n not in pending),
        tuple((k, v) for k, v in values.items() if k not in keys_before),
        reads_digest(values, read_keys),
        seconds,
        watch.after(ctx),
    )
    return out, entry

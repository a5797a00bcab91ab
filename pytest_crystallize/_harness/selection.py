"""Selection that keeps experiments whole: verdicts are selected, their chunks follow.

Each (hypothesis, treatment) verdict is a collected :class:`~.collect.VerdictItem`, so ``-k``,
``-m``, node ids, ``--lf``, ``--sw``, ``--deselect`` and marks (a module's ``pytestmark``,
the builder's ``.marks(...)``, a conftest's ``add_marker``) select it as they select a test.
Chunks are kept out of that selection: while the other plugins deselect, the chunks of an
experiment with verdict items are neither counted nor reported as deselected. Afterwards the
chunks each selected verdict needs (its treatment's and the baseline's, all of them) are put
back in place of the experiment's items, and the others are deselected. A verdict that a skip
mark skips (or ``xfail(run=False)``) stays as an item for pytest to skip and runs nothing.

When a command line names conditions or chunks of an experiment (``f.py::exp::fast``), no
verdict item of it is collected: the chunks selected choose their treatments' verdicts, and
the missing chunks they need (the baseline's) are made from the experiment's collector.

The chunks of experiments with a sequential design run look by look: every experiment's
and every condition's look-1 chunks, then look 2's, and so on, so that early looks finish
(and may decide their experiment, sparing the later ones) first.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from _pytest.skipping import evaluate_skip_marks, evaluate_xfail_marks

from .._engine.context import BASELINE_CONDITION
from .collect import ChunkItem, ConditionNode, ExperimentNode, HypothesisNode, VerdictItem
from .collect import experiment_of as _experiment_of


@dataclass
class _Group:
    """The chunk and verdict items of one experiment that were collected."""

    node: ExperimentNode
    chunks: list[ChunkItem] = field(default_factory=list)
    verdicts: list[VerdictItem] = field(default_factory=list)


class Selection:
    """The outermost ``pytest_collection_modifyitems`` wrapper: registered after pytest's
    own plugins (``--lf``'s included), so it sees the selection they made."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.guarded: set[int] = set()  # ids of the chunks the others may not deselect

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> Generator[None, None, None]:
        before = list(items)
        groups = _groups(before)
        self.guarded = {id(c) for g in groups if g.verdicts for c in g.chunks}
        try:
            yield
        finally:
            self.guarded = set()
        keep(config, groups, items)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_deselected(self, items: Sequence[pytest.Item]) -> Generator[None, None, None]:
        if self.guarded and isinstance(items, list):  # nobody else sees these go
            items[:] = [item for item in items if id(item) not in self.guarded]
        yield


def _groups(items: Sequence[pytest.Item]) -> list[_Group]:
    found: dict[int, _Group] = {}
    for item in items:
        if isinstance(item, ChunkItem | VerdictItem):
            node = _experiment_of(item)
            group = found.setdefault(id(node), _Group(node))
            if isinstance(item, ChunkItem):
                group.chunks.append(item)
            else:
                group.verdicts.append(item)
    return list(found.values())


def _full_tree(
    group: _Group,
) -> tuple[dict[str, list[ChunkItem]], dict[tuple[str, str], VerdictItem]]:
    """Every chunk (by condition, in order) and verdict item of the experiment: the collected
    ones, and for the others items made from its collector."""
    collected: dict[str, pytest.Item] = {i.nodeid: i for i in (*group.chunks, *group.verdicts)}
    chunks: dict[str, list[ChunkItem]] = {}
    verdicts: dict[tuple[str, str], VerdictItem] = {}
    for child in group.node.collect():
        if isinstance(child, ConditionNode):
            members = [collected.get(c.nodeid, c) for c in child.collect()]
            chunks[child.name] = [c for c in members if isinstance(c, ChunkItem)]
        elif isinstance(child, HypothesisNode):
            for verdict in child.collect():
                kept = collected.get(verdict.nodeid, verdict)
                if isinstance(kept, VerdictItem):
                    verdicts[(kept.hypothesis, kept.treatment)] = kept
    return chunks, verdicts


def _skipped(item: VerdictItem, config: pytest.Config) -> bool:
    """A skip mark applies, or ``xfail(run=False)``: pytest skips the item itself."""
    if evaluate_skip_marks(item) is not None:
        return True
    xfailed = None if config.option.runxfail else evaluate_xfail_marks(item)
    return xfailed is not None and not xfailed.run


def _xfail(item: VerdictItem, config: pytest.Config) -> list[Any] | None:
    """``[reason, strict]`` of the xfail mark that applies to ``item``, if one does."""
    xfailed = None if config.option.runxfail else evaluate_xfail_marks(item)
    return None if xfailed is None else [xfailed.reason, xfailed.strict]


def _dropped_conditions(config: pytest.Config, chunks: Sequence[ChunkItem]) -> set[str]:
    """Conditions with a chunk that ``--deselect`` names (or a prefix of its node id)."""
    prefixes = tuple(config.getoption("deselect", None) or ())
    return {c.condition.name for c in chunks if prefixes and c.nodeid.startswith(prefixes)}


def keep(config: pytest.Config, groups: Sequence[_Group], items: list[pytest.Item]) -> None:
    """Replace each experiment's surviving items by the chunks its selected verdicts need."""
    survivors = {id(item) for item in items}
    blocks: dict[int, list[pytest.Item]] = {}
    collect_only = bool(config.option.collectonly)
    for group in groups:
        kept_chunks = [c for c in group.chunks if id(c) in survivors]
        if not group.verdicts and not kept_chunks:
            continue
        chunks, verdicts = _full_tree(group)
        dropped = _dropped_conditions(config, group.chunks)
        if group.verdicts:
            chosen = [v for v in group.verdicts if id(v) in survivors]
            explicit: set[str] = set()
        else:  # the command line named conditions or chunks: they choose the verdicts
            explicit = {c.condition.name for c in kept_chunks}
            chosen = [v for (_, t), v in verdicts.items() if t in explicit]
        chosen = [
            v for v in chosen if v.treatment not in dropped and BASELINE_CONDITION not in dropped
        ]
        skipped = [v for v in chosen if _skipped(v, config)]
        judged = [v for v in chosen if v not in skipped]
        need = explicit | (
            {BASELINE_CONDITION} | {v.treatment for v in judged} if judged else set()
        )
        wanted = [[v.hypothesis, v.treatment, _xfail(v, config)] for v in judged]
        needed: list[ChunkItem] = []
        for condition, members in chunks.items():
            if condition in need:
                for chunk in members:
                    chunk.verdicts = wanted
                needed += members
        ordered = sorted(needed, key=lambda c: c.look)  # stable: every condition's look 1 first
        block: list[pytest.Item] = [*ordered]
        block += [v for v in chosen if v in skipped or (collect_only and v in judged)]
        blocks[id(group.node)] = block
    final: list[pytest.Item] = []
    placed: set[int] = set()
    for item in items:
        if not isinstance(item, ChunkItem | VerdictItem):
            final.append(item)
            continue
        node = id(_experiment_of(item))
        if node in blocks and node not in placed:
            placed.add(node)
            final += blocks[node]
    _interleave_looks(final)
    running = {id(item) for item in final}
    # The chunks shielded from the other plugins' deselection and not needed after all.
    gone = [c for g in groups if g.verdicts for c in g.chunks if id(c) not in running]
    items[:] = final
    if gone:
        config.hook.pytest_deselected(items=gone)


def _interleave_looks(items: list[pytest.Item]) -> None:
    """Run every experiment's look 1 before any look 2, and so on: the chunks keep their
    places among the other items and are sorted by look among themselves (stably: each
    experiment's chunks of a look stay together and in order). While the other experiments'
    chunks of a look run, the decisions of the first ones reach the workers before they get
    to their next looks, which then skip instead of running for nothing."""
    slots = [(i, item) for i, item in enumerate(items) if isinstance(item, ChunkItem)]
    if len({chunk.look for _, chunk in slots}) < 2:
        return
    ordered = sorted((chunk for _, chunk in slots), key=lambda chunk: chunk.look)
    for (i, _), chunk in zip(slots, ordered, strict=True):
        items[i] = chunk


def collected_line(items: Sequence[pytest.Item], shard: str | None = None) -> str | None:
    """The header's count of verdicts next to pytest's count of items (``shard``: the
    session is that shard, which judges none of them)."""
    chunks = [item for item in items if isinstance(item, ChunkItem)]
    verdicts = {
        (id(_experiment_of(c)), str(h), str(t)) for c in chunks for h, t, _ in c.verdicts or ()
    }
    verdicts |= {
        (id(_experiment_of(v)), v.hypothesis, v.treatment)
        for v in items
        if isinstance(v, VerdictItem)
    }
    if not chunks and not verdicts:
        return None
    selected = f"selected {len(chunks)} chunk{'s' * (len(chunks) != 1)}"
    if shard:
        return f"{selected} of shard {shard} (verdicts: by the merge of the shards' reports)"
    return (
        f"{selected} and {len(verdicts)} verdict{'s' * (len(verdicts) != 1)} "
        "(reported once their chunks have run)"
    )

"""How xdist's controller serves sequential designs: chunks handed out a few at a time in
the selection's order (every look 1 before any look 2), so a decision can spare the later
looks' chunks before a worker holds them; the look plans computed while the workers start.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from pytest_crystallize import (
    Experiment,
    Hypothesis,
    data_source,
    pipeline_step,
    stats,
    treatment,
)
from pytest_crystallize._harness.looks import prepare_judge
from pytest_crystallize._harness.xdist import CHUNKS_AHEAD, XdistHooks, look_ordered
from pytest_crystallize._report.sequential import design_plans
from pytest_crystallize.stats._sequential_bounds import _efficacy_bounds

SENT_ORDER: list[int] = []  # every node's items, in the order they were sent


class Node:
    """A worker as the scheduler sees it: what it was sent, in order."""

    def __init__(self, name: str) -> None:
        self.sent: list[int] = []
        self.shutting_down = False
        self.gateway = type("Gateway", (), {"id": name})()  # what xdist's log names

    def send_runtest_some(self, indices: list[int]) -> None:
        self.sent.extend(indices)
        SENT_ORDER.extend(indices)

    def shutdown(self) -> None:
        self.shutting_down = True


# What ``-n 2`` amounts to once xdist has read the command line (``pytest_cmdline_main``).
TWO = ("--dist", "load", "--tx", "2*popen")


def scheduled(pytester: pytest.Pytester, ids: list[str]) -> tuple[Any, Node, Node]:
    scheduler = look_ordered(pytester.parseconfig(*TWO), None)
    SENT_ORDER.clear()
    first, second = Node("gw0"), Node("gw1")
    for node in (first, second):
        scheduler.add_node(node)
        scheduler.add_node_collection(node, ids)
    scheduler.schedule()
    return scheduler, first, second


CHUNKS = [f"f.py::exp{e}::{c}::chunk-{k}" for k in range(4) for e in range(5) for c in "ab"]


def test_chunks_go_out_a_few_at_a_time_in_the_selections_order(pytester: pytest.Pytester) -> None:
    scheduler, first, second = scheduled(pytester, CHUNKS)
    # xdist alone sends each worker a quarter of its share at once (10 of these 40) and
    # then half of what is left: a worker would hold look 3 while look 2 still runs.
    assert (first.sent, second.sent) == ([0, 1, 2], [3, 4, 5])
    done: list[int] = []
    while scheduler.pending:
        assert (first.shutting_down, second.shutting_down) == (False, False)
        node = first if len(done) % 2 == 0 else second
        index = node.sent[len([i for i in done if i in node.sent])]
        # A long chunk: xdist alone would not refill a worker holding two items.
        scheduler.mark_test_complete(node, index, duration=5.0)
        done.append(index)
        assert len(scheduler.node2pending[node]) == CHUNKS_AHEAD  # refilled at once
    assert SENT_ORDER[:] == list(range(len(CHUNKS)))  # each chunk once, in the selection's order
    # Everything is handed out: both workers are told so now, not at their next completion,
    # so neither waits for the controller before running its last chunk.
    assert (first.shutting_down, second.shutting_down) == (True, True)


def test_other_tests_go_out_as_xdist_sends_them(pytester: pytest.Pytester) -> None:
    ids = [f"test_a.py::test_{i}" for i in range(40)]
    _, first, second = scheduled(pytester, ids)
    assert (len(first.sent), len(second.sent)) == (5, 5)  # a quarter of each one's share


def test_the_scheduler_is_xdists_own_for_other_distributions_or_a_chunk_size_given(
    pytester: pytest.Pytester,
) -> None:
    def made(*args: str) -> Any:
        config = pytester.parseconfig(*args)
        return XdistHooks(config).pytest_xdist_make_scheduler(config=config, log=None)

    assert type(made(*TWO)).__name__ == "LookOrderedScheduling"
    assert made("--dist", "worksteal", "--tx", "2*popen") is None
    assert made("--dist", "loadfile", "--tx", "2*popen") is None
    assert made(*TWO, "--maxschedchunk", "5") is None


def _design() -> Experiment:
    @data_source
    def zero(ctx: Any) -> float:
        return 0.0

    @pipeline_step()
    def measure(value: float, ctx: Any) -> tuple[float, dict[str, float]]:
        return value, {"m": value}

    return (
        Experiment.builder("warm")
        .datasource(zero())
        .add_step(measure())
        .treatments([treatment("t", {})])
        .hypotheses([Hypothesis(stats.welch_t_test(alpha=0.0421), "m")])
        .replicates(24)
        .sequential(looks=3)
        .build()
    )


def test_the_controller_computes_the_look_plans_while_the_workers_start(
    pytester: pytest.Pytester,
) -> None:
    experiment = _design()
    alone = pytester.parseconfigure("-p", "no:xdist")
    prepare_judge(alone, experiment)  # one process judges where it runs: nothing to prepare
    assert "crystallize-looks" not in [t.name.split("_")[0] for t in threading.enumerate()]

    _efficacy_bounds.cache_clear()
    controller = pytester.parseconfigure(*TWO)
    prepare_judge(controller, experiment)
    deadline = time.monotonic() + 60
    while _efficacy_bounds.cache_info().currsize < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _efficacy_bounds.cache_info().currsize == 1  # the one alpha of this design
    hits = _efficacy_bounds.cache_info().hits
    design_plans(experiment)  # what the judge asks for at the first look: ready
    assert _efficacy_bounds.cache_info().hits == hits + 1

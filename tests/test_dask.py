"""Dask: a script's runs, or every chunk's under pytest, on a Dask cluster give the results of
serial runs; a dead worker fails only the runs it held; bad addresses and a missing
``distributed`` get clear errors. One local cluster of two worker processes serves the module."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _support import NO_XDIST, SIGNIFICANT, TWO_WORKERS, WELCH, verdict_heads

from pytest_crystallize import (
    CrystallizeUsageError,
    DaskExecution,
    Experiment,
    ParallelExecution,
    ShippingError,
    data_source,
    pipeline_step,
    treatment,
)
from pytest_crystallize._engine.dask import open_client

distributed = pytest.importorskip("distributed", reason="the dask extra is not installed")

pytestmark = pytest.mark.usefixtures("in_tmp_path")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """Two worker processes of one thread; a task whose worker dies is not retried (the
    dead-worker test would otherwise kill four workers in turn)."""
    import dask

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        local = distributed.LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0"
        )
    with local:
        yield local


@pytest.fixture
def client(cluster: Any) -> Iterator[Any]:
    with distributed.Client(cluster, set_as_default=False) as made:
        made.wait_for_workers(2, timeout=30)
        yield made


# --- module-level components (Dask workers find them by reference) --------------------------


@data_source
def draw(ctx):
    return float(ctx.rng.normal())


@pipeline_step
def where(value, ctx, *, delta=0.0):
    ctx.artifacts.add("out.txt", f"{ctx['condition']}-{ctx['replicate']}".encode())
    return value + delta, {"score": value + delta, "pid": os.getpid()}


def build(plugin: Any, **options: Any) -> Experiment:
    return Experiment(
        draw(),
        [where()],
        plugins=[plugin],
        name="dasky",
        treatments=options.get("treatments", [treatment("boost", {"delta": 1.0})]),
        replicates=4,
    )


def scores(result: Any) -> list[tuple[str, int, Any]]:
    return [(r.condition, r.replicate, r.metrics["score"]) for r in result.runs]


def test_a_clients_executor_and_dask_execution_run_on_the_workers_like_serial_runs(
    client: Any, tmp_path: Path
) -> None:
    serial = build(ParallelExecution(max_workers=1)).run()
    workers = set(client.run(os.getpid).values())
    by_executor = build(ParallelExecution(executor=client.get_executor())).run()
    by_plugin = build(DaskExecution(client.scheduler.address)).run()
    for result in (by_executor, by_plugin):
        assert scores(result) == scores(serial)
        assert {r.metrics["pid"][0] for r in result.runs} <= workers
        assert not result.errors
        # The files written on the workers are listed as with a process pool.
        files = result.artifacts["out.txt"]
        assert sorted(files) == ["baseline", "boost"]
        path = Path(files["boost"][3])
        assert (tmp_path / path).read_bytes() == b"boost-3"


def test_dask_execution_without_an_address_starts_a_local_cluster_and_closes_it() -> None:
    serial = build(ParallelExecution(max_workers=1)).run()
    plugin = DaskExecution(n_workers=1, threads_per_worker=1, dashboard_address=":0")
    result = build(plugin).run()
    assert scores(result) == scores(serial)
    assert {r.metrics["pid"][0] for r in result.runs} != {os.getpid()}


def test_what_cannot_be_shipped_is_not_sent(client: Any) -> None:
    lam = treatment("boost", lambda ctx: {"delta": 1.0})
    with pytest.raises(ShippingError) as excinfo:
        build(ParallelExecution(executor=client.get_executor()), treatments=[lam]).run()
    assert str(excinfo.value).startswith(
        "experiment 'dasky' cannot be sent to worker processes: treatment 'boost'"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_bad_addresses_and_a_missing_distributed_get_clear_errors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(CrystallizeUsageError) as bad:
        DaskExecution("scheduler")
    assert str(bad.value) == (
        "DaskExecution(address=...) expected a Dask scheduler address such as "
        "tcp://host:8786, got 'scheduler'"
    )
    address = f"tcp://127.0.0.1:{free_port()}"
    with pytest.raises(CrystallizeUsageError) as away:
        build(DaskExecution(address)).run()
    assert str(away.value).startswith(
        f"DaskExecution of experiment 'dasky': cannot reach the Dask scheduler at {address!r} ("
    )
    assert str(away.value).endswith("); start one (`dask scheduler`) or check the address")
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(CrystallizeUsageError) as missing:
        open_client(None, {}, "DaskExecution of experiment 'dasky'")
    assert str(missing.value) == (
        "DaskExecution of experiment 'dasky' needs the distributed package: "
        "pip install 'pytest-crystallize[dask]'"
    )


# --- under pytest: --crystallize-dask -------------------------------------------------------

SOURCE = (
    """\
from __future__ import annotations

import multiprocessing
import os

from pytest_crystallize import (
    Experiment, ParallelExecution, data_source, hypothesis, pipeline_step, treatment, verifier,
)

LOG = "WHERE"  # the test's folder: on a Dask worker, this file is a copy elsewhere


@data_source
def noise(ctx):
    return float(ctx.rng.normal(0.0, 1.0))


@pipeline_step()
def shift(value, ctx, *, delta=0.0):
    if ctx["condition"] == "boost" and ctx["replicate"] == DIES:
        os._exit(1)
    kind = "child" if multiprocessing.parent_process() is not None else "main"
    with open(LOG, "a") as log:
        log.write(f"{os.getpid()} {kind}\\n")
    return value + delta, {"score": value + delta}
"""
    + WELCH.format(returns=SIGNIFICANT)
    + """

@hypothesis(verifier=welch(), metrics="score")
def by_p(result):
    return result["p_value"]


demo = (
    Experiment.builder("demo")
    .datasource(noise())
    .add_step(shift())
    .treatments([treatment("boost", {"delta": 5.0})])
    .hypotheses([by_p])
    .plugins([ParallelExecution(max_workers=2)])
    .replicates(8)
    .build()
)
"""
)

# The verdict of serial runs (tests/test_plugin_execution.py has the same experiment).
SERIAL = ["PASSED p=2.92e-08 experiment_demo.py::demo::by_p::boost - welch: p=2.921e-08"]

EITHER_WAY = pytest.mark.parametrize(
    "dist", [pytest.param(TWO_WORKERS, id="n2"), pytest.param(NO_XDIST, id="no-xdist")]
)


def write(tester: pytest.Pytester, dies: int) -> None:
    log = str(tester.path / "where.log")
    tester.makepyfile(experiment_demo=SOURCE.replace("DIES", str(dies)).replace("WHERE", log))


@EITHER_WAY
def test_crystallize_dask_sends_every_chunks_runs_to_the_cluster(
    ourtester: pytest.Pytester, client: Any, dist: list[str]
) -> None:
    write(ourtester, dies=-1)
    address = client.scheduler.address
    result = ourtester.runpytest("--crystallize", "-rA", f"--crystallize-dask={address}", *dist)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert verdict_heads(result.stdout.str()) == SERIAL
    rows = [line.split() for line in (ourtester.path / "where.log").read_text().splitlines()]
    assert len(rows) == 16
    assert {kind for _, kind in rows} == {"child"}
    assert {int(pid) for pid, _ in rows} <= set(client.run(os.getpid).values())


@EITHER_WAY
def test_a_dask_worker_that_dies_fails_the_runs_it_held_naming_them(
    ourtester: pytest.Pytester, client: Any, dist: list[str]
) -> None:
    write(ourtester, dies=1)
    address = client.scheduler.address
    result = ourtester.runpytest("--crystallize", "-rA", f"--crystallize-dask={address}", *dist)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines_random(
        [
            "replicate 1: worker 'Dask cluster tcp://*' raised KilledWorker: experiment 'demo': "
            "the worker running condition 'boost', replicate* 1* died or failed: *",
            "*ERROR at setup of demo::by_p::boost*",
        ]
    )
    outcomes = result.parseoutcomes()
    assert outcomes["errors"] == 1, outcomes  # the verdict
    # The chunk of replicate 1 fails, and any other whose runs the dying worker held then
    # (another process's, under xdist), each naming its runs; the others pass.
    assert outcomes["failed"] >= 1, outcomes
    assert outcomes["failed"] + outcomes.get("passed", 0) == (8 if dist == TWO_WORKERS else 2)
    lost = [line for line in result.outlines if line.startswith("replicate ")]
    assert len(lost) >= outcomes["failed"], lost
    assert all(" died or failed: " in line for line in lost), lost


def test_an_unreachable_scheduler_fails_the_chunks_naming_the_option_and_address(
    ourtester: pytest.Pytester,
) -> None:
    write(ourtester, dies=-1)
    address = f"tcp://127.0.0.1:{free_port()}"
    result = ourtester.runpytest("--crystallize", f"--crystallize-dask={address}", *NO_XDIST)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            f"*CrystallizeUsageError: --crystallize-dask={address}: cannot reach the Dask "
            f"scheduler at '{address}' (*); start one (`dask scheduler`) or check the address"
        ]
    )


def test_a_bad_address_is_a_usage_error_naming_the_option(ourtester: pytest.Pytester) -> None:
    result = ourtester.runpytest("--crystallize", "--crystallize-dask=scheduler")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*argument --crystallize-dask: expected a Dask scheduler address such as "
            "tcp://host:8786, got 'scheduler'"
        ]
    )

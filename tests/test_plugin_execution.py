"""Under pytest, a chunk runs its replicates with the experiment's execution plugin: threads,
a process pool (one per experiment and process for the session), async, a user's own plugin;
the verdicts are those of serial runs. ``--crystallize-executor=serial`` runs them one after
another. Each run writes where it ran (process, thread) to a log the tests read."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from _support import NO_XDIST, SIGNIFICANT, TWO_WORKERS, WELCH, verdict_heads

EITHER_WAY = pytest.mark.parametrize(
    "dist", [pytest.param(TWO_WORKERS, id="n2"), pytest.param(NO_XDIST, id="no-xdist")]
)

HEADER = (
    """\
from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
import time
from pathlib import Path

from pytest_crystallize import (
    AsyncExecution,
    BasePlugin,
    Experiment,
    ParallelExecution,
    data_source,
    hypothesis,
    pipeline_step,
    treatment,
    verifier,
)

LOG = Path(__file__).with_name("where.log")


@data_source
def noise(ctx):
    return float(ctx.rng.normal(0.0, 1.0))


def note(ctx, what):
    kind = "child" if multiprocessing.parent_process() is not None else "main"
    thread = threading.current_thread().name
    with LOG.open("a") as log:
        log.write(f"{what} {ctx['replicate']} {os.getpid()} {thread} {kind}\\n")


@pipeline_step()
def shift(value, ctx, *, delta=0.0):
    note(ctx, "start")
    time.sleep(0.01)
    note(ctx, "end")
    return value + delta, {"score": value + delta}


@pipeline_step()
async def ashift(value, ctx, *, delta=0.0):
    note(ctx, "start")
    await asyncio.sleep(0.01)
    note(ctx, "end")
    return value + delta, {"score": value + delta}


class OwnThreads(BasePlugin):
    \"\"\"A user's execution plugin: a thread of its own per run.\"\"\"

    def run_experiment_loop(self, experiment, plan):
        results = [None] * len(plan)

        def one(index):
            results[index] = plan.execute(index)

        threads = [
            threading.Thread(target=one, args=(i,), name=f"own-{i}") for i in range(len(plan))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return results
"""
    + WELCH.format(returns=SIGNIFICANT)
    + """

@hypothesis(verifier=welch(), metrics="score")
def by_p(result):
    return result["p_value"]


demo = (
    Experiment.builder("demo")
    .datasource(noise())
    .add_step(@STEP@)
    .treatments([treatment("boost", {"delta": 5.0})])
    .hypotheses([by_p])
    .plugins([@PLUGIN@])
    .replicates(8)
    .build()
)
"""
)


def source(plugin: str, step: str = "shift()") -> str:
    return HEADER.replace("@PLUGIN@", plugin).replace("@STEP@", step)


def write(tester: pytest.Pytester, plugin: str, step: str = "shift()") -> Path:
    tester.makepyfile(experiment_demo=source(plugin, step))
    return tester.path / "where.log"


def ran(tester: pytest.Pytester, log: Path, *args: str) -> tuple[list[str], list[list[str]]]:
    """Run the session (it passes); its verdict lines and the log's ``[what, replicate, pid,
    thread, kind]`` rows (the log is removed for the next run)."""
    result = tester.runpytest("--crystallize", "-rA", *args)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    verdicts = verdict_heads(result.stdout.str())
    assert len(verdicts) == 1, result.stdout.str()
    assert verdicts[0].startswith("PASSED p=")
    rows = [line.split() for line in log.read_text().splitlines()]
    log.unlink()
    assert len(rows) == 2 * 2 * 8  # a start and an end per run: 2 conditions x 8 replicates
    return verdicts, rows


# The verdict of serial runs (seeds do not depend on where a run executes).
SERIAL = ["PASSED p=2.92e-08 experiment_demo.py::demo::by_p::boost - welch: p=2.921e-08"]


def serial(tester: pytest.Pytester, log: Path, dist: list[str]) -> list[str]:
    """The verdicts of serial runs: under ``-p no:xdist`` those of a session with
    ``--crystallize-executor=serial``, every run in the chunk's thread (with workers, the
    same, known from there: a second session with workers would double the test's time)."""
    if dist == TWO_WORKERS:
        return SERIAL
    verdicts, rows = ran(tester, log, "--crystallize-executor=serial", *dist)
    assert {(row[3], row[4]) for row in rows} == {("MainThread", "main")}
    assert verdicts == SERIAL
    return verdicts


@EITHER_WAY
def test_threads_run_a_chunks_replicates_with_the_verdicts_of_serial_runs(
    ourtester: pytest.Pytester, dist: list[str]
) -> None:
    log = write(ourtester, "ParallelExecution(max_workers=4)")
    verdicts, rows = ran(ourtester, log, *dist)
    assert {row[4] for row in rows} == {"main"}
    assert all(row[3].startswith("crystallize_") for row in rows), rows
    assert verdicts == serial(ourtester, log, dist)


@EITHER_WAY
def test_a_process_pool_is_kept_for_the_session_and_gives_the_verdicts_of_serial_runs(
    ourtester: pytest.Pytester, dist: list[str]
) -> None:
    log = write(ourtester, 'ParallelExecution(max_workers=2, executor_type="process")')
    verdicts, rows = ran(ourtester, log, *dist)
    assert {row[4] for row in rows} == {"child"}
    # One pool of two processes per session process, whatever the number of chunks.
    pids = {row[2] for row in rows}
    assert 1 <= len(pids) <= (4 if dist == TWO_WORKERS else 2), pids
    assert verdicts == serial(ourtester, log, dist)


@EITHER_WAY
def test_a_users_own_execution_plugin_runs_a_chunks_replicates(
    ourtester: pytest.Pytester, dist: list[str]
) -> None:
    log = write(ourtester, "OwnThreads()")
    verdicts, rows = ran(ourtester, log, *dist)
    assert all(row[3].startswith("own-") for row in rows), rows
    assert verdicts == serial(ourtester, log, dist)


@EITHER_WAY
def test_async_runs_of_a_chunk_share_one_event_loop(
    ourtester: pytest.Pytester, dist: list[str]
) -> None:
    log = write(ourtester, "AsyncExecution()", step="ashift()")
    verdicts, rows = ran(ourtester, log, *dist)
    # Concurrent: in each process, a second run starts before the first one ends.
    for pid in {row[2] for row in rows}:
        mine = [row[0] for row in rows if row[2] == pid]
        assert mine[:2] == ["start", "start"], mine
    assert verdicts == serial(ourtester, log, dist)


@EITHER_WAY
def test_a_run_that_skips_on_a_thread_stops_its_chunk_and_names_the_replicate(
    ourtester: pytest.Pytester, dist: list[str]
) -> None:
    step = textwrap.dedent("""
        @pipeline_step()
        def gpu(value, ctx, *, delta=0.0):
            import pytest
            if ctx["condition"] == "boost" and ctx["replicate"] == 3:
                pytest.skip("no GPU on this runner")
            return value + delta, {"score": value + delta}
    """)
    text = source("ParallelExecution(max_workers=2)", "gpu()")
    ourtester.makepyfile(experiment_demo=text.replace("\ndemo = (", step + "\n\ndemo = ("))
    result = ourtester.runpytest("--crystallize", "-rs", *dist)
    outcomes = result.parseoutcomes()
    assert "failed" not in outcomes, outcomes
    assert "errors" not in outcomes, outcomes
    result.stdout.fnmatch_lines(
        [
            "*demo::by_p::boost*replicate 3 of condition 'boost' skipped (no GPU on this runner);"
            " no verdict is given on the replicates that ran*",
        ]
    )
    assert result.ret == pytest.ExitCode.OK


@EITHER_WAY
def test_a_plugin_that_returns_the_wrong_number_of_results_fails_its_chunks_naming_it(
    ourtester: pytest.Pytester, dist: list[str]
) -> None:
    plugin = textwrap.dedent("""
        class Sloppy(BasePlugin):
            def run_experiment_loop(self, experiment, plan):
                return [plan.execute(0)]

            def __repr__(self):
                return "Sloppy()"
    """)
    text = source("Sloppy()")
    ourtester.makepyfile(experiment_demo=text.replace("\ndemo = (", plugin + "\n\ndemo = ("))
    result = ourtester.runpytest("--crystallize", *dist)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*experiment 'demo': execution plugin Sloppy() returned 1 results for the * runs "
            "of a chunk; run_experiment_loop must return a list of one RunResult per run of "
            "the plan it is given, in plan order*"
        ]
    )


@EITHER_WAY
def test_a_step_that_cannot_go_to_worker_processes_fails_its_chunks_with_the_shipping_error(
    ourtester: pytest.Pytester, dist: list[str]
) -> None:
    text = source('ParallelExecution(max_workers=2, executor_type="process")', "local()")
    nested = textwrap.dedent("""
        def make():
            @pipeline_step()
            def local(value, ctx, *, delta=0.0):
                return value + delta, {"score": value + delta}
            return local

        local = make()
    """)
    ourtester.makepyfile(experiment_demo=text.replace("\ndemo = (", nested + "\n\ndemo = ("))
    result = ourtester.runpytest("--crystallize", *dist)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        ["*ShippingError: experiment 'demo' cannot be sent to worker processes: step 'local'*"]
    )


def with_step(plugin: str, body: str) -> str:
    """The experiment with ``plugin`` and a step ``custom`` running ``body`` first."""
    lines = [
        "@pipeline_step()",
        "def custom(value, ctx, *, delta=0.0):",
        "    import random, time",
        textwrap.indent(textwrap.dedent(body).strip(), "    "),
        '    return value + delta, {"score": value + delta}',
    ]
    step = "\n" + "\n".join(lines) + "\n"
    return source(plugin, "custom()").replace("\ndemo = (", step + "\n\ndemo = (")


@EITHER_WAY
def test_runs_on_threads_drawing_from_the_global_random_get_the_scripts_warning(
    ourtester: pytest.Pytester, dist: list[str]
) -> None:
    ourtester.makepyfile(
        experiment_demo=with_step("ParallelExecution(max_workers=2)", "random.random()")
    )
    result = ourtester.runpytest("--crystallize", "-W", "default::RuntimeWarning", *dist)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "*RuntimeWarning: experiment 'demo': a run on a thread drew numbers from the global "
            "`random` module, which all threads share*"
        ]
    )


@EITHER_WAY
def test_a_run_that_times_out_on_a_thread_stops_its_chunk_without_waiting_for_it(
    ourtester: pytest.Pytester, dist: list[str]
) -> None:
    hang = """
        if ctx["condition"] == "boost" and ctx["replicate"] == 3:
            time.sleep(2.5)  # the process still waits for it at its exit
    """
    ourtester.makepyfile(experiment_demo=with_step("ParallelExecution(max_workers=2)", hang))
    result = ourtester.runpytest("--crystallize", "--timeout", "1", "-rE", *dist)
    outcomes = result.parseoutcomes()
    assert outcomes.get("errors") == 1, outcomes
    result.stdout.fnmatch_lines(
        ["*replicate 3 of condition 'boost' stopped (pytest.fail: Timeout*), so its chunk's*"]
    )

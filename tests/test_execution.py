"""Seeds and execution plugins: the same metrics wherever and however often the runs execute."""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import random
import re
import socket
import textwrap
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from _support import raises_message, run_python

from pytest_crystallize import (
    AsyncExecution,
    BasePlugin,
    Experiment,
    ParallelExecution,
    SeedPlugin,
    SerialExecution,
    ShippingError,
    data_source,
    hypothesis,
    pipeline_step,
    treatment,
    verifier,
)
from pytest_crystallize._engine.execution import _GlobalRandomWatch
from pytest_crystallize._engine.shipping import split_runs

pytestmark = pytest.mark.usefixtures("in_tmp_path")


# --- module-level components (process workers find them by reference) -----------------------


@data_source
def noisy_numbers(ctx):
    return ctx.rng.normal(size=3).tolist()


@pipeline_step
def shift(data, ctx, *, delta=0.0):
    return [x + delta for x in data]


@pipeline_step
def measure(data, ctx, *, extra_draws=0):
    ctx.rng_for("extra").random(extra_draws)  # a stream only some conditions draw from
    return data, {
        "mean": sum(data) / len(data),
        "draw": float(ctx.rng.random()),
        "named": float(ctx.rng_for("noise").random()),
        "seed": ctx.seed,
    }


@pipeline_step
def global_draw(data, ctx):
    return data, {"g": random.random()}


@pipeline_step
def fails_odd_replicates(data, ctx):
    if ctx["replicate"] % 2:
        msg = f"odd replicate {ctx['replicate']}"
        raise ValueError(msg)
    return data, {"ok": 1}


@pipeline_step
def raises_unpicklable(data, ctx):
    raise ValueError(threading.Lock())


@pipeline_step
def write_file(data, ctx):
    ctx.artifacts.add("out.txt", f"{ctx['condition']}-{ctx['replicate']}".encode())
    return data


@verifier
def mean_diff(baseline, treatment):
    diff = sum(treatment["mean"]) / len(treatment["mean"]) - sum(baseline["mean"]) / len(
        baseline["mean"]
    )
    return {"p_value": 0.5, "diff": diff}


@hypothesis(verifier=mean_diff, metrics="mean")
def largest_shift(result):
    return -result["diff"]


boost = treatment("boost", {"delta": 1.0, "extra_draws": 100})


@treatment("doubled")
def doubled(ctx):
    return {"delta": 2.0}


def build(
    plugins: list[BasePlugin] | None = None,
    *,
    name: str = "exec",
    steps: list[Any] | None = None,
    treatments: list[Any] | None = None,
    hypotheses: list[Any] | None = None,
    replicates: int = 6,
) -> Experiment:
    return Experiment(
        noisy_numbers(),
        steps if steps is not None else [shift(), measure()],
        plugins=plugins,
        name=name,
        treatments=treatments if treatments is not None else [boost, doubled],
        hypotheses=hypotheses,
        replicates=replicates,
    )


def snapshot(result) -> dict[str, Any]:
    conditions = [result.metrics.baseline, *result.metrics.treatments.values()]
    return {c.name: (dict(c.metrics), c.seeds) for c in conditions}


# --- seeds --------------------------------------------------------------------------------


def test_runs_are_deterministic_by_default():
    first = build().run()
    second = build().run()
    assert snapshot(first) == snapshot(second)
    assert len(set(first.metrics.baseline.metrics["draw"])) == 6


def test_replicate_i_gets_the_same_seed_and_streams_in_every_condition():
    result = build().run()
    base = result.metrics.baseline
    assert len(set(base.seeds)) == 6
    assert base.metrics["seed"] == list(base.seeds)
    for treated in result.metrics.treatments.values():
        assert treated.seeds == base.seeds
        # ctx.rng pairs the conditions, even though "boost" draws 100 numbers from another stream
        assert treated.metrics["draw"] == base.metrics["draw"]
        assert treated.metrics["named"] == base.metrics["named"]
    assert result.provenance["seeds"]["boost"] == list(base.seeds)


def test_ctx_rng_and_rng_for_are_different_streams():
    result = build().run()
    metrics = result.metrics.baseline.metrics
    assert all(d != n for d, n in zip(metrics["draw"], metrics["named"], strict=True))


def test_a_seed_plugin_seed_changes_the_results_reproducibly():
    default = build().run()
    seeded = build([SeedPlugin(seed=1)]).run()
    again = build([SeedPlugin(seed=1)]).run()
    other = build([SeedPlugin(seed=2)]).run()

    assert seeded.provenance["root_seed"] == 1
    assert snapshot(seeded) == snapshot(again)
    assert seeded.metrics.baseline.metrics["draw"] != default.metrics.baseline.metrics["draw"]
    assert seeded.metrics.baseline.seeds != default.metrics.baseline.seeds
    assert seeded.metrics.baseline.metrics["draw"] != other.metrics.baseline.metrics["draw"]


def test_the_default_root_seed_derives_from_the_experiment_name():
    one = build(name="one").run()
    two = build(name="two").run()
    assert one.metrics.baseline.metrics["draw"] != two.metrics.baseline.metrics["draw"]


def test_a_seed_function_replaces_the_seeding_of_global_state():
    calls: list[int] = []
    result = build([SeedPlugin(seed_fn=calls.append)], replicates=3).run()
    assert sorted(calls) == sorted(result.metrics.baseline.seeds * 3)


def test_auto_seed_false_leaves_global_random_alone_but_keeps_ctx_rng_seeded():
    random.seed(12345)
    expected = random.Random(12345).random()
    result = build([SeedPlugin(auto_seed=False)], steps=[global_draw()], replicates=1).run()
    assert result.metrics.baseline.metrics["g"] == [expected]
    assert snapshot(build([SeedPlugin(auto_seed=False)]).run()) == snapshot(build().run())


# --- identical metrics under every execution ------------------------------------------------

EXECUTIONS: dict[str, Callable[[], BasePlugin]] = {
    "serial": SerialExecution,
    "threads": lambda: ParallelExecution(max_workers=2),
    "processes": lambda: ParallelExecution(max_workers=2, executor_type="process"),
    "async": AsyncExecution,
}


@pytest.mark.parametrize("execution", list(EXECUTIONS))
def test_metrics_are_identical_under_every_execution_plugin_and_on_a_rerun(execution):
    reference = snapshot(build([SerialExecution()]).run())
    exp = build([EXECUTIONS[execution]()], hypotheses=[largest_shift])
    first = exp.run()
    rerun = exp.run()
    assert snapshot(first) == reference
    assert snapshot(rerun) == reference
    assert first.get_hypothesis("largest_shift").ranking["best"] == "doubled"


@pytest.mark.parametrize("pool_class", [ThreadPoolExecutor, ProcessPoolExecutor])
def test_metrics_are_identical_with_a_pool_executor_you_own(pool_class: type[Any]) -> None:
    reference = snapshot(build().run())
    with pool_class(2) as pool:
        exp = build([ParallelExecution(executor=pool)])
        assert snapshot(exp.run()) == reference
        assert snapshot(exp.run()) == reference  # a second run on the same pool


def test_a_process_executor_reused_for_several_experiments_runs_each_experiments_own_steps():
    reference = Experiment(noisy_numbers(), [measure()], name="reused", replicates=3).run()
    unshifted = reference.metrics.baseline.metrics["mean"]
    with ProcessPoolExecutor(2) as pool:
        for delta in range(40):
            exp = Experiment(
                noisy_numbers(),
                [shift(delta=float(delta)), measure()],
                plugins=[ParallelExecution(executor=pool)],
                name="reused",
                replicates=3,
            )
            result = exp.run()
            means = result.metrics.baseline.metrics["mean"]
            assert means == pytest.approx([m + delta for m in unshifted]), f"delta={delta}"


# --- the global random module ---------------------------------------------------------------


def test_global_random_is_seeded_so_serial_and_process_runs_agree():
    serial = build([SerialExecution()], steps=[global_draw()]).run()
    processes = build(
        [ParallelExecution(max_workers=2, executor_type="process")], steps=[global_draw()]
    ).run()
    assert snapshot(serial) == snapshot(processes)
    base = serial.metrics.baseline
    assert base.metrics["g"] == [random.Random(seed).random() for seed in base.seeds]


def test_a_step_using_global_random_under_threads_warns_once_to_use_ctx_rng(monkeypatch):
    monkeypatch.setattr(_GlobalRandomWatch, "_warned", False)
    exp = build([ParallelExecution(max_workers=2)], steps=[global_draw()], replicates=10)
    with pytest.warns(RuntimeWarning, match=r"global `random` module.*ctx\.rng") as record:
        exp.run()
    assert len([w for w in record if issubclass(w.category, RuntimeWarning)]) == 1
    assert "experiment 'exec'" in str(record[0].message)


def test_a_step_using_only_ctx_rng_under_threads_does_not_warn(monkeypatch, recwarn):
    monkeypatch.setattr(_GlobalRandomWatch, "_warned", False)
    build([ParallelExecution(max_workers=2)], replicates=10).run()
    assert [str(w.message) for w in recwarn] == []


# --- process execution --------------------------------------------------------------------


def test_an_unpicklable_treatment_gives_a_shipping_error_naming_it():
    exp = build(
        [ParallelExecution(max_workers=2, executor_type="process")],
        treatments=[treatment("lambda_treatment", lambda ctx: {"delta": 3.0})],
    )
    with raises_message(
        ShippingError,
        "experiment 'exec' cannot be sent to worker processes: treatment 'lambda_treatment'",
    ):
        exp.run()


def test_a_step_defined_in_a_function_gives_a_shipping_error_naming_it():
    @pipeline_step
    def nested_step(data, ctx):
        return data

    exp = build([ParallelExecution(max_workers=2, executor_type="process")], steps=[nested_step()])
    with pytest.raises(ShippingError, match=re.escape("step 'nested_step'")) as excinfo:
        exp.run()
    assert "module level" in str(excinfo.value)


def test_failed_runs_in_worker_processes_keep_their_place_and_traceback():
    exp = build(
        [ParallelExecution(max_workers=2, executor_type="process")],
        steps=[fails_odd_replicates()],
        replicates=4,
    )
    result = exp.run()
    assert sorted(result.errors) == [
        f"{c}_rep_{r}" for c in ("baseline", "boost", "doubled") for r in (1, 3)
    ]
    assert result.incomplete_replicates == (1, 3)
    assert result.metrics.treatments["boost"].metrics["ok"] == [1, None, 1, None]
    error = result.errors["boost_rep_3"]
    assert (error.condition, error.replicate, error.stage, error.where) == (
        "boost",
        3,
        "step",
        "fails_odd_replicates",
    )
    assert isinstance(error.exception, ValueError)
    assert "in fails_odd_replicates" in error.traceback
    assert "ValueError: odd replicate 3" in error.traceback


def test_an_exception_that_cannot_travel_back_from_a_worker_keeps_its_text():
    exp = build(
        [ParallelExecution(max_workers=2, executor_type="process")],
        steps=[raises_unpicklable()],
        replicates=2,
    )
    result = exp.run()
    assert len(result.errors) == 6
    error = result.errors["baseline_rep_0"]
    assert error.exception is None
    assert error.exc_type == "ValueError"
    assert "lock" in error.message
    assert "in raises_unpicklable" in error.traceback


def test_a_module_level_hypothesis_does_not_prevent_process_execution():
    exp = build(
        [ParallelExecution(max_workers=2, executor_type="process")], hypotheses=[largest_shift]
    )
    result = exp.run()
    assert result.errors == {}
    evaluated = result.get_hypothesis("largest_shift")
    assert evaluated.ranking["best"] == "doubled"
    assert evaluated.results["boost"]["diff"] == pytest.approx(1.0)


def test_artifacts_written_in_worker_processes_are_all_listed_in_the_result(tmp_path):
    exp = build(
        [ParallelExecution(max_workers=2, executor_type="process")],
        steps=[write_file(), measure()],
        replicates=4,
    )
    result = exp.run()
    files = result.artifacts["out.txt"]
    assert sorted(files) == ["baseline", "boost", "doubled"]
    for condition, paths in files.items():
        assert len(paths) == 4
        for replicate, path in enumerate(paths):
            expected = Path("data", "exec", "v0", f"replicate_{replicate}", condition, "write_file")
            assert path == expected / "out.txt"
            assert (tmp_path / path).read_bytes() == f"{condition}-{replicate}".encode()


def test_process_execution_works_for_an_experiment_defined_in_a_main_script(tmp_path):
    script = tmp_path / "main_experiment.py"
    script.write_text(
        textwrap.dedent(
            """
            from pytest_crystallize import (
                Experiment, ParallelExecution, data_source, hypothesis, pipeline_step,
                treatment, verifier,
            )

            @data_source
            def source(ctx):
                return float(ctx.rng.random())

            @pipeline_step
            def add(data, ctx, *, delta=0.0):
                return data, {"value": data + delta}

            @verifier
            def diff(baseline, treatment):
                return {"p_value": 0.5, "diff": treatment["value"][0] - baseline["value"][0]}

            @hypothesis(verifier=diff, metrics="value")
            def by_diff(result):
                return -result["diff"]

            result = Experiment(
                source(), [add()], name="script",
                plugins=[ParallelExecution(max_workers=2, executor_type="process")],
                treatments=[treatment("plus", {"delta": 1.0})],
                hypotheses=[by_diff], replicates=4,
            ).run()
            result.raise_for_errors()
            print("diff", round(result.get_hypothesis("by_diff").results["plus"]["diff"], 6))
            """
        )
    )
    done = run_python(str(script), cwd=tmp_path)
    assert done.stdout.strip() == "diff 1.0"


# --- event loops --------------------------------------------------------------------------


def test_run_works_inside_a_running_event_loop():
    reference = snapshot(build().run())
    exp = build()

    async def main():
        return exp.run()

    assert snapshot(asyncio.run(main())) == reference


def test_arun_can_be_awaited():
    reference = snapshot(build().run())
    exp = build([ParallelExecution(max_workers=2)])

    async def main():
        return await exp.arun()

    assert snapshot(asyncio.run(main())) == reference


@pipeline_step
async def async_measure(data, ctx):
    await asyncio.sleep(0.001)
    return data, {"draw": float(ctx.rng.random())}


def test_async_steps_give_the_same_metrics_under_async_and_serial_execution():
    serial = build([SerialExecution()], steps=[async_measure()]).run()
    concurrent = build([AsyncExecution(max_concurrency=4)], steps=[async_measure()]).run()
    assert snapshot(serial) == snapshot(concurrent)


@pytest.mark.parametrize(("runs", "workers"), [(1, 2), (7, 2), (40, 2), (1000, 3), (20000, 4)])
def test_runs_are_sent_in_slices_that_shrink_to_one_run(runs: int, workers: int) -> None:
    # Guided self-scheduling: long slices first (few tasks), single runs last, so no worker
    # is left with a long slice while the others wait.
    slices = split_runs(range(100, 100 + runs), workers)
    assert [i for s in slices for i in s] == list(range(100, 100 + runs))
    sizes = [len(s) for s in slices]
    assert sizes == sorted(sizes, reverse=True)
    assert sizes[0] == -(-runs // (2 * workers))  # a 2 * workers-th of the runs
    assert sizes[-1] == 1
    assert len(slices) <= 2 * workers * (1 + math.log(max(runs, 2)))  # few tasks


class _ElsewhereExecutor(concurrent.futures.Executor):
    """Runs each task at once in this process as on another machine: under another host
    name, with the files it writes moved to that machine's disk (``disk``) before it
    returns."""

    def __init__(self, disk: Path, host: str) -> None:
        self.disk, self.host = disk, host

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        try:
            with mock.patch("socket.gethostname", return_value=self.host):
                future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        for written in Path("data").rglob("out.txt"):
            (self.disk / written).parent.mkdir(parents=True, exist_ok=True)
            written.replace(self.disk / written)
        return future


@pytest.mark.parametrize("elsewhere", [True, False], ids=["another-machine", "this-machine"])
def test_artifacts_written_by_a_worker_on_another_machine_come_back_here(
    tmp_path: Path, elsewhere: bool
) -> None:
    disk = tmp_path / "worker-disk"
    host = "another-machine" if elsewhere else socket.gethostname()
    exp = build(
        [ParallelExecution(max_workers=2, executor=_ElsewhereExecutor(disk, host))],
        steps=[write_file(), measure()],
        replicates=3,
    )
    result = exp.run()
    paths = result.artifacts["out.txt"]
    assert sorted(paths) == ["baseline", "boost", "doubled"]
    for condition, files in paths.items():
        for replicate, path in enumerate(files):
            assert (disk / path).read_bytes() == f"{condition}-{replicate}".encode()
            # Sent back and written here only from another machine (one disk otherwise).
            landed = tmp_path / path
            assert landed.exists() is elsewhere
            if elsewhere:
                assert landed.read_bytes() == f"{condition}-{replicate}".encode()

"""How a chunk runs its replicates: with the experiment's execution plugin.

A chunk's runs are its experiment's run plan restricted to them (``RunPlan.restricted``), so
every execution plugin, built in or the user's own, runs them unchanged: threads, async, a
custom loop. Runs that go to other processes do not pay a pool per chunk: a process pool
(``ParallelExecution(executor_type="process")``) is kept per experiment for the session, a
Dask client (``DaskExecution``, ``--crystallize-dask``) per cluster, both closed at the end
(:func:`close_pools`); the whole plan is installed once per worker and each chunk sends only
its run indices. ``SerialExecution`` and ``--crystallize-executor=serial`` run them one after
another in the calling thread, without any executor machinery.

Progress advances as results come back; a run's failure is recorded on its RunResult; what
stops a run (a skip, a timeout, Ctrl-C) stops the chunk and is recorded as ``stopped``; a
worker that dies fails the runs it held, each with the worker's error.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import pytest

from .._engine.dask import DaskExecution, open_client, reload_module, worker_slots
from .._engine.errors import CrystallizeError
from .._engine.execution import (
    ParallelExecution,
    SerialExecution,
    default_start_method,
    preload_numpy,
)
from .._engine.plugins import BasePlugin, overrides
from .._engine.shipping import install, lost_runs, pickle_plan, run_on
from .layout import worker_count
from .looks import settle_imports, warm_scipy
from .progress import note_run

if TYPE_CHECKING:
    import concurrent.futures

    from distributed import Client

    from .._engine.experiment import Experiment
    from .._engine.run import RunPlan
    from .._engine.runs import RunResult
    from .terminal import LiveProgress


class Chunk(Protocol):
    """What a chunk item shows this module: its config, and where its outcome goes."""

    config: pytest.Config
    path: Path
    results: list[RunResult]
    stopped: list[Any] | None


def stop_reason(exc: BaseException) -> tuple[str, str]:
    """``(kind, reason)`` of what stopped a replicate: ``"skipped"`` for pytest.skip, else
    ``"stopped"`` (pytest.fail or xfail, a timeout, sys.exit, an interrupt)."""
    message = str(getattr(exc, "msg", None) or exc)
    if isinstance(exc, pytest.skip.Exception):
        return "skipped", message or "skipped"
    if isinstance(exc, SystemExit):
        return "stopped", f"sys.exit({exc.code!r})"
    kind: dict[type[BaseException], str] = {
        pytest.fail.Exception: "pytest.fail",
        pytest.xfail.Exception: "pytest.xfail",
    }
    name = kind.get(type(exc), type(exc).__name__)
    return "stopped", f"{name}: {message}" if message else name


class _Tally:
    """A chunk's runs as they come back, from any thread: progress, and what stopped one."""

    def __init__(self, item: Chunk, progress: LiveProgress | None) -> None:
        self.item = item
        self.progress = progress
        self.done: set[int] = set()  # replicates
        self.failed = 0
        self.stop: tuple[int, BaseException] | None = None
        self._lock = threading.Lock()

    def ran(self, replicate: int, outcome: RunResult | BaseException) -> None:
        with self._lock:
            if isinstance(outcome, BaseException):
                if self.stop is None:
                    self.stop = (replicate, outcome)
                return
            self.done.add(replicate)
            self.failed += outcome.error is not None
            if self.progress is not None:
                self.progress.advance()
            item = cast("pytest.Item", self.item)
            note_run(item, len(self.done), self.failed)  # progress lines in logs (CI)


def execution_plugin(experiment: Experiment) -> BasePlugin:
    """The experiment's execution plugin (it has exactly one: see ``with_defaults``)."""
    return next(p for p in experiment.plugins if overrides(p, "run_experiment_loop"))


def run_chunk(
    item: Chunk, plan: RunPlan, progress: LiveProgress | None, replicates: range, index: int
) -> None:
    """Run the chunk's ``replicates`` of condition ``index`` of ``plan`` (the experiment's
    whole plan) into ``item.results``, in replicate order. What stops a run is re-raised
    after ``item.stopped`` records it."""
    conditions = len(plan.conditions)
    indices = [replicate * conditions + index for replicate in replicates]
    config = item.config
    dask = config.getoption("crystallize_dask", None)
    serial = config.getoption("crystallize_executor", None) == "serial"
    plugin = execution_plugin(plan.experiment)
    item.results = []
    tally = _Tally(item, progress)
    if serial or (dask is None and type(plugin) is SerialExecution):
        settle_imports(config)
        for replicate, run in zip(replicates, indices, strict=True):
            try:
                result = plan.execute(run)
            except BaseException as exc:  # a skip, pytest.fail, a timeout, sys.exit, Ctrl-C
                item.stopped = [replicate, *stop_reason(exc)]
                raise
            item.results.append(result)
            tally.ran(replicate, result)
        return
    try:
        target = _target(item, plan, plugin, dask)
        if target is None:
            settle_imports(config)
            item.results = _in_process(plan, indices, plugin, tally)
        else:
            if _judges_here(config):
                warm_scipy(config, plan.experiment)  # while this process waits for its runs
            item.results = _shipped(plan, indices, target, tally)
    except BaseException as exc:
        pending = [r for r in replicates if r not in tally.done] or [replicates[-1]]
        replicate, why = tally.stop or (pending[0], exc)
        item.results = []
        item.stopped = [replicate, *stop_reason(why)]
        raise


def _judges_here(config: pytest.Config) -> bool:
    """Whether this process judges the session's verdicts: not an xdist worker, not a shard."""
    return not hasattr(config, "workerinput") and not config.getoption("crystallize_shard", None)


def _in_process(
    plan: RunPlan, indices: Sequence[int], plugin: BasePlugin, tally: _Tally
) -> list[RunResult]:
    """The plugin's own loop over a view of the chunk's runs."""
    experiment = plan.experiment
    preload_numpy()  # a plugin of the user's may start runs on threads of its own
    view = plan.restricted(indices, lambda j, outcome: tally.ran(view.runs[j][1], outcome))
    results = experiment.plugin_manager().hook.run_experiment_loop(experiment=experiment, plan=view)
    if not isinstance(results, list) or len(results) != len(indices):
        got = f"{len(results)} results" if isinstance(results, list) else repr(results)
        msg = (
            f"experiment {experiment.artifact_name!r}: execution plugin {plugin!r} returned "
            f"{got} for the {len(indices)} runs of a chunk; run_experiment_loop must return "
            f"a list of one RunResult per run of the plan it is given, in plan order"
        )
        raise CrystallizeError(msg)
    return results


class _Target:
    """Where a chunk's runs are shipped: an executor, how many run at once, task arguments."""

    def __init__(
        self,
        pool: concurrent.futures.Executor,
        workers: int,
        args: Callable[[list[int]], tuple[str, bytes | None, list[int]]],
        where: str,
        forget: Callable[[], None] | None = None,
    ) -> None:
        self.where = where  # what the runs went to, for a failed worker's error
        self.pool = pool
        self.workers = workers
        self.args = args
        self.forget = forget  # drops a session pool that broke, so the next chunk starts one


def _shipped(
    plan: RunPlan, indices: Sequence[int], target: _Target, tally: _Tally
) -> list[RunResult]:
    """Send the chunk's run indices to workers that have the whole plan installed."""
    import concurrent.futures.process  # lazy: only shipped runs need it

    by_index: dict[int, RunResult] = {}
    try:
        for chunk, done in run_on(target.pool, indices, target.workers, target.args):
            if isinstance(done, Exception):  # the worker died or could not take the runs
                if isinstance(done, concurrent.futures.process.BrokenProcessPool):
                    _forget(target)
                done = lost_runs(plan, chunk, done, target.where)
            for run, result in zip(chunk, done, strict=True):
                by_index[run] = result
                tally.ran(result.replicate, result)
    except BaseException:  # a skip in a run, a timeout, an interrupt: the pool goes too
        _forget(target)
        raise
    return [by_index[run] for run in indices]


def _forget(target: _Target) -> None:
    if target.forget is not None:
        target.forget()
        target.pool.shutdown(wait=False, cancel_futures=True)


# --- the session's pools and clients -------------------------------------------------------


class _Shipping:
    """One experiment's plan as installed on workers: a key, its bytes, a session pool."""

    def __init__(self, plan: RunPlan) -> None:
        self.key = f"{os.getpid()}-{os.urandom(8).hex()}"
        self.plan = plan
        self._blob: bytes | None = None
        self.pool: concurrent.futures.ProcessPoolExecutor | None = None

    @property
    def blob(self) -> bytes:
        if self._blob is None:
            self._blob = pickle_plan(self.plan)
        return self._blob


_SHIPPING = pytest.StashKey[dict[int, _Shipping]]()
_CLIENTS = pytest.StashKey[dict[Any, "Client"]]()


def _target(item: Chunk, plan: RunPlan, plugin: BasePlugin, dask: str | None) -> _Target | None:
    """Where the chunk's runs go, or ``None`` when the plugin runs them in this process."""
    import concurrent.futures  # lazy: only these executors need it; a serial run never pays

    config = item.config
    shipping = config.stash.setdefault(_SHIPPING, {})
    ship = shipping.get(id(plan.experiment))
    if ship is None:
        ship = shipping[id(plan.experiment)] = _Shipping(plan)
    if dask is not None or isinstance(plugin, DaskExecution):
        client = _client(item, plan, plugin, dask)
        blob = ship.blob
        executor = client.get_executor()  # type: ignore[no-untyped-call,unused-ignore]
        where = f"Dask cluster {getattr(client.scheduler, 'address', '')}".rstrip()
        return _Target(executor, worker_slots(client), lambda i: (ship.key, blob, i), where)
    if not isinstance(plugin, ParallelExecution):
        return None
    if plugin.executor is not None:
        if isinstance(plugin.executor, concurrent.futures.ThreadPoolExecutor):
            return None
        blob = ship.blob
        workers = plugin.max_workers or os.cpu_count() or 1
        where = type(plugin.executor).__name__
        return _Target(plugin.executor, workers, lambda i: (ship.key, blob, i), where)
    if plugin.executor_type != "process":
        return None
    # Without max_workers, each xdist worker's pool takes its share of the cores, so
    # ``-n N`` does not start N pools of every core.
    workers = plugin.max_workers or max(1, (os.cpu_count() or 1) // worker_count(config))
    if ship.pool is None:
        import multiprocessing  # lazy: only process pools need it

        context = multiprocessing.get_context(plugin.mp_context or default_start_method())
        ship.pool = concurrent.futures.ProcessPoolExecutor(
            workers, mp_context=context, initializer=install, initargs=(ship.key, ship.blob)
        )

    def forget() -> None:
        ship.pool = None

    return _Target(ship.pool, workers, lambda i: (ship.key, None, i), "process pool", forget)


def _client(item: Chunk, plan: RunPlan, plugin: BasePlugin, dask: str | None) -> Client:
    """This process's client of the option's cluster, or of the plugin's (made on first use,
    closed at the end of the session). The experiment's file is sent to the workers."""
    clients = item.config.stash.setdefault(_CLIENTS, {})
    key = dask if dask is not None else id(plugin)
    client = clients.get(key)
    if client is None:
        if dask is not None:
            client = open_client(dask, {}, f"--crystallize-dask={dask}")
        else:
            assert isinstance(plugin, DaskExecution)  # the caller checked
            client = plugin.client(plan.experiment)
        clients[key] = client
    shared = item.config.stash.setdefault(_SHARED, set())
    if (key, item.path) not in shared:
        _share_module(client, item.path)
        shared.add((key, item.path))
    return client


_SHARED = pytest.StashKey[set[tuple[Any, Path]]]()


def _share_module(client: Client, path: Path) -> None:
    """Send an experiment file that is a top-level module to the cluster's workers, which
    unpickle its steps by module name (a package's modules must be importable there). They
    import it again: a long-lived cluster may hold an older version of the file."""
    module = sys.modules.get(path.stem)
    if module is None or getattr(module, "__file__", None) != str(path):
        return
    for attempt in (1, 2):
        try:
            client.upload_file(str(path), load=False)
            client.run(reload_module, path.stem)
        except OSError:  # a worker died meanwhile (distributed's CommClosedError): again
            if attempt == 2:
                raise
        else:
            return


def close_pools(config: pytest.Config) -> None:
    """Shut the session's process pools down and close its Dask clients."""
    for ship in config.stash.get(_SHIPPING, {}).values():
        if ship.pool is not None:
            ship.pool.shutdown(cancel_futures=True)
            ship.pool = None
    for client in config.stash.get(_CLIENTS, {}).values():
        client.close()  # type: ignore[no-untyped-call,unused-ignore]
    config.stash[_CLIENTS] = {}
    config.stash[_SHARED] = set()

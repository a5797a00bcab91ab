"""Execution plugins: where an experiment's runs execute.

Every execution plugin turns a :class:`RunPlan` into ``RunResult``s in plan order. Results are
plain data, so nothing a run produced is lost whichever executor ran it.
"""

from __future__ import annotations

import os
import random
import sys
import threading
import warnings
from typing import TYPE_CHECKING, Any

from .errors import CrystallizeUsageError
from .plugins import BasePlugin
from .seeds import default_seed_function
from .shipping import Args, install, pickle_plan, run_on, split_runs

if TYPE_CHECKING:
    import concurrent.futures  # lazy: only these executors need it; a serial run never pays

    from .experiment import Experiment
    from .run import RunPlan
    from .runs import RunResult


class _Progress:
    """A one-line ``runs done/total`` counter on stderr, when asked for."""

    def __init__(self, enabled: bool, total: int, label: str) -> None:
        self.enabled = enabled
        self.total = total
        self.label = label
        self.done = 0
        self._step = max(1, total // 20)

    def advance(self, count: int = 1) -> None:
        if not self.enabled:
            return
        before, self.done = self.done, self.done + count
        if self.done // self._step != before // self._step or self.done == self.total:
            end = "\n" if self.done == self.total else ""
            sys.stderr.write(f"\r{self.label}: {self.done}/{self.total} runs{end}")
            sys.stderr.flush()


class SerialExecution(BasePlugin):
    """Executes the runs one after another in the calling thread (the default)."""

    def __init__(self, progress: bool = False) -> None:
        self.progress = progress

    def run_experiment_loop(self, experiment: Experiment, plan: RunPlan) -> list[RunResult]:
        progress = _Progress(self.progress, len(plan), experiment.artifact_name)
        results = []
        for index in range(len(plan)):
            results.append(plan.execute(index))
            progress.advance()
        return results

    def __repr__(self) -> str:
        return "SerialExecution()"


class AsyncExecution(BasePlugin):
    """Executes the runs concurrently on one event loop: for steps that are ``async def``.

    ``max_concurrency`` bounds the runs in flight (``None``: all of them).
    """

    def __init__(self, max_concurrency: int | None = None, progress: bool = False) -> None:
        if max_concurrency is not None and (
            isinstance(max_concurrency, bool)
            or not isinstance(max_concurrency, int)
            or max_concurrency < 1
        ):
            msg = (
                f"AsyncExecution(max_concurrency=...) takes a positive int, got {max_concurrency!r}"
            )
            raise CrystallizeUsageError(msg)
        self.max_concurrency = max_concurrency
        self.progress = progress

    def run_experiment_loop(self, experiment: Experiment, plan: RunPlan) -> list[RunResult]:
        progress = _Progress(self.progress, len(plan), experiment.artifact_name)
        limit = self.max_concurrency or max(1, len(plan))

        import asyncio  # lazy: asyncio costs ~10 ms to import; only async pipelines need it

        async def run_all() -> list[RunResult]:
            gate = asyncio.Semaphore(limit)

            async def one(index: int) -> RunResult:
                async with gate:
                    result = await plan.aexecute(index)
                progress.advance()
                return result

            return list(await asyncio.gather(*(one(i) for i in range(len(plan)))))

        return asyncio.run(run_all())

    def __repr__(self) -> str:
        return f"AsyncExecution(max_concurrency={self.max_concurrency!r})"


class ParallelExecution(BasePlugin):
    """Executes runs concurrently on threads, processes, or any ``concurrent.futures.Executor``.

    ``executor_type="thread"`` suits steps that release the GIL (I/O, numpy);
    ``executor_type="process"`` suits CPU-bound Python. The experiment is pickled once and
    installed once per worker process; runs travel in chunks. ``executor=`` takes an executor
    you own (it is not shut down). Results equal those of :class:`SerialExecution` for code
    that draws from ``ctx.rng``; the global :mod:`random` is shared by threads, so a warning
    says so when a run under threads draws from it.
    """

    def __init__(
        self,
        max_workers: int | None = None,
        executor_type: str = "thread",
        progress: bool = False,
        executor: concurrent.futures.Executor | None = None,
        mp_context: str | None = None,
    ) -> None:
        if executor_type not in ("thread", "process"):
            msg = (
                f"ParallelExecution(executor_type=...) takes 'thread' or 'process', "
                f"got {executor_type!r}"
            )
            raise CrystallizeUsageError(msg)
        if max_workers is not None and (
            isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1
        ):
            msg = f"ParallelExecution(max_workers=...) takes a positive int, got {max_workers!r}"
            raise CrystallizeUsageError(msg)
        if executor is not None and not _is_executor(executor):
            msg = (
                f"ParallelExecution(executor=...) takes a concurrent.futures.Executor, got "
                f"{executor!r} ({type(executor).__name__})"
            )
            raise CrystallizeUsageError(msg)
        self.max_workers = max_workers
        self.executor_type = executor_type
        self.progress = progress
        self.executor = executor
        self.mp_context = mp_context

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["executor"] = None  # executors do not travel; workers never use this plugin
        return state

    def run_experiment_loop(self, experiment: Experiment, plan: RunPlan) -> list[RunResult]:
        import concurrent.futures  # lazy: only these executors need it; a serial run never pays
        import multiprocessing  # lazy: only process pools need it

        progress = _Progress(self.progress, len(plan), experiment.artifact_name)
        workers = self.max_workers or min(len(plan), os.cpu_count() or 1)
        if isinstance(self.executor, concurrent.futures.ThreadPoolExecutor) or (
            self.executor is None and self.executor_type == "thread"
        ):
            return self._threads(plan, workers, progress)
        blob = pickle_plan(plan)
        key = f"{os.getpid()}-{os.urandom(8).hex()}"  # unique per run(), never reused
        if self.executor is not None:
            return self._gather(self.executor, plan, workers, progress, lambda i: (key, blob, i))
        context = multiprocessing.get_context(self.mp_context or default_start_method())
        with concurrent.futures.ProcessPoolExecutor(
            workers, mp_context=context, initializer=install, initargs=(key, blob)
        ) as pool:
            return self._gather(pool, plan, workers, progress, lambda i: (key, None, i))

    def _gather(
        self,
        pool: concurrent.futures.Executor,
        plan: RunPlan,
        workers: int,
        progress: _Progress,
        args: Args,
    ) -> list[RunResult]:
        results: list[RunResult | None] = [None] * len(plan)
        for chunk, done in run_on(pool, range(len(plan)), workers, args):
            if isinstance(done, list):
                for index, result in zip(chunk, done, strict=True):
                    results[index] = result
                progress.advance(len(chunk))
                continue
            first = plan.describe(chunk[0])
            msg = (
                f"experiment {plan.experiment.artifact_name!r}: a worker failed while "
                f"running runs {chunk[0]}-{chunk[-1]} (from condition {first[0]!r}, "
                f"replicate {first[1]}): {type(done).__name__}: {done}"
            )
            raise RuntimeError(msg) from done
        return [r for r in results if r is not None]

    def _threads(self, plan: RunPlan, workers: int, progress: _Progress) -> list[RunResult]:
        import concurrent.futures  # lazy: only these executors need it; a serial run never pays

        preload_numpy()

        def run(indices: list[int]) -> list[RunResult]:
            done = []
            for index in indices:
                done.append(plan.execute(index))
                watch.check()
            return done

        results: list[RunResult] = []
        with _GlobalRandomWatch(plan) as watch:
            pool = self.executor or concurrent.futures.ThreadPoolExecutor(workers, "crystallize")
            futures: list[concurrent.futures.Future[list[RunResult]]] = []
            finished = False
            try:
                for chunk in split_runs(range(len(plan)), workers):
                    futures.append(pool.submit(run, chunk))
                for future in futures:
                    done = future.result()
                    results.extend(done)
                    progress.advance(len(done))
                finished = True
            finally:
                for future in futures:  # a run that raised (pytest.skip, an interrupt) stops
                    future.cancel()  # the others not started yet
                if pool is not self.executor:  # a timeout does not wait for a hung run
                    pool.shutdown(wait=finished, cancel_futures=True)
        return results

    def __repr__(self) -> str:
        return (
            f"ParallelExecution(max_workers={self.max_workers!r}, "
            f"executor_type={self.executor_type!r})"
        )


def preload_numpy() -> None:
    """Import numpy here, in the calling thread, before runs start on several threads.

    Seeding and ``ctx.rng`` import numpy on first use; when several threads do that at once,
    some see the module half initialised ("partially initialized module 'numpy'") and their
    runs fail. Importing it once first makes every later import a dictionary lookup.
    """
    import numpy  # noqa: F401  lazy: `import pytest_crystallize` stays numpy-free; threads need it


def _is_executor(value: object) -> bool:
    import concurrent.futures  # lazy: only these executors need it; a serial run never pays

    return isinstance(value, concurrent.futures.Executor)


def default_start_method() -> str:
    """``fork`` where it is safe (POSIX, one thread), else ``spawn``.

    ``fork`` lets unguarded ``__main__`` scripts use process execution; with other threads
    alive it can deadlock, so those cases use ``spawn``.
    """
    import multiprocessing  # lazy: only process pools need it

    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1 and sys.platform != "darwin":
        return "fork"
    return "spawn"


class _GlobalRandomWatch:
    """Warns once when runs on threads draw from the global :mod:`random` generator.

    While it watches, seeding and recording the state it produced happen under one lock, and
    so does each check; a run that ends with a state no seeding produced drew numbers from
    the generator all threads share.
    """

    _warned = False

    def __init__(self, plan: RunPlan) -> None:
        self.plan = plan
        self.seeder = plan.seed_globals
        self.enabled = self.seeder is default_seed_function and not _GlobalRandomWatch._warned
        self._lock = threading.Lock()
        self._seeded: set[int] = set()

    def _seed(self, seed: int) -> None:
        with self._lock:
            default_seed_function(seed)
            self._seeded.add(hash(random.getstate()))

    def __enter__(self) -> _GlobalRandomWatch:
        if self.enabled:
            self.plan.seed_globals = self._seed
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.plan.seed_globals = self.seeder

    def check(self) -> None:
        if not self.enabled or _GlobalRandomWatch._warned:
            return
        with self._lock:
            if hash(random.getstate()) in self._seeded:
                return
            _GlobalRandomWatch._warned = True
        warnings.warn(
            f"experiment {self.plan.experiment.artifact_name!r}: a run on a thread drew numbers "
            f"from the global `random` module, which all threads share, so its results depend "
            f"on thread timing and are not reproducible. Draw from ctx.rng (or "
            f"ctx.rng_for(name)) instead, or use SerialExecution or "
            f"ParallelExecution(executor_type='process')",
            RuntimeWarning,
            stacklevel=2,
        )

"""Runs on other processes: the plan travels pickled once, results come back as they finish.

A worker process (of a process pool, or a Dask worker) installs a plan once under a key and
then runs the slices of run indices it is sent (:func:`run_installed`). Whoever submits them
(:func:`run_on`) gets each slice's results, or what the worker raised, as soon as they are in.
A worker on another machine (a Dask cluster's) sends back the artifacts the runs wrote, which
land where a local worker would have written them.
"""

from __future__ import annotations

import math
import os
import pickle
import socket
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .atomic import write_atomic
from .errors import ShippingError
from .runs import RunError, RunResult

if TYPE_CHECKING:
    import concurrent.futures  # lazy: only these executors need it; a serial run never pays

    from .run import RunPlan

_INSTALLED: dict[str, RunPlan] = {}
_KEEP_INSTALLED = 4  # a worker of a long-lived executor keeps the newest few plans only


def install(key: str, blob: bytes) -> None:
    """Worker side: unpickle a plan and keep it under ``key`` (a pool's initializer)."""
    while len(_INSTALLED) >= _KEEP_INSTALLED:
        del _INSTALLED[next(iter(_INSTALLED))]
    _INSTALLED[key] = pickle.loads(blob)


def run_installed(
    key: str, blob: bytes | None, indices: Sequence[int], origin: tuple[str, str] = ("", "")
) -> tuple[list[RunResult], dict[str, bytes]]:
    """Worker side: run ``indices`` of the plan installed under ``key`` (installing ``blob``
    first when this worker has not seen it). Returns the results and, on a machine other
    than the submitter's (``origin``: its host name and working directory, from which the
    artifact paths are relative), the bytes of the artifacts the runs wrote, by path: the
    submitter writes them where they would have been (:func:`land_artifacts`)."""
    plan = _INSTALLED.get(key)
    if plan is None:
        if blob is None:
            msg = f"worker {os.getpid()} has no experiment installed under {key!r}"
            raise RuntimeError(msg)
        install(key, blob)
        plan = _INSTALLED[key]
    results = [_shippable(plan.execute(i)) for i in indices]
    files: dict[str, bytes] = {}
    host, cwd = origin
    if host and host != socket.gethostname():  # another machine: its files stay there
        for result in results:
            for _, _, path in result.artifacts:
                files[path] = Path(cwd, path).read_bytes()  # as the artifact plugin wrote it
    return results, files


def land_artifacts(files: Mapping[str, bytes]) -> None:
    """Submitter side: write the artifacts a worker on another machine sent back."""
    for path, data in files.items():
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, data)


def _shippable(result: RunResult) -> RunResult:
    error = result.error
    if error is None or error.exception is None:
        return result
    try:
        pickle.dumps(error.exception)
    except Exception:  # an exception that cannot travel back: keep its text only
        return replace(result, error=replace(error, exception=None))
    return result


def _describe_unpicklable(plan: RunPlan) -> str:
    """Find the first part of the experiment that cannot be pickled, for the error message."""
    exp = plan.experiment
    parts: list[tuple[str, Any]] = [(f"data source {exp.datasource.name!r}", exp.datasource)]
    parts += [(f"step {s.name!r}", s) for s in exp.steps]
    parts += [(f"treatment {t.name!r}", t) for t in exp.treatments]
    parts += [(f"plugin {type(p).__name__}", p) for p in exp.plugins]
    parts += [(f"initial_ctx[{k!r}]", v) for k, v in exp.initial_ctx.items()]
    for label, part in parts:
        try:
            pickle.dumps(part)
        except Exception as exc:
            return f"{label} ({type(exc).__name__}: {exc})"
    return "an unidentified part"


def pickle_plan(plan: RunPlan) -> bytes:
    """The plan as bytes for worker processes; :class:`ShippingError` names what cannot go."""
    try:
        return pickle.dumps(plan, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        culprit = _describe_unpicklable(plan)
        msg = (
            f"experiment {plan.experiment.artifact_name!r} cannot be sent to worker processes: "
            f"{culprit} cannot be pickled. Define steps, data sources, treatments and plugins at "
            f"module level (no lambdas or nested functions), or use executor_type='thread'"
        )
        raise ShippingError(msg) from exc


def split_runs(indices: Sequence[int], workers: int) -> list[list[int]]:
    """``indices`` in slices of decreasing size (guided self-scheduling): each takes a
    ``2 * workers``-th of the runs left, so the first slices are long (few tasks to send)
    and the last hold one run each, so that no worker is left running a long slice while
    the others have finished."""
    slices, start = [], 0
    while start < len(indices):
        size = max(1, math.ceil((len(indices) - start) / (2 * workers)))
        slices.append(list(indices[start : start + size]))
        start += size
    return slices


Args = Callable[[list[int]], tuple[str, bytes | None, list[int]]]


def run_on(
    pool: concurrent.futures.Executor, indices: Sequence[int], workers: int, args: Args
) -> Iterator[tuple[list[int], list[RunResult] | Exception]]:
    """Submit ``indices`` in slices to ``pool`` (``args(slice)``: what :func:`run_installed`
    is called with) and yield each slice with its results, or what its worker raised, as it
    completes. Slices not started yet are cancelled when the caller stops early."""
    import concurrent.futures  # lazy: only these executors need it; a serial run never pays

    origin = (socket.gethostname(), os.getcwd())
    futures = {
        pool.submit(run_installed, *args(chunk), origin): chunk
        for chunk in split_runs(indices, workers)
    }
    try:
        for future in concurrent.futures.as_completed(futures):
            try:
                done: list[RunResult] | Exception
                done, files = future.result()
                land_artifacts(files)
            except Exception as exc:
                done = exc
            yield futures[future], done
    finally:
        for future in futures:
            future.cancel()


def lost_runs(plan: RunPlan, indices: Sequence[int], exc: Exception, where: str) -> list[RunResult]:
    """The results of runs whose worker (of ``where``: a pool, a cluster) failed: it died, or
    could not take them. Each records the worker's error, so the runs count as failed and
    nothing else is lost."""
    described = [plan.describe(index) for index in indices]
    numbers = [str(replicate) for _, replicate in described]
    replicates = f"replicate{'s' if len(numbers) > 1 else ''} {', '.join(numbers)}"
    conditions = ", ".join(repr(c) for c in dict.fromkeys(c for c, _ in described))
    message = (
        f"experiment {plan.experiment.artifact_name!r}: the worker running condition "
        f"{conditions}, {replicates} died or failed: {exc}"
    )
    results = []
    for index, (condition, replicate) in zip(indices, described, strict=True):
        error = RunError(
            condition=condition,
            replicate=replicate,
            stage="worker",
            where=where,
            exc_type=type(exc).__qualname__,
            message=message,
            traceback="",  # the executor's frames, not the user's: the message says it all
        )
        results.append(RunResult(condition, replicate, plan.runs[index][2], {}, (), error))
    return results

"""Dask: an experiment's runs on a Dask cluster (``distributed``, the optional extra ``dask``).

The runs travel as with a process pool (:mod:`.shipping`): the plan is pickled once and
installed once per Dask worker process, slices of runs go through ``client.get_executor()``.
``distributed`` is imported only when a cluster is used.
"""

from __future__ import annotations

import importlib
import re
import socket
import sys
from typing import TYPE_CHECKING, Any

from .errors import CrystallizeUsageError
from .execution import ParallelExecution
from .plugins import BasePlugin

if TYPE_CHECKING:
    from distributed import Client

    from .experiment import Experiment
    from .run import RunPlan
    from .runs import RunResult

INSTALL_HINT = "pip install 'pytest-crystallize[dask]'"
_ADDRESS = re.compile(
    r"(?:(?P<scheme>[a-z]+)://)?(?P<host>[^\s:/]+|\[[0-9a-fA-F:]+\]):(?P<port>\d+)"
)


def check_address(address: object) -> str:
    """``address`` if it reads as a scheduler address (``tcp://host:8786``), else ValueError."""
    if not isinstance(address, str) or _ADDRESS.fullmatch(address.strip()) is None:
        msg = f"expected a Dask scheduler address such as tcp://host:8786, got {address!r}"
        raise ValueError(msg)
    return address.strip()


def _reachable(address: str, where: str) -> None:
    """Refuse at once a TCP scheduler nobody listens at (the client would retry for 30 s)."""
    match = _ADDRESS.fullmatch(address)
    assert match is not None  # check_address passed
    if match["scheme"] not in (None, "tcp"):
        return
    try:
        socket.create_connection((match["host"].strip("[]"), int(match["port"])), 5).close()
    except OSError as exc:
        msg = (
            f"{where}: cannot reach the Dask scheduler at {address!r} ({exc}); start one "
            f"(`dask scheduler`) or check the address"
        )
        raise CrystallizeUsageError(msg) from None


def open_client(address: str | None, client_kwargs: dict[str, Any], where: str) -> Client:
    """A client of the scheduler at ``address``, or of a new ``LocalCluster`` of worker
    processes (closed with the client) when ``address`` is None. ``where`` leads errors."""
    try:
        import distributed  # lazy: an optional dependency, loaded only to use a cluster
    except ImportError as exc:
        msg = f"{where} needs the distributed package: {INSTALL_HINT}"
        raise CrystallizeUsageError(msg) from exc
    if address is not None:
        _reachable(address, where)
    kwargs: dict[str, Any] = {"set_as_default": False, **client_kwargs}
    try:
        return distributed.Client(address, **kwargs)  # type: ignore[no-untyped-call,unused-ignore]
    except (OSError, TimeoutError) as exc:
        msg = f"{where}: cannot connect to the Dask scheduler at {address!r}: {exc}"
        raise CrystallizeUsageError(msg) from exc


def reload_module(name: str) -> None:
    """On a worker: import module ``name`` again if it was imported (a file sent again)."""
    module = sys.modules.get(name)
    if module is not None:
        importlib.reload(module)


def worker_slots(client: Client) -> int:
    """How many runs the cluster executes at once (its workers' threads)."""
    workers = client.scheduler_info().get("workers", {})
    return max(1, sum(int(w.get("nthreads", 1)) for w in workers.values()))


class DaskExecution(BasePlugin):
    """Executes the runs on a Dask cluster.

    ``address`` (``"tcp://host:8786"``) connects to a running scheduler and closes only this
    client afterwards; without one, a ``LocalCluster`` of worker processes is started for the
    run and closed. ``client_kwargs`` go to ``distributed.Client`` (for a local cluster, its
    ``n_workers``, ``threads_per_worker``...). The same as
    ``ParallelExecution(executor=client.get_executor())`` with a client you own.
    """

    def __init__(self, address: str | None = None, progress: bool = False, **client_kwargs: Any):
        if address is not None:
            try:
                address = check_address(address)
            except ValueError as exc:
                msg = f"DaskExecution(address=...) {exc}"
                raise CrystallizeUsageError(msg) from None
        self.address = address
        self.progress = progress
        self.client_kwargs = client_kwargs

    def client(self, experiment: Experiment) -> Client:
        """A new client for ``experiment``'s runs (the caller closes it)."""
        where = f"DaskExecution of experiment {experiment.artifact_name!r}"
        return open_client(self.address, self.client_kwargs, where)

    def run_experiment_loop(self, experiment: Experiment, plan: RunPlan) -> list[RunResult]:
        with self.client(experiment) as client:
            parallel = ParallelExecution(
                max_workers=worker_slots(client),
                progress=self.progress,
                executor=client.get_executor(),
            )
            return parallel.run_experiment_loop(experiment, plan)

    def __repr__(self) -> str:
        return f"DaskExecution(address={self.address!r})"

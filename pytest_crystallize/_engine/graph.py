"""Artifacts and experiment graphs: experiments that consume what other experiments produce.

An :class:`Artifact` is a named file an experiment declares in ``outputs=[...]``; a step of
that experiment writes it (``ctx.artifacts.add(name, data)``, or ``artifact.write(obj)`` when
the artifact is passed to the step). Another experiment reads it by using the artifact as its
data source (or several through :class:`ExperimentInput`).

Which run's file a downstream run reads: the upstream run of the same replicate (modulo the
upstream's replicate count) and of the condition with the same name, or the upstream's
baseline when it has no such condition. Treatments do not propagate: a downstream experiment
has its own conditions, and a downstream treatment named like an upstream one reads that
treatment's output. Inside :meth:`ExperimentGraph.run` the file comes from this graph run;
anywhere else (a lone experiment, pytest workers) the upstream run is computed in the same
process, from the step cache when its steps are cacheable; seeds make both identical.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .errors import CrystallizeUsageError, ExperimentDefinitionError
from .experiment import Experiment
from .inputs import artifacts_read

if TYPE_CHECKING:
    from .results import Result


class ExperimentGraph:
    """Experiments run in dependency order; independent experiments may share a graph.

    Edges come from data sources: an experiment whose data source is (or includes) an
    artifact another experiment lists in ``outputs`` depends on that experiment.
    """

    def __init__(self, *experiments: Experiment | Iterable[Experiment], name: str | None = None):
        flat: list[Experiment] = []
        for item in experiments:
            flat.extend([item] if isinstance(item, Experiment) else list(item))
        self.name = name or "ExperimentGraph"
        self.experiments: dict[str, Experiment] = {}
        for exp in flat:
            if not isinstance(exp, Experiment):
                msg = f"ExperimentGraph takes Experiment objects, got {exp!r}"
                raise CrystallizeUsageError(msg)
            if not exp.name:
                msg = (
                    "every experiment in an ExperimentGraph needs a name: build it with "
                    "Experiment.builder('name')"
                )
                raise ExperimentDefinitionError(msg)
            if exp.name in self.experiments:
                msg = f"graph {self.name!r}: two experiments are named {exp.name!r}; rename one"
                raise ExperimentDefinitionError(msg)
            self.experiments[exp.name] = exp
        self.upstream: dict[str, list[str]] = {}
        for exp in self.experiments.values():
            parents: list[str] = []
            for art in artifacts_read(exp.datasource):
                producer = art.producer
                if producer is None:
                    msg = (
                        f"graph {self.name!r}: experiment {exp.name!r} reads artifact "
                        f"{art.name!r}, which no experiment produces; list it in "
                        f"outputs=[...] of the experiment whose step writes it"
                    )
                    raise ExperimentDefinitionError(msg)
                if self.experiments.get(str(producer.name)) is not producer:
                    msg = (
                        f"graph {self.name!r}: experiment {exp.name!r} reads artifact "
                        f"{art.name!r} of experiment {producer.name!r}, which is not in this "
                        f"graph; add it"
                    )
                    raise ExperimentDefinitionError(msg)
                if producer.name not in parents:
                    parents.append(str(producer.name))
            self.upstream[str(exp.name)] = parents
        self.order = self._topological()

    @classmethod
    def from_experiments(
        cls, experiments: Sequence[Experiment], name: str | None = None
    ) -> ExperimentGraph:
        """``ExperimentGraph(*experiments, name=name)``."""
        return cls(*experiments, name=name)

    def _topological(self) -> list[str]:
        order: list[str] = []
        state: dict[str, int] = {}  # 1: visiting, 2: done

        def visit(node: str, path: list[str]) -> None:
            if state.get(node) == 2:
                return
            if state.get(node) == 1:
                cycle = " -> ".join([*path[path.index(node) :], node])
                msg = (
                    f"graph {self.name!r} has a cycle: {cycle}; an experiment cannot read "
                    f"its own output"
                )
                raise ExperimentDefinitionError(msg)
            state[node] = 1
            for parent in self.upstream[node]:
                visit(parent, [*path, node])
            state[node] = 2
            order.append(node)

        for node in self.experiments:
            visit(node, [])
        return order

    def run(
        self,
        *,
        treatments: Iterable[Any] | None = None,
        replicates: int | None = None,
        strategy: str | None = None,
    ) -> dict[str, Result]:
        """Run every experiment in dependency order; each downstream run reads the files its
        upstream runs wrote in this call. Arguments apply to every experiment."""
        results: dict[str, Result] = {}
        for name in self.order:
            exp = self.experiments[name]
            upstream: dict[tuple[str, str, int], str] = {}
            for art in artifacts_read(exp.datasource):
                produced = results[str(art.producer.name)] if art.producer else None
                for run in produced.runs if produced else ():
                    for _step, file_name, path in run.artifacts:
                        if file_name == art.name:
                            upstream[(file_name, run.condition, run.replicate)] = path
            results[name] = exp.execute(
                treatments=treatments,
                hypotheses=None,
                replicates=replicates,
                strategy=strategy,
                upstream=upstream,
            )
        return results

    async def arun(self, **kwargs: Any) -> dict[str, Result]:
        """Like :meth:`run`, in the running event loop's default executor."""
        import asyncio  # lazy: asyncio costs ~10 ms to import; only async pipelines need it

        return await asyncio.get_running_loop().run_in_executor(None, lambda: self.run(**kwargs))

    def __repr__(self) -> str:
        return f"ExperimentGraph({self.order!r})"

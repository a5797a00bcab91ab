"""ExperimentBuilder: fluent construction of an Experiment."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .errors import ExperimentDefinitionError
from .hypotheses import Hypothesis
from .plugins import BasePlugin
from .sequential import SequentialDesign
from .steps import Pipeline, PipelineStep, coerce_component

if TYPE_CHECKING:
    from .experiment import Experiment


class ExperimentBuilder:
    """Fluent construction: ``Experiment.builder("name").datasource(...)...build()``.

    Every method replaces the previous value, except ``add_step``, which appends; an explicit
    ``pipeline(...)`` takes priority over added steps.
    """

    def __init__(self, cls: type[Experiment], name: str | None = None) -> None:
        self._cls = cls
        self._name = name
        self._datasource: Any = None
        self._pipeline: Pipeline | None = None
        self._steps: list[Any] = []
        self._kwargs: dict[str, Any] = {}

    def datasource(self, datasource: Any) -> ExperimentBuilder:
        """The data source (a :class:`DataSource`, or a ``@data_source`` factory)."""
        self._datasource = datasource
        return self

    def pipeline(self, pipeline: Pipeline | Iterable[Any]) -> ExperimentBuilder:
        """All the steps at once, as a :class:`Pipeline` or a list of steps."""
        self._pipeline = pipeline if isinstance(pipeline, Pipeline) else Pipeline(pipeline)
        return self

    def add_step(self, step: Any) -> ExperimentBuilder:
        """Append a step (a :class:`PipelineStep`, or a ``@pipeline_step`` factory)."""
        self._steps.append(coerce_component(step, PipelineStep, "add_step()"))
        return self

    def plugins(self, plugins: Iterable[BasePlugin]) -> ExperimentBuilder:
        """The plugins; defaults are added for each kind the list lacks."""
        self._kwargs["plugins"] = list(plugins)
        return self

    def treatments(self, treatments: Iterable[Any]) -> ExperimentBuilder:
        """The treatments compared with the baseline."""
        self._kwargs["treatments"] = list(treatments)
        return self

    def hypotheses(self, hypotheses: Iterable[Hypothesis]) -> ExperimentBuilder:
        """The hypotheses verified on the metrics after the runs."""
        self._kwargs["hypotheses"] = list(hypotheses)
        return self

    def replicates(self, replicates: int) -> ExperimentBuilder:
        """How many runs per condition (each with its own seed)."""
        self._kwargs["replicates"] = replicates
        return self

    def description(self, description: str) -> ExperimentBuilder:
        """A description shown in reports."""
        self._kwargs["description"] = description
        return self

    def initial_ctx(self, initial_ctx: Mapping[str, Any]) -> ExperimentBuilder:
        """The context values every run starts with (treatments overlay them)."""
        self._kwargs["initial_ctx"] = dict(initial_ctx)
        return self

    def outputs(self, outputs: Iterable[Any]) -> ExperimentBuilder:
        """Artifacts this experiment's steps write, for other experiments to read."""
        self._kwargs["outputs"] = list(outputs)
        return self

    def marks(self, *marks: Any) -> ExperimentBuilder:
        """pytest marks for the experiment's items under ``pytest --crystallize``, such as
        ``.marks(pytest.mark.slow, pytest.mark.xfail(reason="known regression"))``: ``-m``
        selects by them, ``skip``/``skipif`` skip without running, ``xfail`` expects its
        verdicts to fail. Scripts ignore them."""
        self._kwargs["marks"] = marks
        return self

    def correction(self, method: str) -> ExperimentBuilder:
        """How p-values are adjusted over the experiment's family of comparisons: ``"holm"``
        (the default), ``"bonferroni"``, ``"bh"`` (false discovery rate) or ``"none"``."""
        self._kwargs["correction"] = method
        return self

    def sequential(
        self,
        looks: int,
        *,
        spending: str = "obrien-fleming",
        futility: bool = True,
        min_replicates: int | None = None,
    ) -> ExperimentBuilder:
        """A group-sequential design: ``replicates(N)`` becomes the most replicates per
        condition, and the verdicts are judged at ``looks`` looks (``N * k / looks`` replicates,
        or from ``min_replicates`` on), stopping at the first that decides them. ``spending``:
        ``"obrien-fleming"`` (the default) or ``"pocock"``; ``futility``: stop early when
        nothing can pass any more (non-binding)."""
        self._kwargs["sequential"] = SequentialDesign(
            looks, spending=spending, futility=futility, min_replicates=min_replicates
        )
        return self

    def build(self) -> Experiment:
        """The :class:`Experiment`; it validates its definition."""
        steps = self._pipeline if self._pipeline is not None else self._steps
        if not self._pipeline and not self._steps:
            msg = (
                f"experiment {self._name or '<unnamed>'!r} has no steps; call .add_step(...) "
                f"or .pipeline([...]) before .build()"
            )
            raise ExperimentDefinitionError(msg)
        return self._cls(self._datasource, steps, name=self._name, **self._kwargs)

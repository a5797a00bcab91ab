"""pytest-crystallize: statistically valid experiments, in scripts and as pytest test items.

Every public name is imported on first use (PEP 562): pytest loads the plugin, and so this
package, in every run of every project that installs it, and a run without
``--crystallize`` must not pay for the library. ``_EXPORTS`` below is the one list of public
names; ``__all__`` derives from it, and a test checks the ``TYPE_CHECKING`` imports against it.

Module map (each wing imports only the wings below it; tests/test_architecture.py checks):

    plugin.py      pytest entry point: hooks only, delegating to _harness
    hookspecs.py   the experiment lifecycle hookspecs (public)
    _harness/      the pytest layer: options, experiment files (files), the item tree of
                   chunks and verdicts (collect), selection that keeps experiments whole
                   (selection), the verdict board (board, tracking), verdicts as reports
                   (reports), session documents (documents), terminal output (terminal),
                   the step cache's setup and upkeep (stepcache), xdist hooks (xdist)
    _report/       the judge (verdict decisions and messages) and its registration for
                   script runs (scripts), pilot plans (planning), JSON and Markdown
                   documents, HTML
    _store/        baselines saved and compared across commits
    stats/         the public verifiers (pytest_crystallize.stats), shared computations,
                   equivalence and non-inferiority gates, power
    _engine/       what runs an experiment, in a script or a worker: context, steps (sources,
                   injection, registry), treatments, inputs, experiment, builder, definition
                   checks, names, run plan, lifecycle, execution, seeds, plugins, artifacts,
                   step cache and its signing key, fingerprints, atomic writes, verifiers,
                   hypotheses, the gate on complete data, family correction, numbers, results,
                   the verdict table, the judge's slot (judging), errors, graphs, upstream
                   runs; never imports pytest
"""

from __future__ import annotations

import importlib as _importlib
import typing as _typing

if _typing.TYPE_CHECKING:
    from . import hookspecs as hookspecs
    from ._engine.artifacts import METADATA_FILENAME as METADATA_FILENAME
    from ._engine.artifacts import ArtifactPlugin as ArtifactPlugin
    from ._engine.artifacts import load_all_metrics as load_all_metrics
    from ._engine.artifacts import load_metrics as load_metrics
    from ._engine.builder import ExperimentBuilder as ExperimentBuilder
    from ._engine.cache import CachePlugin as CachePlugin
    from ._engine.context import BASELINE_CONDITION as BASELINE_CONDITION
    from ._engine.context import CONDITION_KEY as CONDITION_KEY
    from ._engine.context import REPLICATE_KEY as REPLICATE_KEY
    from ._engine.context import SEED_KEY as SEED_KEY
    from ._engine.context import ArtifactLog as ArtifactLog
    from ._engine.context import FrozenContext as FrozenContext
    from ._engine.context import FrozenMetrics as FrozenMetrics
    from ._engine.context import LoggingContext as LoggingContext
    from ._engine.context import standalone_context as standalone_context
    from ._engine.dask import DaskExecution as DaskExecution
    from ._engine.errors import ContextMutationError as ContextMutationError
    from ._engine.errors import CrystallizeError as CrystallizeError
    from ._engine.errors import CrystallizeUsageError as CrystallizeUsageError
    from ._engine.errors import ExperimentDefinitionError as ExperimentDefinitionError
    from ._engine.errors import ExperimentRunError as ExperimentRunError
    from ._engine.errors import HypothesisError as HypothesisError
    from ._engine.errors import MissingMetricError as MissingMetricError
    from ._engine.errors import PipelineExecutionError as PipelineExecutionError
    from ._engine.errors import ShippingError as ShippingError
    from ._engine.execution import AsyncExecution as AsyncExecution
    from ._engine.execution import ParallelExecution as ParallelExecution
    from ._engine.execution import SerialExecution as SerialExecution
    from ._engine.experiment import Experiment as Experiment
    from ._engine.graph import ExperimentGraph as ExperimentGraph
    from ._engine.hypotheses import Hypothesis as Hypothesis
    from ._engine.hypotheses import hypothesis as hypothesis
    from ._engine.hypotheses import rank_by_p_value as rank_by_p_value
    from ._engine.injection import inject_from_ctx as inject_from_ctx
    from ._engine.inputs import Artifact as Artifact
    from ._engine.inputs import ExperimentInput as ExperimentInput
    from ._engine.inputs import MultiArtifactDataSource as MultiArtifactDataSource
    from ._engine.plugins import BasePlugin as BasePlugin
    from ._engine.plugins import LoggingPlugin as LoggingPlugin
    from ._engine.plugins import SeedPlugin as SeedPlugin
    from ._engine.registry import clear_registry as clear_registry
    from ._engine.registry import get_datasource as get_datasource
    from ._engine.registry import list_datasources as list_datasources
    from ._engine.registry import register_datasource as register_datasource
    from ._engine.registry import unregister_datasource as unregister_datasource
    from ._engine.results import ConditionMetrics as ConditionMetrics
    from ._engine.results import ExperimentMetrics as ExperimentMetrics
    from ._engine.results import HypothesisResult as HypothesisResult
    from ._engine.results import Result as Result
    from ._engine.results import TreatmentMetrics as TreatmentMetrics
    from ._engine.run import RunPlan as RunPlan
    from ._engine.runs import RunError as RunError
    from ._engine.runs import RunResult as RunResult
    from ._engine.seeds import default_seed_function as default_seed_function
    from ._engine.sources import DataSource as DataSource
    from ._engine.sources import data_source as data_source
    from ._engine.steps import Pipeline as Pipeline
    from ._engine.steps import PipelineStep as PipelineStep
    from ._engine.steps import pipeline as pipeline
    from ._engine.steps import pipeline_step as pipeline_step
    from ._engine.treatments import Treatment as Treatment
    from ._engine.treatments import treatment as treatment
    from ._engine.verifiers import VerifierCallable as VerifierCallable
    from ._engine.verifiers import verifier as verifier

# Each public name, written once, under the module that defines it.
_EXPORTS: dict[str, tuple[str, ...]] = {
    "._engine.artifacts": (
        "ArtifactPlugin",
        "METADATA_FILENAME",
        "load_all_metrics",
        "load_metrics",
    ),
    "._engine.builder": ("ExperimentBuilder",),
    "._engine.cache": ("CachePlugin",),
    "._engine.context": (
        "BASELINE_CONDITION",
        "CONDITION_KEY",
        "REPLICATE_KEY",
        "SEED_KEY",
        "ArtifactLog",
        "FrozenContext",
        "FrozenMetrics",
        "LoggingContext",
        "standalone_context",
    ),
    "._engine.errors": (
        "ContextMutationError",
        "CrystallizeError",
        "CrystallizeUsageError",
        "ExperimentDefinitionError",
        "ExperimentRunError",
        "HypothesisError",
        "MissingMetricError",
        "PipelineExecutionError",
        "ShippingError",
    ),
    "._engine.dask": ("DaskExecution",),
    "._engine.execution": (
        "AsyncExecution",
        "ParallelExecution",
        "SerialExecution",
    ),
    "._engine.experiment": ("Experiment",),
    "._engine.graph": ("ExperimentGraph",),
    "._engine.hypotheses": (
        "Hypothesis",
        "hypothesis",
        "rank_by_p_value",
    ),
    "._engine.injection": ("inject_from_ctx",),
    "._engine.inputs": (
        "Artifact",
        "ExperimentInput",
        "MultiArtifactDataSource",
    ),
    "._engine.plugins": (
        "BasePlugin",
        "LoggingPlugin",
        "SeedPlugin",
    ),
    "._engine.registry": (
        "clear_registry",
        "get_datasource",
        "list_datasources",
        "register_datasource",
        "unregister_datasource",
    ),
    "._engine.results": (
        "ConditionMetrics",
        "ExperimentMetrics",
        "HypothesisResult",
        "Result",
        "TreatmentMetrics",
    ),
    "._engine.run": ("RunPlan",),
    "._engine.runs": ("RunError", "RunResult"),
    "._engine.seeds": ("default_seed_function",),
    "._engine.sources": (
        "DataSource",
        "data_source",
    ),
    "._engine.steps": (
        "Pipeline",
        "PipelineStep",
        "pipeline",
        "pipeline_step",
    ),
    "._engine.treatments": (
        "Treatment",
        "treatment",
    ),
    "._engine.verifiers": (
        "VerifierCallable",
        "verifier",
    ),
}
_MODULES = {name: module for module, names in _EXPORTS.items() for name in names}
_MODULES["hookspecs"] = ".hookspecs"
# The names that run experiments: their first use also loads the judge of script runs, so
# ``Result.verdicts`` and ``Result.summary()`` are filled (the engine cannot import it).
_RUNNERS = ("Experiment", "ExperimentBuilder", "ExperimentGraph")

__all__ = sorted(_MODULES)


def __getattr__(name: str) -> object:
    if name == "__version__":
        from importlib.metadata import version  # lazy: only a caller that asks pays

        return version("pytest-crystallize")
    module = _MODULES.get(name)
    if module is None:
        msg = f"module 'pytest_crystallize' has no attribute {name!r}"
        raise AttributeError(msg)
    loaded = _importlib.import_module(module, __name__)
    if name in _RUNNERS:
        _importlib.import_module("._report.scripts", __name__)
    value = loaded if name == module[1:] else getattr(loaded, name)
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

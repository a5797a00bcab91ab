"""pytest-crystallize: statistically valid experiments, in scripts and as pytest test items."""

from __future__ import annotations

from . import hookspecs
from ._builder import ExperimentBuilder
from ._cache import CachePlugin
from ._context import (
    BASELINE_CONDITION,
    CONDITION_KEY,
    REPLICATE_KEY,
    SEED_KEY,
    ArtifactLog,
    FrozenContext,
    FrozenMetrics,
    LoggingContext,
    standalone_context,
)
from ._errors import (
    ContextMutationError,
    CrystallizeError,
    CrystallizeUsageError,
    ExperimentDefinitionError,
    ExperimentRunError,
    HypothesisError,
    MissingMetricError,
    PipelineExecutionError,
    ShippingError,
)
from ._execution import AsyncExecution, ParallelExecution, SerialExecution
from ._experiment import Experiment
from ._graph import Artifact, ExperimentGraph, ExperimentInput, MultiArtifactDataSource
from ._hypotheses import (
    Hypothesis,
    VerifierCallable,
    hypothesis,
    rank_by_p_value,
    verifier,
)
from ._plugins import (
    METADATA_FILENAME,
    ArtifactPlugin,
    BasePlugin,
    LoggingPlugin,
    load_all_metrics,
    load_metrics,
)
from ._results import (
    ConditionMetrics,
    ExperimentMetrics,
    HypothesisResult,
    Result,
    RunError,
    RunResult,
    TreatmentMetrics,
)
from ._run import RunPlan
from ._seeds import SeedPlugin, default_seed_function
from ._steps import (
    DataSource,
    Pipeline,
    PipelineStep,
    clear_registry,
    data_source,
    get_datasource,
    inject_from_ctx,
    list_datasources,
    pipeline,
    pipeline_step,
    register_datasource,
    unregister_datasource,
)
from ._treatments import Treatment, treatment

__all__ = [
    "Artifact",
    "ArtifactLog",
    "ArtifactPlugin",
    "AsyncExecution",
    "BASELINE_CONDITION",
    "BasePlugin",
    "CONDITION_KEY",
    "CachePlugin",
    "ConditionMetrics",
    "ContextMutationError",
    "CrystallizeError",
    "CrystallizeUsageError",
    "DataSource",
    "Experiment",
    "ExperimentBuilder",
    "ExperimentDefinitionError",
    "ExperimentGraph",
    "ExperimentInput",
    "ExperimentMetrics",
    "ExperimentRunError",
    "FrozenContext",
    "FrozenMetrics",
    "Hypothesis",
    "HypothesisError",
    "HypothesisResult",
    "LoggingContext",
    "LoggingPlugin",
    "METADATA_FILENAME",
    "MissingMetricError",
    "MultiArtifactDataSource",
    "ParallelExecution",
    "Pipeline",
    "PipelineExecutionError",
    "PipelineStep",
    "REPLICATE_KEY",
    "Result",
    "RunError",
    "RunPlan",
    "RunResult",
    "SEED_KEY",
    "SeedPlugin",
    "SerialExecution",
    "ShippingError",
    "Treatment",
    "TreatmentMetrics",
    "VerifierCallable",
    "clear_registry",
    "data_source",
    "default_seed_function",
    "get_datasource",
    "hookspecs",
    "hypothesis",
    "inject_from_ctx",
    "list_datasources",
    "load_all_metrics",
    "load_metrics",
    "pipeline",
    "pipeline_step",
    "rank_by_p_value",
    "register_datasource",
    "standalone_context",
    "treatment",
    "unregister_datasource",
    "verifier",
]


def __getattr__(name: str) -> object:
    if name == "__version__":
        from importlib.metadata import version

        return version("pytest-crystallize")
    msg = f"module 'pytest_crystallize' has no attribute {name!r}"
    raise AttributeError(msg)

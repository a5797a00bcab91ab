"""pytest-crystallize: statistically valid experiments, in scripts and as pytest test items.

Every public name is imported on first use (PEP 562): pytest loads the plugin, and so this
package, in every run of every project that installs it, and a run without
``--crystallize`` must not pay for the library.
"""

from __future__ import annotations

import importlib as _importlib
import typing as _typing

if _typing.TYPE_CHECKING:
    from . import hookspecs
    from ._engine.builder import ExperimentBuilder
    from ._engine.cache import CachePlugin
    from ._engine.context import (
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
    from ._engine.errors import (
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
    from ._engine.execution import AsyncExecution, ParallelExecution, SerialExecution
    from ._engine.experiment import Experiment
    from ._engine.graph import Artifact, ExperimentGraph, ExperimentInput, MultiArtifactDataSource
    from ._engine.hypotheses import (
        Hypothesis,
        VerifierCallable,
        hypothesis,
        rank_by_p_value,
        verifier,
    )
    from ._engine.plugins import (
        METADATA_FILENAME,
        ArtifactPlugin,
        BasePlugin,
        LoggingPlugin,
        load_all_metrics,
        load_metrics,
    )
    from ._engine.results import (
        ConditionMetrics,
        ExperimentMetrics,
        HypothesisResult,
        Result,
        RunError,
        RunResult,
        TreatmentMetrics,
    )
    from ._engine.run import RunPlan
    from ._engine.seeds import SeedPlugin, default_seed_function
    from ._engine.steps import (
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
    from ._engine.treatments import Treatment, treatment

# Where each public name is defined.
_MODULES = {
    "Artifact": "._engine.graph",
    "ArtifactLog": "._engine.context",
    "ArtifactPlugin": "._engine.plugins",
    "AsyncExecution": "._engine.execution",
    "BASELINE_CONDITION": "._engine.context",
    "BasePlugin": "._engine.plugins",
    "CONDITION_KEY": "._engine.context",
    "CachePlugin": "._engine.cache",
    "ConditionMetrics": "._engine.results",
    "ContextMutationError": "._engine.errors",
    "CrystallizeError": "._engine.errors",
    "CrystallizeUsageError": "._engine.errors",
    "DataSource": "._engine.steps",
    "Experiment": "._engine.experiment",
    "ExperimentBuilder": "._engine.builder",
    "ExperimentDefinitionError": "._engine.errors",
    "ExperimentGraph": "._engine.graph",
    "ExperimentInput": "._engine.graph",
    "ExperimentMetrics": "._engine.results",
    "ExperimentRunError": "._engine.errors",
    "FrozenContext": "._engine.context",
    "FrozenMetrics": "._engine.context",
    "Hypothesis": "._engine.hypotheses",
    "HypothesisError": "._engine.errors",
    "HypothesisResult": "._engine.results",
    "LoggingContext": "._engine.context",
    "LoggingPlugin": "._engine.plugins",
    "METADATA_FILENAME": "._engine.plugins",
    "MissingMetricError": "._engine.errors",
    "MultiArtifactDataSource": "._engine.graph",
    "ParallelExecution": "._engine.execution",
    "Pipeline": "._engine.steps",
    "PipelineExecutionError": "._engine.errors",
    "PipelineStep": "._engine.steps",
    "REPLICATE_KEY": "._engine.context",
    "Result": "._engine.results",
    "RunError": "._engine.results",
    "RunPlan": "._engine.run",
    "RunResult": "._engine.results",
    "SEED_KEY": "._engine.context",
    "SeedPlugin": "._engine.seeds",
    "SerialExecution": "._engine.execution",
    "ShippingError": "._engine.errors",
    "Treatment": "._engine.treatments",
    "TreatmentMetrics": "._engine.results",
    "VerifierCallable": "._engine.hypotheses",
    "clear_registry": "._engine.steps",
    "data_source": "._engine.steps",
    "default_seed_function": "._engine.seeds",
    "get_datasource": "._engine.steps",
    "hookspecs": ".hookspecs",
    "hypothesis": "._engine.hypotheses",
    "inject_from_ctx": "._engine.steps",
    "list_datasources": "._engine.steps",
    "load_all_metrics": "._engine.plugins",
    "load_metrics": "._engine.plugins",
    "pipeline": "._engine.steps",
    "pipeline_step": "._engine.steps",
    "rank_by_p_value": "._engine.hypotheses",
    "register_datasource": "._engine.steps",
    "standalone_context": "._engine.context",
    "treatment": "._engine.treatments",
    "unregister_datasource": "._engine.steps",
    "verifier": "._engine.hypotheses",
}

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
    module = _MODULES.get(name)
    if module is None:
        msg = f"module 'pytest_crystallize' has no attribute {name!r}"
        raise AttributeError(msg)
    loaded = _importlib.import_module(module, __name__)
    value = loaded if name == module[1:] else getattr(loaded, name)
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

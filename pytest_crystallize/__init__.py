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

# Where each public name is defined.
_MODULES = {
    "Artifact": "._graph",
    "ArtifactLog": "._context",
    "ArtifactPlugin": "._plugins",
    "AsyncExecution": "._execution",
    "BASELINE_CONDITION": "._context",
    "BasePlugin": "._plugins",
    "CONDITION_KEY": "._context",
    "CachePlugin": "._cache",
    "ConditionMetrics": "._results",
    "ContextMutationError": "._errors",
    "CrystallizeError": "._errors",
    "CrystallizeUsageError": "._errors",
    "DataSource": "._steps",
    "Experiment": "._experiment",
    "ExperimentBuilder": "._builder",
    "ExperimentDefinitionError": "._errors",
    "ExperimentGraph": "._graph",
    "ExperimentInput": "._graph",
    "ExperimentMetrics": "._results",
    "ExperimentRunError": "._errors",
    "FrozenContext": "._context",
    "FrozenMetrics": "._context",
    "Hypothesis": "._hypotheses",
    "HypothesisError": "._errors",
    "HypothesisResult": "._results",
    "LoggingContext": "._context",
    "LoggingPlugin": "._plugins",
    "METADATA_FILENAME": "._plugins",
    "MissingMetricError": "._errors",
    "MultiArtifactDataSource": "._graph",
    "ParallelExecution": "._execution",
    "Pipeline": "._steps",
    "PipelineExecutionError": "._errors",
    "PipelineStep": "._steps",
    "REPLICATE_KEY": "._context",
    "Result": "._results",
    "RunError": "._results",
    "RunPlan": "._run",
    "RunResult": "._results",
    "SEED_KEY": "._context",
    "SeedPlugin": "._seeds",
    "SerialExecution": "._execution",
    "ShippingError": "._errors",
    "Treatment": "._treatments",
    "TreatmentMetrics": "._results",
    "VerifierCallable": "._hypotheses",
    "clear_registry": "._steps",
    "data_source": "._steps",
    "default_seed_function": "._seeds",
    "get_datasource": "._steps",
    "hookspecs": ".hookspecs",
    "hypothesis": "._hypotheses",
    "inject_from_ctx": "._steps",
    "list_datasources": "._steps",
    "load_all_metrics": "._plugins",
    "load_metrics": "._plugins",
    "pipeline": "._steps",
    "pipeline_step": "._steps",
    "rank_by_p_value": "._hypotheses",
    "register_datasource": "._steps",
    "standalone_context": "._context",
    "treatment": "._treatments",
    "unregister_datasource": "._steps",
    "verifier": "._hypotheses",
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

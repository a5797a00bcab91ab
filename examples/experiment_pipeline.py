"""A two-stage experiment graph: prepare noisy data once, then compare estimators on it.

Stage 1, ``prepare``, draws a heavy-tailed sample per replicate: a true location plus
Student-t noise with 1.5 degrees of freedom (occasional huge outliers). Its cacheable step
writes two artifacts as ``.npy`` files: the sample and the true location.

Stage 2, ``compare_methods``, reads both artifacts (``ExperimentInput``) and estimates the
location with the plain mean (the baseline) and two robust estimators (the treatments:
``median`` and a 20% ``trimmed_mean``), recording each estimate's absolute error. Every
condition of a replicate reads the same prepared sample, so the comparison is paired; the
hypothesis is a one-sided paired t-test that the robust estimator's error is lower.

Run it as tests (each experiment of the graph becomes a collector, the verdicts are tests)::

    pytest --crystallize examples/experiment_pipeline.py

or as a script, which runs the graph in dependency order::

    python examples/experiment_pipeline.py

Under pytest the downstream runs obtain their inputs without relying on item order: from the
step cache when ``prepare`` already ran, else by computing the ``prepare`` run themselves
(seeds make both identical), so ``-n 2`` or ``-k compare_methods`` give the same verdicts.
"""

from __future__ import annotations

import io

import numpy as np

from pytest_crystallize import (
    Artifact,
    Experiment,
    ExperimentGraph,
    ExperimentInput,
    FrozenContext,
    data_source,
    hypothesis,
    pipeline_step,
    stats,
    treatment,
)


def npy_bytes(array: np.ndarray) -> bytes:
    """An Artifact writer returns bytes: here, the array in ``.npy`` format."""
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


sample_file = Artifact("sample.npy", loader=np.load, writer=npy_bytes)
truth_file = Artifact("truth.npy", loader=np.load, writer=npy_bytes)


# --- stage 1: prepare ---------------------------------------------------------------------


@data_source
def true_location(ctx: FrozenContext) -> float:
    """The location the estimators must recover, different in each replicate."""
    return float(ctx.rng_for("truth").uniform(-10.0, 10.0))


@pipeline_step(cacheable=True)
def draw_sample(
    location: float, ctx: FrozenContext, *, sample, truth, size: int = 200, df: float = 1.5
):
    """Draw ``size`` heavy-tailed observations around ``location`` and save both."""
    values = location + ctx.rng_for("noise").standard_t(df, size=size)
    sample.write(values)
    truth.write(np.array([location]))
    return values, {"spread": float(np.median(np.abs(values - np.median(values))))}


prepare = (
    Experiment.builder("prepare")
    .description("Heavy-tailed samples around a known location, one per replicate")
    .datasource(true_location())
    .add_step(draw_sample(sample=sample_file, truth=truth_file))
    .outputs([sample_file, truth_file])
    .replicates(24)
    .build()
)


# --- stage 2: compare_methods -------------------------------------------------------------


def trimmed_mean(values: np.ndarray, share: float = 0.2) -> float:
    """The mean of what is left after dropping ``share`` of the values at each end."""
    ordered = np.sort(values)
    cut = int(len(ordered) * share)
    return float(ordered[cut : len(ordered) - cut].mean())


ESTIMATORS = {"mean": np.mean, "median": np.median, "trimmed_mean": trimmed_mean}


@pipeline_step()
def estimate(data: dict[str, np.ndarray], ctx: FrozenContext, *, method: str):
    """Estimate the location with ``method`` (a context value the treatments set)."""
    value = float(ESTIMATORS[method](data["sample"]))
    error = abs(value - float(data["truth"][0]))
    return value, {"abs_error": error}


@hypothesis(verifier=stats.paired_t_test(alternative="less"), metrics="abs_error")
def smaller_error(result):
    """Lower is better: rank the treatments by p-value."""
    return result["p_value"]


compare_methods = (
    Experiment.builder("compare_methods")
    .description("Mean vs robust estimators on the prepared samples")
    .datasource(ExperimentInput(sample=sample_file, truth=truth_file))
    .add_step(estimate())
    .initial_ctx({"method": "mean"})
    .treatments(
        [
            treatment("median", {"method": "median"}),
            treatment("trimmed_mean", {"method": "trimmed_mean"}),
        ]
    )
    .hypotheses([smaller_error])
    .replicates(24)
    .build()
)

pipeline = ExperimentGraph(prepare, compare_methods, name="estimators")


if __name__ == "__main__":
    results = pipeline.run()
    compared = results["compare_methods"]
    compared.raise_for_errors()
    for name, outcome in compared.get_hypothesis("smaller_error").results.items():
        print(f"{name}: p={outcome.pvalue:.3g} ({outcome.outcome})")

"""The built-in metrics plugin: registers the metrics of the evaluation guide's table.

Imported on ``list_metrics()``, so it imports nothing heavier than numpy.
Descriptions are the formulas of the guide, with its two wrong ones corrected
(FalseDiscoveryRate is FP / (FP + TP), FalseOmissionRate is FN / (FN + TN)).
"""

from __future__ import annotations

from neuronperf_core.hookspecs import RegisterMetric, hookimpl
from neuronperf_core.metrics.base import BaseEvalMetric
from neuronperf_core.metrics.classification import (
    Accuracy,
    F1Score,
    FalseDiscoveryRate,
    FalseNegativeRate,
    FalseOmissionRate,
    FalsePositiveRate,
    NegativeLikelihoodRatio,
    NegativePredictiveValue,
    PositiveLikelihoodRatio,
    PositivePredictiveValue,
    PrevalenceThreshold,
    ThreatScore,
    TrueNegativeRate,
    TruePositiveRate,
)
from neuronperf_core.metrics.regression import MeanAbsoluteError, MeanSquaredError

__all__ = ["BUILTIN_METRICS", "neuronperf_register_metrics"]

# (metric class, aliases), in the order of the guide's table; the name is the class name
# and the description its ``formula``.
BUILTIN_METRICS: tuple[tuple[type[BaseEvalMetric], tuple[str, ...]], ...] = (
    (Accuracy, ()),
    (TruePositiveRate, ("Sensitivity", "Recall", "Hit Rate")),
    (TrueNegativeRate, ("Specificity", "Selectivity")),
    (PositivePredictiveValue, ("Precision",)),
    (NegativePredictiveValue, ()),
    (FalseNegativeRate, ()),
    (FalsePositiveRate, ()),
    (FalseDiscoveryRate, ()),
    (FalseOmissionRate, ()),
    (PositiveLikelihoodRatio, ()),
    (NegativeLikelihoodRatio, ()),
    (PrevalenceThreshold, ()),
    (ThreatScore, ()),
    (F1Score, ()),
    (MeanAbsoluteError, ()),
    (MeanSquaredError, ()),
)


@hookimpl
def neuronperf_register_metrics(register: RegisterMetric) -> None:
    """Register every built-in metric under its class name, with its formula and aliases."""
    for metric_class, aliases in BUILTIN_METRICS:
        register(
            metric_class.__name__,
            metric_class,
            description=metric_class.formula,  # type: ignore[attr-defined]
            aliases=aliases,
        )

"""The built-in metrics plugin: registers the metrics of the evaluation guide's table.

Loaded whenever plugins are (``list_metrics()``, ``neuronperf --help``), so it
registers import paths and imports no metric module: numpy is imported on a
metric's first use. The descriptions are the formulas of the guide, with its two
wrong ones corrected (FalseDiscoveryRate is FP / (FP + TP), FalseOmissionRate is
FN / (FN + TN)); they live here only, where listing can read them.
"""

from __future__ import annotations

from neuronperf_core.hookspecs import RegisterMetric, hookimpl

__all__ = ["BUILTIN_METRICS", "neuronperf_register_metrics"]

_CLASSIFICATION = "neuronperf_core.metrics.classification"
_REGRESSION = "neuronperf_core.metrics.regression"

# (name = class name, module, formula, aliases), in the order of the guide's table.
BUILTIN_METRICS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("Accuracy", _CLASSIFICATION, "(TP + TN) / (TP + TN + FP + FN)", ()),
    (
        "TruePositiveRate",
        _CLASSIFICATION,
        "TP / (TP + FN)",
        ("Sensitivity", "Recall", "Hit Rate"),
    ),
    ("TrueNegativeRate", _CLASSIFICATION, "TN / (TN + FP)", ("Specificity", "Selectivity")),
    ("PositivePredictiveValue", _CLASSIFICATION, "TP / (TP + FP)", ("Precision",)),
    ("NegativePredictiveValue", _CLASSIFICATION, "TN / (TN + FN)", ()),
    ("FalseNegativeRate", _CLASSIFICATION, "FN / (FN + TP)", ()),
    ("FalsePositiveRate", _CLASSIFICATION, "FP / (FP + TN)", ()),
    ("FalseDiscoveryRate", _CLASSIFICATION, "FP / (FP + TP)", ()),
    ("FalseOmissionRate", _CLASSIFICATION, "FN / (FN + TN)", ()),
    ("PositiveLikelihoodRatio", _CLASSIFICATION, "TPR / FPR", ()),
    ("NegativeLikelihoodRatio", _CLASSIFICATION, "FNR / TNR", ()),
    ("PrevalenceThreshold", _CLASSIFICATION, "sqrt(FPR) / (sqrt(FPR) + sqrt(TPR))", ()),
    ("ThreatScore", _CLASSIFICATION, "TP / (TP + FN + FP)", ()),
    ("F1Score", _CLASSIFICATION, "2TP / (2TP + FN + FP)", ()),
    ("MeanAbsoluteError", _REGRESSION, "sum(|y - x|) / n", ()),
    ("MeanSquaredError", _REGRESSION, "sum((y - x)^2) / n", ()),
)


@hookimpl
def neuronperf_register_metrics(register: RegisterMetric) -> None:
    """Register every built-in metric under its class name, with its formula and aliases."""
    for name, module, formula, aliases in BUILTIN_METRICS:
        register(name, f"{module}:{name}", description=formula, aliases=aliases)

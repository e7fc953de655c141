"""neuronperf-metrics-extra: more evaluation metrics for neuronperf, as a plugin.

Installing the distribution is all it takes: neuronperf finds
``neuronperf_metrics_extra.plugin`` through its entry point, and the metrics
appear in ``npf.list_metrics()`` and work in ``evaluate(..., metrics=[...])``.
The classes are importable from here for direct use::

    from neuronperf_metrics_extra import R2Score

    metric = R2Score()
    metric.process_batch(outputs, targets)
    print(R2Score.aggregate([metric]))

The classes are imported on first access (PEP 562), so that neuronperf's plugin
discovery, which imports this package, imports no metric module nor numpy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from neuronperf_metrics_extra.classification import (
        BalancedAccuracy,
        CohenKappa,
        ConfusionMatrix,
        MatthewsCorrelation,
    )
    from neuronperf_metrics_extra.probabilistic import ExpectedCalibrationError, LogLoss
    from neuronperf_metrics_extra.ranking import ROCAUC, AveragePrecision, BinningWarning
    from neuronperf_metrics_extra.regression import (
        ExplainedVariance,
        MaxError,
        MeanAbsolutePercentageError,
        PearsonCorrelation,
        R2Score,
        RootMeanSquaredError,
    )
    from neuronperf_metrics_extra.sequence import ExactMatch, Perplexity

# public name -> the module of this package that defines it
_MODULES = {
    "BalancedAccuracy": "classification",
    "CohenKappa": "classification",
    "ConfusionMatrix": "classification",
    "MatthewsCorrelation": "classification",
    "ExpectedCalibrationError": "probabilistic",
    "LogLoss": "probabilistic",
    "ROCAUC": "ranking",
    "AveragePrecision": "ranking",
    "BinningWarning": "ranking",
    "ExplainedVariance": "regression",
    "MaxError": "regression",
    "MeanAbsolutePercentageError": "regression",
    "PearsonCorrelation": "regression",
    "R2Score": "regression",
    "RootMeanSquaredError": "regression",
    "ExactMatch": "sequence",
    "Perplexity": "sequence",
}

__version__ = "0.1.0"

__all__ = [
    "ROCAUC",
    "AveragePrecision",
    "BalancedAccuracy",
    "BinningWarning",
    "CohenKappa",
    "ConfusionMatrix",
    "ExactMatch",
    "ExpectedCalibrationError",
    "ExplainedVariance",
    "LogLoss",
    "MatthewsCorrelation",
    "MaxError",
    "MeanAbsolutePercentageError",
    "PearsonCorrelation",
    "Perplexity",
    "R2Score",
    "RootMeanSquaredError",
    "__version__",
]


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

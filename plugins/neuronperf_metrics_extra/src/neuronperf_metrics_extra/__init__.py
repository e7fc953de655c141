"""neuronperf-metrics-extra: more evaluation metrics for neuronperf, as a plugin.

Installing the distribution is all it takes: neuronperf finds
``neuronperf_metrics_extra.plugin`` through its entry point, and the metrics
appear in ``npf.list_metrics()`` and work in ``evaluate(..., metrics=[...])``.
The classes are importable from here for direct use::

    from neuronperf_metrics_extra import R2Score

    metric = R2Score()
    metric.process_batch(outputs, targets)
    print(R2Score.aggregate([metric]))
"""

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

"""The neuronperf plugin of neuronperf-metrics-extra: it registers the metrics and nothing else.

neuronperf imports this module through the entry point in pyproject.toml::

    [project.entry-points.neuronperf]
    metrics_extra = "neuronperf_metrics_extra.plugin"

and calls ``neuronperf_register_metrics`` once per process, on first need
(``npf.list_metrics()``, a metric lookup, ``neuronperf plugins``). Keep it
cheap to import: the metric modules import numpy and neuronperf_core only.
"""

from __future__ import annotations

from neuronperf_core import hookimpl
from neuronperf_core.hookspecs import RegisterMetric
from neuronperf_metrics_extra.classification import (
    BalancedAccuracy,
    CohenKappa,
    ConfusionMatrix,
    MatthewsCorrelation,
)
from neuronperf_metrics_extra.probabilistic import ExpectedCalibrationError, LogLoss
from neuronperf_metrics_extra.ranking import ROCAUC, AveragePrecision
from neuronperf_metrics_extra.regression import (
    ExplainedVariance,
    MaxError,
    MeanAbsolutePercentageError,
    PearsonCorrelation,
    R2Score,
    RootMeanSquaredError,
)
from neuronperf_metrics_extra.sequence import ExactMatch, Perplexity


@hookimpl
def neuronperf_register_metrics(register: RegisterMetric) -> None:
    """Register every metric of this package, with a one-line description for list_metrics()."""
    # classification: (N,) labels or (N, C) scores, and (N,) labels
    register(
        "BalancedAccuracy",
        BalancedAccuracy,
        description="mean over classes of TP / (TP + FN)",
    )
    register(
        "MatthewsCorrelation",
        MatthewsCorrelation,
        description="(TP*TN - FP*FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)), multiclass R_K",
        aliases=("MCC",),
    )
    register(
        "CohenKappa",
        CohenKappa,
        description="(p_o - p_e) / (1 - p_e): agreement beyond chance",
    )
    register(
        "ConfusionMatrix",
        ConfusionMatrix,
        description="nested list: [i][j] = records of true label i predicted as j, labels sorted",
    )
    # probabilities: (N,) of the positive class or (N, C) per class, and (N,) class ids
    register(
        "LogLoss",
        LogLoss,
        description="-mean(log p[target]), p clipped to [eps, 1 - eps] (from_logits=False)",
        aliases=("CrossEntropy",),
    )
    register(
        "ExpectedCalibrationError",
        ExpectedCalibrationError,
        description="sum_b n_b / N * |accuracy_b - confidence_b| over 15 confidence bins",
        aliases=("ECE",),
    )
    # binary scores: (N,) scores of the positive class, and (N,) 0/1 targets
    register(
        "ROCAUC",
        ROCAUC,
        description="area under the ROC curve, binned (65,536 bins, error bound checked)",
        aliases=("AUROC",),
    )
    register(
        "AveragePrecision",
        AveragePrecision,
        description="sum_n (R_n - R_n-1) P_n, binned (65,536 bins, error bound checked)",
    )
    # regression: outputs and targets of one shape, (N, ...)
    register(
        "RootMeanSquaredError",
        RootMeanSquaredError,
        description="sqrt(sum((y - x)^2) / n)",
        aliases=("RMSE",),
    )
    register(
        "R2Score",
        R2Score,
        description="1 - sum((y - x)^2) / sum((y - mean(y))^2), mean over outputs",
        aliases=("R2",),
    )
    register(
        "MeanAbsolutePercentageError",
        MeanAbsolutePercentageError,
        description="sum(|y - x| / max(|y|, eps)) / n, a fraction",
        aliases=("MAPE",),
    )
    register(
        "ExplainedVariance",
        ExplainedVariance,
        description="1 - Var(y - x) / Var(y), mean over outputs",
    )
    register(
        "MaxError",
        MaxError,
        description="max(|y - x|)",
    )
    register(
        "PearsonCorrelation",
        PearsonCorrelation,
        description="cov(x, y) / (std(x) * std(y)) for scalar records",
        aliases=("Pearson",),
    )
    # sequences: (N, T) per-token values
    register(
        "Perplexity",
        Perplexity,
        description="exp(-sum(log p(token)) / n_tokens) from per-token log-likelihoods",
    )
    register(
        "ExactMatch",
        ExactMatch,
        description="sequences whose every token equals the target's / sequences",
        aliases=("SequenceAccuracy",),
    )

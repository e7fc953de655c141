"""The neuronperf plugin of neuronperf-metrics-extra: it registers the metrics and nothing else.

neuronperf imports this module through the entry point in pyproject.toml::

    [project.entry-points.neuronperf]
    metrics_extra = "neuronperf_metrics_extra.plugin"

and calls ``neuronperf_register_metrics`` once per process, on first need
(``npf.list_metrics()``, a metric lookup, ``neuronperf plugins``). Each metric is
registered by import path, with the one-line description ``list_metrics()`` shows:
listing imports no metric module (nor numpy); a metric's module is imported on
its first use.
"""

from __future__ import annotations

from neuronperf_core import hookimpl
from neuronperf_core.hookspecs import RegisterMetric

__all__ = ["METRICS", "neuronperf_register_metrics"]

_PACKAGE = "neuronperf_metrics_extra"

# (name = class name, module of the package, description, aliases), in listing order.
METRICS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    # classification: (N,) labels or (N, C) scores, and (N,) labels
    ("BalancedAccuracy", "classification", "mean over classes of TP / (TP + FN)", ()),
    (
        "MatthewsCorrelation",
        "classification",
        "(TP*TN - FP*FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)), multiclass R_K",
        ("MCC",),
    ),
    ("CohenKappa", "classification", "(p_o - p_e) / (1 - p_e): agreement beyond chance", ()),
    (
        "ConfusionMatrix",
        "classification",
        "nested list: [i][j] = records of true label i predicted as j, labels sorted",
        (),
    ),
    # probabilities: (N,) of the positive class or (N, C) per class, and (N,) class ids
    (
        "LogLoss",
        "probabilistic",
        "-mean(log p[target]), p clipped to [eps, 1 - eps] (from_logits=False)",
        ("CrossEntropy",),
    ),
    (
        "ExpectedCalibrationError",
        "probabilistic",
        "sum_b n_b / N * |accuracy_b - confidence_b| over 15 confidence bins",
        ("ECE",),
    ),
    # binary scores: (N,) scores of the positive class, and (N,) 0/1 targets
    (
        "ROCAUC",
        "ranking",
        "area under the ROC curve, binned (65,536 bins, error bound checked)",
        ("AUROC",),
    ),
    (
        "AveragePrecision",
        "ranking",
        "sum_n (R_n - R_n-1) P_n, binned (65,536 bins, error bound checked)",
        (),
    ),
    # regression: outputs and targets of one shape, (N, ...)
    ("RootMeanSquaredError", "regression", "sqrt(sum((y - x)^2) / n)", ("RMSE",)),
    (
        "R2Score",
        "regression",
        "1 - sum((y - x)^2) / sum((y - mean(y))^2), mean over outputs",
        ("R2",),
    ),
    (
        "MeanAbsolutePercentageError",
        "regression",
        "sum(|y - x| / max(|y|, eps)) / n, a fraction",
        ("MAPE",),
    ),
    ("ExplainedVariance", "regression", "1 - Var(y - x) / Var(y), mean over outputs", ()),
    ("MaxError", "regression", "max(|y - x|)", ()),
    (
        "PearsonCorrelation",
        "regression",
        "cov(x, y) / (std(x) * std(y)) for scalar records",
        ("Pearson",),
    ),
    # sequences: (N, T) per-token values
    (
        "Perplexity",
        "sequence",
        "exp(-sum(log p(token)) / n_tokens) from per-token log-likelihoods",
        (),
    ),
    (
        "ExactMatch",
        "sequence",
        "sequences whose every token equals the target's / sequences",
        ("SequenceAccuracy",),
    ),
)


@hookimpl
def neuronperf_register_metrics(register: RegisterMetric) -> None:
    """Register every metric of this package by import path, with a one-line description
    for list_metrics()."""
    for name, module, description, aliases in METRICS:
        register(name, f"{_PACKAGE}.{module}:{name}", description=description, aliases=aliases)

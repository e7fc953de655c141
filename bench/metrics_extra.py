"""Throughput of the neuronperf-metrics-extra metrics against scikit-learn, scipy and torchmetrics.

    python bench/metrics_extra.py [--n 1000000] [--repeat 3] [--torch-threads 1]

On the same N records (generated once, seeded) it measures, in one run,
records per second of:

- process_batch: one call on the whole numpy arrays, plus aggregate(), on a
  fresh metric instance;
- the reference: scikit-learn's function (scipy's pearsonr for
  PearsonCorrelation) on the same numpy arrays;
- torchmetrics: its functional metric on torch tensors built beforehand from
  the same arrays ("n/a" where torchmetrics has no such metric, or torch or
  torchmetrics is missing).

Before anything is timed, every path's value is checked against the
reference (to 1e-9 relative, 1e-6 for torchmetrics, which computes some
metrics in float32; ROCAUC and AveragePrecision, which are binned, to within
their own error bound), and the script stops if one disagrees. Each figure is
the best of --repeat runs. process_batch runs on one thread (numpy); torch
uses all cores unless --torch-threads says otherwise.

Records: 5 classes with 80 % predicted correctly (the confusion-matrix
metrics), (N, 5) class probabilities (LogLoss), binary scores with binary
targets (ROCAUC, AveragePrecision, ExpectedCalibrationError), float pairs with
targets in [1, 2) (regression), sequences of 8 tokens (Perplexity: per-token
log-likelihoods and a mask; ExactMatch: 0/1 tokens, so that scikit-learn's
subset accuracy applies). A sequence is one record.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "plugins" / "neuronperf_metrics_extra" / "src")]  # a checkout

from neuronperf_metrics_extra import (  # noqa: E402
    ROCAUC,
    AveragePrecision,
    BalancedAccuracy,
    CohenKappa,
    ConfusionMatrix,
    ExactMatch,
    ExpectedCalibrationError,
    ExplainedVariance,
    LogLoss,
    MatthewsCorrelation,
    MaxError,
    MeanAbsolutePercentageError,
    PearsonCorrelation,
    Perplexity,
    R2Score,
    RootMeanSquaredError,
)
from neuronperf_metrics_extra.ranking import BinnedRankingMetric  # noqa: E402

from neuronperf_core.metrics.base import BaseEvalMetric  # noqa: E402

Function = Callable[[Any, Any], Any]


@dataclass
class Case:
    """One metric on one data set, and what to compare it with."""

    cls: type[BaseEvalMetric]
    outputs: Any
    targets: Any
    reference: Function | None  # (targets, outputs) -> value, numpy arrays
    torchmetrics: Function | None = None  # (preds, target) -> tensor, torch tensors


def best_of(repeat: int, function: Callable[[], Any]) -> tuple[float, Any]:
    """Shortest wall time of ``repeat`` calls, and the last result."""
    best, result = math.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def by_batch(case: Case) -> Any:
    metric = case.cls()
    metric.process_batch(case.outputs, case.targets)
    return case.cls.aggregate([metric])


def value_of(result: Any) -> Any:
    """A comparable value: a float, or a nested list for a matrix."""
    if hasattr(result, "tolist"):
        result = result.tolist()
    return result if isinstance(result, list) else float(result)


def agree(what: str, value: Any, reference: Any, tolerance: float) -> None:
    """Stop the bench (even under python -O) when a path computes another number."""
    if isinstance(reference, list):
        ok = np.allclose(value, reference, rtol=tolerance, atol=0)
    else:
        ok = math.isclose(value, reference, rel_tol=tolerance, abs_tol=tolerance)
    if not ok:
        sys.exit(f"{what} gave {value}, the reference {reference}: fix that before timing it")


def data(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 5, n)
    scores = rng.random(n)
    binary = (rng.random(n) < scores**1.5).astype(np.int64)  # scores rank, miscalibrated
    x_true = 1.0 + rng.random(n)
    log_p = np.log(rng.random((n, 8)))
    tokens = rng.integers(0, 2, (n, 8))
    return {
        "labels": labels,
        "predicted": np.where(rng.random(n) < 0.8, labels, rng.integers(0, 5, n)),
        "probabilities": rng.dirichlet(np.ones(5), n),
        "scores": scores,
        "binary": binary,
        "x_true": x_true,
        "x_pred": x_true + rng.normal(0.0, 0.1, n),
        "log_p": log_p,
        "mask": rng.random((n, 8)) < 0.9,
        "tokens": tokens,
        "tokens_predicted": np.where(rng.random((n, 1)) < 0.7, tokens, rng.integers(0, 2, (n, 8))),
    }


def cases(d: dict[str, np.ndarray]) -> list[Case]:
    from scipy import stats
    from sklearn import metrics as skm

    tm = torchmetrics_functions()

    def t(name: str) -> Function | None:
        return None if tm is None else tm.get(name)

    labels, predicted = d["labels"], d["predicted"]
    x_true, x_pred = d["x_true"], d["x_pred"]
    return [
        Case(BalancedAccuracy, predicted, labels, skm.balanced_accuracy_score, t("balanced")),
        Case(MatthewsCorrelation, predicted, labels, skm.matthews_corrcoef, t("mcc")),
        Case(CohenKappa, predicted, labels, skm.cohen_kappa_score, t("kappa")),
        Case(ConfusionMatrix, predicted, labels, skm.confusion_matrix, t("confusion")),
        Case(
            LogLoss,
            d["probabilities"],
            labels,
            lambda y, p: skm.log_loss(y, p, labels=list(range(5))),
        ),
        Case(ROCAUC, d["scores"], d["binary"], skm.roc_auc_score, t("auroc")),
        Case(AveragePrecision, d["scores"], d["binary"], skm.average_precision_score, t("ap")),
        Case(ExpectedCalibrationError, d["scores"], d["binary"], None, t("ece")),
        Case(RootMeanSquaredError, x_pred, x_true, skm.root_mean_squared_error, t("rmse")),
        Case(R2Score, x_pred, x_true, skm.r2_score, t("r2")),
        Case(
            MeanAbsolutePercentageError,
            x_pred,
            x_true,
            skm.mean_absolute_percentage_error,
            t("mape"),
        ),
        Case(ExplainedVariance, x_pred, x_true, skm.explained_variance_score, t("ev")),
        Case(MaxError, x_pred, x_true, skm.max_error),
        Case(
            PearsonCorrelation,
            x_pred,
            x_true,
            lambda y, x: stats.pearsonr(x, y).statistic,
            t("pearson"),
        ),
        Case(Perplexity, d["log_p"], d["mask"], None),
        Case(ExactMatch, d["tokens_predicted"], d["tokens"], skm.accuracy_score, t("exact")),
    ]


def torchmetrics_functions() -> dict[str, Function] | None:
    try:
        import torch  # noqa: F401
        from torchmetrics.functional import (
            explained_variance,
            mean_absolute_percentage_error,
            mean_squared_error,
            pearson_corrcoef,
            r2_score,
        )
        from torchmetrics.functional.classification import (
            binary_auroc,
            binary_average_precision,
            binary_calibration_error,
            multiclass_accuracy,
            multiclass_cohen_kappa,
            multiclass_confusion_matrix,
            multiclass_exact_match,
            multiclass_matthews_corrcoef,
        )
    except ImportError:
        return None
    return {
        # macro recall over the classes = balanced accuracy when every class occurs
        "balanced": lambda p, t: multiclass_accuracy(p, t, num_classes=5, average="macro"),
        "mcc": lambda p, t: multiclass_matthews_corrcoef(p, t, num_classes=5),
        "kappa": lambda p, t: multiclass_cohen_kappa(p, t, num_classes=5),
        "confusion": lambda p, t: multiclass_confusion_matrix(p, t, num_classes=5),
        "auroc": binary_auroc,
        "ap": binary_average_precision,
        "ece": lambda p, t: binary_calibration_error(p, t, n_bins=15),
        "rmse": lambda p, t: mean_squared_error(p, t, squared=False),
        "r2": r2_score,
        "mape": mean_absolute_percentage_error,
        "ev": explained_variance,
        "pearson": pearson_corrcoef,
        "exact": lambda p, t: multiclass_exact_match(p, t, num_classes=2),
    }


def rate(n: int, seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{n / seconds / 1e6:,.2f} M/s"


def measure(case: Case, repeat: int) -> tuple[float, float | None, float | None]:
    """Seconds for process_batch, the reference and torchmetrics, after checking values."""
    name = case.cls.__name__
    t_batch, result = best_of(repeat, lambda: by_batch(case))
    value = value_of(result)
    bound = 0.0  # how far a binned metric may be from the exact value
    if issubclass(case.cls, BinnedRankingMetric):
        bound = case.cls.error_bound([_filled(case)])
    t_ref = t_tm = None
    reference = None
    if case.reference is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t_ref, reference = best_of(repeat, lambda: case.reference(case.targets, case.outputs))
        reference = value_of(reference)
        agree(f"{name}.process_batch", value, reference, 1e-9 + bound)
    if case.torchmetrics is not None:
        import torch

        preds, target = torch.from_numpy(case.outputs), torch.from_numpy(case.targets)
        function = case.torchmetrics
        t_tm, tm_value = best_of(repeat, lambda: function(preds, target))
        agree(f"torchmetrics {name}", value_of(tm_value), value, 1e-6 + bound)
    return t_batch, t_ref, t_tm


def _filled(case: Case) -> BaseEvalMetric:
    metric = case.cls()
    metric.process_batch(case.outputs, case.targets)
    return metric


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="records (default 1000000)")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=0,
        help="torch.set_num_threads for torchmetrics (default: torch's own choice)",
    )
    args = parser.parse_args(argv)
    n = args.n

    import scipy
    import sklearn

    try:
        import torch
        import torchmetrics

        if args.torch_threads:
            torch.set_num_threads(args.torch_threads)
        tm_note = (
            f"torchmetrics {torchmetrics.__version__}, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads)"
        )
    except ImportError:
        tm_note = "torchmetrics: not installed"
    print(
        f"N = {n:,} records, best of {args.repeat}; numpy {np.__version__}, scikit-learn "
        f"{sklearn.__version__}, scipy {scipy.__version__}, {tm_note}"
    )
    header = (
        f"| {'metric':<27} | {'process_batch':>13} | {'sklearn/scipy':>13} | "
        f"{'torchmetrics':>12} | {'vs sklearn':>10} | {'vs torchm.':>10} |"
    )
    print(header)
    print("|" + "|".join("-" * len(cell) for cell in header.split("|")[1:-1]) + "|")
    slower = []
    for case in cases(data(n, args.seed)):
        t_batch, t_ref, t_tm = measure(case, args.repeat)
        ratios = []
        for baseline in (t_ref, t_tm):
            ratios.append("" if baseline is None else f"{baseline / t_batch:.1f}x")
            if baseline is not None and baseline < t_batch:
                slower.append(case.cls.__name__)
        print(
            f"| {case.cls.__name__:<27} | {rate(n, t_batch):>13} | {rate(n, t_ref):>13} | "
            f"{rate(n, t_tm):>12} | {ratios[0]:>10} | {ratios[1]:>10} |"
        )
    print()
    if slower:
        print(f"Target (process_batch not slower than either): missed by {sorted(set(slower))}")
    else:
        print("Target (process_batch not slower than either): met on every metric")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Throughput of the built-in metrics against scikit-learn and torchmetrics.

    python bench/metrics.py [--n 1000000] [--repeat 3]

On the same N random records (binary labels with 80 % correct predictions for
the classification metrics, float pairs for MeanSquaredError) it measures, in
one run, records per second of:

- process_record: a Python loop over Python ints/floats, one call per record
  (the loop itself included, as a user's loop would have it);
- process_batch: one call on the whole numpy arrays, plus aggregate();
- scikit-learn: accuracy_score, precision_score, f1_score, mean_squared_error
  on the same numpy arrays;
- torchmetrics: the functional binary_accuracy, binary_precision,
  binary_f1_score, mean_squared_error on torch tensors built beforehand
  ("n/a" if torch or torchmetrics is missing).

Each figure is the best of --repeat runs. Conversions (to lists, to tensors)
are done before timing.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from neuronperf_core.metrics.base import BaseEvalMetric
from neuronperf_core.metrics.classification import (
    Accuracy,
    F1Score,
    PositivePredictiveValue,
)
from neuronperf_core.metrics.regression import MeanSquaredError


def best_of(repeat: int, function: Callable[[], float]) -> tuple[float, float]:
    """Shortest wall time of ``repeat`` calls, and the last result."""
    best, result = math.inf, math.nan
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def by_record(cls: type[BaseEvalMetric], outputs: list[Any], targets: list[Any]) -> float:
    metric = cls()
    process = metric.process_record
    for output, target in zip(outputs, targets, strict=True):
        process(output, target)
    return float(cls.aggregate([metric]))


def by_batch(cls: type[BaseEvalMetric], outputs: np.ndarray, targets: np.ndarray) -> float:
    metric = cls()
    metric.process_batch(outputs, targets)
    return float(cls.aggregate([metric]))


def torchmetrics_functions() -> dict[str, Callable[[Any, Any], Any]] | None:
    try:
        import torch  # noqa: F401
        from torchmetrics.functional import mean_squared_error
        from torchmetrics.functional.classification import (
            binary_accuracy,
            binary_f1_score,
            binary_precision,
        )
    except ImportError:
        return None
    return {
        "Accuracy": binary_accuracy,
        "PositivePredictiveValue": binary_precision,
        "F1Score": binary_f1_score,
        "MeanSquaredError": mean_squared_error,
    }


def measure(
    cls: type[BaseEvalMetric],
    sk_function: Callable[..., Any],
    outputs: np.ndarray,
    targets: np.ndarray,
    tm: dict[str, Callable[[Any, Any], Any]] | None,
    repeat: int,
) -> tuple[float, float, float, float | None]:
    """Seconds for process_record, process_batch, scikit-learn and torchmetrics."""
    out_list, tgt_list = outputs.tolist(), targets.tolist()
    t_record, v_record = best_of(repeat, lambda: by_record(cls, out_list, tgt_list))
    t_batch, v_batch = best_of(repeat, lambda: by_batch(cls, outputs, targets))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_sk, v_sk = best_of(repeat, lambda: float(sk_function(targets, outputs)))
    # the numbers must agree before their timings mean anything
    for value in (v_record, v_batch):
        agree(cls.__name__, value, v_sk, 1e-9)
    if tm is None:
        return t_record, t_batch, t_sk, None
    import torch

    tm_function = tm[cls.__name__]
    preds, target = torch.from_numpy(outputs), torch.from_numpy(targets)
    t_tm, v_tm = best_of(repeat, lambda: float(tm_function(preds, target)))
    agree(f"torchmetrics {cls.__name__}", v_tm, v_sk, 1e-6)
    return t_record, t_batch, t_sk, t_tm


def agree(what: str, value: float, reference: float, rel_tol: float) -> None:
    """Stop the bench (even under python -O) when a path computes another number."""
    if not math.isclose(float(value), float(reference), rel_tol=rel_tol):
        sys.exit(f"{what} gave {value}, scikit-learn {reference}: fix that before timing it")


def rate(n: int, seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{n / seconds / 1e6:,.2f} M/s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="records (default 1000000)")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    n, repeat = args.n, args.repeat

    from sklearn import metrics as skm

    rng = np.random.default_rng(args.seed)
    y_true = rng.integers(0, 2, n)
    y_pred = np.where(rng.random(n) < 0.8, y_true, 1 - y_true)
    x_true = rng.random(n)
    x_pred = x_true + rng.normal(0.0, 0.1, n)
    cases: list[tuple[type[BaseEvalMetric], Callable[..., Any], np.ndarray, np.ndarray]] = [
        (Accuracy, skm.accuracy_score, y_pred, y_true),
        (PositivePredictiveValue, skm.precision_score, y_pred, y_true),
        (F1Score, skm.f1_score, y_pred, y_true),
        (MeanSquaredError, skm.mean_squared_error, x_pred, x_true),
    ]
    tm = torchmetrics_functions()
    if tm is not None:
        import torch
        import torchmetrics

        tm_note = f"torchmetrics {torchmetrics.__version__}, torch {torch.__version__}"
        tm_note += f" ({torch.get_num_threads()} threads)"
    else:
        tm_note = "torchmetrics: not installed"

    import sklearn

    print(
        f"N = {n:,} records, best of {repeat}; numpy {np.__version__}, "
        f"scikit-learn {sklearn.__version__}, {tm_note}"
    )
    header = (
        f"| {'metric':<23} | {'process_record':>14} | {'process_batch':>13} | "
        f"{'scikit-learn':>12} | {'torchmetrics':>12} | {'batch/sklearn':>13} |"
    )
    print(header)
    print("|" + "|".join("-" * (len(cell) + 0) for cell in header.split("|")[1:-1]) + "|")
    accuracy_ns = math.nan
    for cls, sk_function, outputs, targets in cases:
        times = measure(cls, sk_function, outputs, targets, tm, repeat)
        t_record, t_batch, t_sk, t_tm = times
        if cls is Accuracy:
            accuracy_ns = t_record / n * 1e9
        print(
            f"| {cls.__name__:<23} | {rate(n, t_record):>14} | {rate(n, t_batch):>13} | "
            f"{rate(n, t_sk):>12} | {rate(n, t_tm):>12} | {t_sk / t_batch:>12.1f}x |"
        )
    print()
    print(f"Accuracy.process_record: {accuracy_ns:.0f} ns per record (loop included)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Metrics of predicted probabilities: LogLoss and ExpectedCalibrationError.

Inputs:

- ``process_batch(outputs, targets)``: ``outputs`` is (N,) probabilities of
  the positive class with (N,) targets 0 or 1, or (N, C) per-class
  probabilities with (N,) targets 0 .. C-1.
- ``process_record(output, target)``: one record, a scalar probability or a
  (C,) vector, and its target.

Probabilities or logits: a metric takes probabilities unless it is created with
``from_logits=True``; nothing is guessed from the values. Probabilities must lie
in [0, 1] and each (N, C) row must sum to 1 (within 1e-3), so logits passed by
mistake raise an error instead of giving a wrong number. With
``from_logits=True`` a sigmoid (N,) or softmax (N, C) is applied. To evaluate
logits, register a variant::

    npf.register_metric_from_existing("LogLoss", "log_loss_logits", from_logits=True)

State is sums and counts, so instances that saw different shards merge exactly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from neuronperf_core.errors import MetricError
from neuronperf_core.metrics.base import BaseEvalMetric
from neuronperf_core.metrics.inputs import metric_instances, nothing_processed
from neuronperf_metrics_extra._inputs import (
    batch_of_one,
    probabilities,
    score_targets,
    scores,
)

__all__ = ["ExpectedCalibrationError", "LogLoss"]

FloatArray = NDArray[np.float64]

_EPS = float(np.finfo(np.float64).eps)  # probabilities are clipped to [_EPS, 1 - _EPS]


class LogLoss(BaseEvalMetric):
    """Mean negative log-likelihood of the target class (scikit-learn's ``log_loss``).

    Probabilities are clipped to [eps, 1 - eps] with eps = 2.2e-16 (float64's
    machine epsilon), as scikit-learn does for float64 input, so a confident
    wrong prediction costs at most 36.04. With ``from_logits=True`` the
    log-probabilities come straight from the logits (log-sigmoid, log-softmax),
    without clipping. Natural logarithm.
    """

    def __init__(self, *, from_logits: bool = False) -> None:
        super().__init__()
        self.from_logits = bool(from_logits)
        self.total = 0.0  # sum of the per-record losses
        self.count = 0  # records scored

    def process_record(self, output: Any = None, target: Any = None) -> None:
        where = "LogLoss.process_record"
        outputs = batch_of_one(output, where, "output")
        targets = batch_of_one(target, where, "target")
        self._add(outputs, targets, where)

    def process_batch(self, outputs: Any, targets: Any) -> None:
        self._add(outputs, targets, "LogLoss.process_batch")

    def _add(self, outputs: Any, targets: Any, where: str) -> None:
        if self.from_logits:
            x = scores(outputs, where, "outputs")
            y = score_targets(x, targets, where)
            losses = _losses_from_logits(x, y)
        else:
            p = probabilities(outputs, where, "outputs", from_logits=False)
            y = score_targets(p, targets, where)
            losses = _losses_from_probabilities(p, y)
        self.total += float(losses.sum())
        self.count += int(y.shape[0])

    @classmethod
    def aggregate(cls, metrics: Iterable[BaseEvalMetric]) -> float:
        """The mean loss over the records of all instances."""
        items = metric_instances(cls, metrics)
        count = sum(m.count for m in items)
        if count == 0:
            raise nothing_processed(cls.__name__)
        return math.fsum(m.total for m in items) / count


def _losses_from_probabilities(p: FloatArray, y: NDArray[np.int64]) -> FloatArray:
    if p.ndim == 1:  # the probability of the positive class
        p_target: FloatArray = np.where(y == 1, p, 1.0 - p)
    else:
        p_target = p[np.arange(y.shape[0]), y]
    losses: FloatArray = -np.log(np.clip(p_target, _EPS, 1.0 - _EPS))
    return losses


def _losses_from_logits(x: FloatArray, y: NDArray[np.int64]) -> FloatArray:
    if x.ndim == 1:  # -log(sigmoid(x)) for the positive class, -log(1 - sigmoid(x)) otherwise
        binary: FloatArray = np.logaddexp(0.0, np.where(y == 1, -x, x))
        return binary
    top = x.max(axis=1)
    log_sum_exp = top + np.log(np.exp(x - top[:, np.newaxis]).sum(axis=1))
    losses: FloatArray = log_sum_exp - x[np.arange(y.shape[0]), y]
    return losses


class ExpectedCalibrationError(BaseEvalMetric):
    """How far predicted confidence is from observed accuracy, over ``n_bins``
    equal-width confidence bins: sum_b (n_b / N) |accuracy_b - confidence_b|.

    (N, C) probabilities: the confidence is the top probability and the
    accuracy whether its class is the target (torchmetrics'
    ``multiclass_calibration_error``). (N,) probabilities: the confidence is
    the probability of the positive class and the accuracy the target itself
    (torchmetrics' ``binary_calibration_error``). Bin b holds confidences in
    [b / n_bins, (b + 1) / n_bins), the last bin also 1.0 (torchmetrics puts an
    exact 1.0 in a bin of its own). State: three arrays of ``n_bins`` numbers.
    """

    def __init__(self, *, n_bins: int = 15, from_logits: bool = False) -> None:
        super().__init__()
        if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 1:
            raise MetricError(
                f"ExpectedCalibrationError: n_bins must be an integer >= 1, got {n_bins!r}."
            )
        self.n_bins = n_bins
        self.from_logits = bool(from_logits)
        self.count = np.zeros(n_bins, dtype=np.int64)  # records per bin
        self.confidence = np.zeros(n_bins)  # sum of confidences per bin
        self.correct = np.zeros(n_bins)  # sum of accuracies per bin

    def process_record(self, output: Any = None, target: Any = None) -> None:
        where = "ExpectedCalibrationError.process_record"
        outputs = batch_of_one(output, where, "output")
        targets = batch_of_one(target, where, "target")
        self._add(outputs, targets, where)

    def process_batch(self, outputs: Any, targets: Any) -> None:
        self._add(outputs, targets, "ExpectedCalibrationError.process_batch")

    def _add(self, outputs: Any, targets: Any, where: str) -> None:
        p = probabilities(outputs, where, "outputs", from_logits=self.from_logits)
        y = score_targets(p, targets, where)
        if p.ndim == 1:
            confidence, correct = p, y.astype(np.float64)
        else:
            confidence = p.max(axis=1)
            correct = (p.argmax(axis=1) == y).astype(np.float64)
        bins = np.minimum((confidence * self.n_bins).astype(np.int64), self.n_bins - 1)
        self.count += np.bincount(bins, minlength=self.n_bins)
        self.confidence += np.bincount(bins, weights=confidence, minlength=self.n_bins)
        self.correct += np.bincount(bins, weights=correct, minlength=self.n_bins)

    @classmethod
    def aggregate(cls, metrics: Iterable[BaseEvalMetric]) -> float:
        """Merge the per-bin sums of all instances; the expected calibration error."""
        items = metric_instances(cls, metrics)
        if len({m.n_bins for m in items}) > 1:
            raise MetricError(
                f"{cls.__name__}.aggregate got instances with different n_bins "
                f"{sorted({m.n_bins for m in items})}; expected one. Create all instances "
                "with the same n_bins."
            )
        count = sum(int(m.count.sum()) for m in items)
        if count == 0:
            raise nothing_processed(cls.__name__)
        confidence = np.sum([m.confidence for m in items], axis=0)
        correct = np.sum([m.correct for m in items], axis=0)
        return float(np.abs(correct - confidence).sum() / count)

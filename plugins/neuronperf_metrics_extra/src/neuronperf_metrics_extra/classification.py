"""Metrics computed from the confusion matrix: BalancedAccuracy, MatthewsCorrelation,
CohenKappa and the ConfusionMatrix itself. Binary and multiclass alike.

Inputs, as for the core's Accuracy:

- ``process_record(output, target)``: ``output`` is a class label (an
  integer-valued scalar) or a 1-D vector of C per-class scores (its argmax is
  the prediction); ``target`` is a class label.
- ``process_batch(outputs, targets)``: ``outputs`` is (N,) labels or (N, C)
  scores, ``targets`` is (N,) labels.

Labels are any integers; the classes are every label seen in targets or
predictions, sorted (as scikit-learn does). State: a K x K count matrix for K
classes (``max_classes``, 1024 by default, bounds K), so instances that saw
different shards merge exactly in ``aggregate``.
"""

from __future__ import annotations

import math
import warnings
from abc import abstractmethod
from collections.abc import Iterable
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from neuronperf_core.errors import MetricError, UndefinedMetricWarning
from neuronperf_core.metrics.base import BaseEvalMetric
from neuronperf_core.metrics.inputs import (
    batch_labels,
    metric_instances,
    nothing_processed,
    output_label,
    target_label,
)
from neuronperf_metrics_extra._pair_counts import LabelPairCounts

__all__ = [
    "BalancedAccuracy",
    "CohenKappa",
    "ConfusionMatrix",
    "ConfusionMatrixBase",
    "MatthewsCorrelation",
]

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]


class ConfusionMatrixBase(BaseEvalMetric):
    """Counts (true, predicted) label pairs; subclasses turn the merged matrix into a value.

    Subclasses implement ``_value(labels, counts)``, where ``counts[i, j]`` is
    the number of records with true label ``labels[i]`` predicted as
    ``labels[j]``, and ``_options()`` if they take options.
    """

    def __init__(self, *, max_classes: int = 1024) -> None:
        super().__init__()
        name = type(self).__name__
        if isinstance(max_classes, bool) or not isinstance(max_classes, int) or max_classes < 2:
            raise MetricError(f"{name}: max_classes must be an integer >= 2, got {max_classes!r}.")
        self.pairs = LabelPairCounts(max_classes, name)

    def process_record(self, output: Any = None, target: Any = None) -> None:
        where = f"{type(self).__name__}.process_record"
        self.pairs.add_record(target_label(target, where), output_label(output, where))

    def process_batch(self, outputs: Any, targets: Any) -> None:
        predicted, true = batch_labels(outputs, targets, f"{type(self).__name__}.process_batch")
        self.pairs.add_batch(true, predicted)

    def _options(self) -> tuple[object, ...]:
        """The constructor options that change the value (compared before merging)."""
        return ()

    @abstractmethod
    def _value(self, labels: IntArray, counts: IntArray) -> Any:
        """The metric from the merged labels and count matrix."""

    @classmethod
    def aggregate(cls, metrics: Iterable[BaseEvalMetric]) -> Any:
        """Merge the count matrices of all instances and compute the metric."""
        items = metric_instances(cls, metrics)
        first = items[0]
        for item in items[1:]:
            if item._options() != first._options():
                raise MetricError(
                    f"{cls.__name__}.aggregate got instances with different options "
                    f"({first._options()} and {item._options()}); expected one metric "
                    "configuration. Create all instances with the same keyword arguments."
                )
        labels, counts = LabelPairCounts.merge([m.pairs for m in items])
        if counts.sum() == 0:
            raise nothing_processed(cls.__name__)
        return first._value(labels, counts)


class BalancedAccuracy(ConfusionMatrixBase):
    """The mean over classes of the recall TP / (TP + FN) (scikit-learn's
    ``balanced_accuracy_score``).

    Classes that occur only among the predictions have no recall and are left
    out, with a warning (as in scikit-learn). ``adjusted=True`` rescales so
    that chance scores 0 and perfect scores 1.
    """

    def __init__(self, *, adjusted: bool = False, max_classes: int = 1024) -> None:
        super().__init__(max_classes=max_classes)
        self.adjusted = bool(adjusted)

    def _options(self) -> tuple[object, ...]:
        return (self.adjusted,)

    def _value(self, labels: IntArray, counts: IntArray) -> float:
        true_count = counts.sum(axis=1)
        present = true_count > 0
        if not present.all():
            warnings.warn(
                f"BalancedAccuracy: the predictions contain labels "
                f"{labels[~present].tolist()[:10]} that never occur in the targets; their "
                "recall is undefined and they are left out of the mean (as scikit-learn does).",
                UndefinedMetricWarning,
                stacklevel=3,
            )
        recall = np.diagonal(counts)[present] / true_count[present]
        score = float(recall.mean())
        if self.adjusted:
            if recall.size == 1:
                warnings.warn(
                    "BalancedAccuracy(adjusted=True) is undefined when the targets hold a "
                    "single class (chance would be perfect); returning NaN.",
                    UndefinedMetricWarning,
                    stacklevel=3,
                )
                return math.nan
            chance = 1.0 / recall.size
            score = (score - chance) / (1.0 - chance)
        return score


class MatthewsCorrelation(ConfusionMatrixBase):
    """The Matthews correlation coefficient (scikit-learn's ``matthews_corrcoef``).

    Binary: (TP*TN - FP*FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)); multiclass:
    its generalisation (Gorodkin's R_K). 0 when it is undefined (a constant
    prediction or target), as in scikit-learn.
    """

    def _value(self, labels: IntArray, counts: IntArray) -> float:
        c = counts.astype(np.float64)
        t_sum = c.sum(axis=1)  # records per true label
        p_sum = c.sum(axis=0)  # records per predicted label
        n = c.sum()
        cov_tp = np.trace(c) * n - t_sum @ p_sum
        cov_pp = n * n - p_sum @ p_sum
        cov_tt = n * n - t_sum @ t_sum
        if cov_pp * cov_tt == 0:
            return 0.0
        return float(cov_tp / math.sqrt(cov_pp * cov_tt))


class CohenKappa(ConfusionMatrixBase):
    """Cohen's kappa between predictions and targets: (p_o - p_e) / (1 - p_e)
    (scikit-learn's ``cohen_kappa_score``).

    ``weights``: ``None`` (every disagreement costs 1), ``"linear"`` or
    ``"quadratic"`` (the cost grows with the distance between the sorted
    label indices). Undefined (NaN, with a warning) when predictions and
    targets share a single label.
    """

    def __init__(
        self,
        *,
        weights: Literal["linear", "quadratic"] | None = None,
        max_classes: int = 1024,
    ) -> None:
        super().__init__(max_classes=max_classes)
        if weights not in (None, "linear", "quadratic"):
            raise MetricError(
                f"CohenKappa: weights={weights!r} is not supported; expected None, 'linear' "
                "or 'quadratic'."
            )
        self.weights = weights

    def _options(self) -> tuple[object, ...]:
        return (self.weights,)

    def _value(self, labels: IntArray, counts: IntArray) -> float:
        c = counts.astype(np.float64)
        expected = np.outer(c.sum(axis=1), c.sum(axis=0)) / c.sum()
        index = np.arange(labels.size, dtype=np.float64)
        distance = np.abs(index[:, np.newaxis] - index[np.newaxis, :])
        if self.weights is None:
            cost = (distance > 0).astype(np.float64)
        elif self.weights == "linear":
            cost = distance
        else:
            cost = distance**2
        denominator = float((cost * expected).sum())
        if denominator == 0:
            warnings.warn(
                "CohenKappa is undefined when predictions and targets have a single label in "
                "common (no disagreement is possible by chance); returning NaN.",
                UndefinedMetricWarning,
                stacklevel=3,
            )
            return math.nan
        return 1.0 - float((cost * c).sum()) / denominator


class ConfusionMatrix(ConfusionMatrixBase):
    """The confusion matrix itself (scikit-learn's ``confusion_matrix``).

    ``aggregate`` returns a plain nested list (JSON-friendly, as reports are
    saved): ``matrix[i][j]`` counts the records whose true label is the i-th
    label and whose prediction is the j-th, the labels sorted; integers, or
    floats with ``normalize``.

    Args:
        labels: the labels of the rows and columns, in this order. By default
            every label seen in targets or predictions, sorted. A record with
            a label outside ``labels`` is an error (not silently dropped).
        normalize: ``None`` (counts), ``"true"`` (each row sums to 1),
            ``"pred"`` (each column sums to 1) or ``"all"`` (everything sums
            to 1); an empty row or column stays 0.
    """

    def __init__(
        self,
        *,
        labels: Iterable[int] | None = None,
        normalize: Literal["true", "pred", "all"] | None = None,
        max_classes: int = 1024,
    ) -> None:
        super().__init__(max_classes=max_classes)
        if normalize not in (None, "true", "pred", "all"):
            raise MetricError(
                f"ConfusionMatrix: normalize={normalize!r} is not supported; expected None, "
                "'true', 'pred' or 'all'."
            )
        self.labels = None if labels is None else [int(label) for label in labels]
        if self.labels is not None and len(set(self.labels)) != len(self.labels):
            raise MetricError(f"ConfusionMatrix: labels={self.labels} repeats a label.")
        self.normalize = normalize

    def _options(self) -> tuple[object, ...]:
        return (self.labels, self.normalize)

    def _value(self, labels: IntArray, counts: IntArray) -> list[list[int]] | list[list[float]]:
        if self.labels is not None:
            extra = sorted(set(labels.tolist()) - set(self.labels))
            if extra:
                raise MetricError(
                    f"ConfusionMatrix: the records contain labels {extra[:10]} that are not in "
                    f"labels={self.labels}; expected only those labels. Add them to labels, "
                    "or leave labels unset to use every label seen."
                )
            full = np.zeros((len(self.labels), len(self.labels)), dtype=np.int64)
            index = [self.labels.index(label) for label in labels.tolist()]
            full[np.ix_(index, index)] = counts
            counts = full
        if self.normalize is None:
            matrix: list[list[int]] = counts.tolist()
            return matrix
        c = counts.astype(np.float64)
        if self.normalize == "true":
            totals = c.sum(axis=1, keepdims=True)
        elif self.normalize == "pred":
            totals = c.sum(axis=0, keepdims=True)
        else:
            totals = np.full((1, 1), c.sum())
        shares: list[list[float]] = np.divide(
            c, totals, out=np.zeros_like(c), where=totals > 0
        ).tolist()
        return shares

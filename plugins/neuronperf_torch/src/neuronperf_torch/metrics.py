"""The ``topk`` metric: how often the target class is among the k highest-scoring classes.

Imported on the metric's first use (listing reads the description registered
in ``plugin.py``); it uses numpy only, never torch: tensors are read through
``neuronperf_core.metrics.inputs``. State is two sufficient statistics
(credited records, records seen), so instances that scored different shards
merge exactly in ``aggregate``.

Ties: with ``g`` classes scoring strictly higher than the target class and
``e`` classes (the target included) scoring the same, a record earns
``clamp((k - g) / e, 0, 1)``: the probability that a random tie-break puts the
target in the top k. Without ties this is exactly 1 or 0, as in torchmetrics
and scikit-learn; with ties the result does not depend on class order.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from neuronperf_core.errors import MetricError
from neuronperf_core.metrics.base import BaseEvalMetric
from neuronperf_core.metrics.inputs import (
    check_finite,
    metric_instances,
    nothing_processed,
    to_numpy,
)

__all__ = ["TopK"]


class TopK(BaseEvalMetric):
    """Top-k accuracy: the target class is among the k highest scores (k=1 by default)."""

    def __init__(self, k: int = 1) -> None:
        super().__init__()
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"TopK: k must be a whole number >= 1, got {k!r}; e.g. TopK(k=5).")
        self.k = int(k)
        self.correct = 0.0  # credited records (fractional only where scores tie)
        self.total = 0

    def process_record(self, output: Any = None, target: Any = None) -> None:
        """One record: ``output`` is a vector of C class scores, ``target`` a class index.

        An output of shape (N, C) is taken as a batch (as NeuronPerf 1.x's topk
        did), so a batch-1 model's (1, C) output scores against its target directly.
        """
        where = "TopK.process_record"
        scores = to_numpy(output, where, "output")
        if scores.ndim == 1:
            scores = scores[np.newaxis, :]
            labels = to_numpy(target, where, "target").reshape(-1)
            if labels.shape != (1,):
                raise MetricError(
                    f"{where}: target has {labels.size} values for one output vector; expected "
                    "one class index. Use process_batch(outputs, targets) for a batch."
                )
        elif scores.ndim == 2:
            labels = to_numpy(target, where, "target").reshape(-1)
        else:
            raise MetricError(
                f"{where}: output has shape {scores.shape}; expected a vector of per-class "
                "scores (C,) or a batch of them (N, C)."
            )
        self._score(scores, labels, where)

    def process_batch(self, outputs: Any, targets: Any) -> None:
        """A batch: ``outputs`` (N, C) logits or probabilities, ``targets`` (N,) class indices."""
        where = "TopK.process_batch"
        scores = to_numpy(outputs, where, "outputs")
        labels = to_numpy(targets, where, "targets")
        if scores.ndim != 2:
            raise MetricError(
                f"{where}: outputs has shape {scores.shape}; expected (N, C): one row of "
                "per-class scores (logits or probabilities) per record."
            )
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels.reshape(-1)
        if labels.ndim != 1:
            raise MetricError(
                f"{where}: targets has shape {labels.shape}; expected (N,) class indices "
                "(for one-hot targets pass targets.argmax(1))."
            )
        self._score(scores, labels, where)

    def _score(self, scores: NDArray[Any], labels: NDArray[Any], where: str) -> None:
        n, n_classes = scores.shape
        if labels.shape[0] != n:
            raise MetricError(
                f"{where}: got {n} output rows but {labels.shape[0]} targets; expected one "
                "target per output row (the batch dimensions must match)."
            )
        if n_classes < 2:
            raise MetricError(
                f"{where}: outputs have {n_classes} class score per record; topk needs at "
                "least 2 classes (threshold a single binary score and use 'accuracy')."
            )
        if self.k >= n_classes:
            raise MetricError(
                f"{where}: k={self.k} but the outputs have only {n_classes} classes, so every "
                f"record would count as correct; use k < {n_classes}."
            )
        check_finite(scores, where, "outputs", allow_inf=True)
        index = _class_indices(labels, n_classes, where)
        target_scores = scores[np.arange(n), index][:, np.newaxis]
        higher = np.count_nonzero(scores > target_scores, axis=1)
        tied = np.count_nonzero(scores == target_scores, axis=1)  # >= 1: the target itself
        credit = np.clip((self.k - higher) / tied, 0.0, 1.0)
        self.correct += float(credit.sum())
        self.total += n

    @staticmethod
    def aggregate(metrics: Iterable[BaseEvalMetric]) -> float:
        """The fraction of all records (every instance's) whose target was in the top k."""
        items = metric_instances(TopK, metrics)
        total = sum(m.total for m in items)
        if total == 0:
            raise nothing_processed("TopK")
        return sum(m.correct for m in items) / total


def _class_indices(labels: NDArray[Any], n_classes: int, where: str) -> NDArray[np.intp]:
    if labels.dtype.kind == "f":
        check_finite(labels, where, "targets")
        if (labels != np.floor(labels)).any():
            bad = labels[labels != np.floor(labels)][0]
            raise MetricError(
                f"{where}: targets contain {bad.item()!r}, which is not a class index; expected "
                "integer class indices (not probabilities or one-hot rows)."
            )
    elif labels.dtype.kind not in "biu":
        raise MetricError(f"{where}: targets have dtype {labels.dtype}; expected class indices.")
    out_of_range = (labels < 0) | (labels >= n_classes)
    if out_of_range.any():
        bad = labels[out_of_range][0]
        raise MetricError(
            f"{where}: target class {bad.item()!r} is outside 0..{n_classes - 1}, the classes "
            f"the outputs score; expected class indices below {n_classes}."
        )
    return labels.astype(np.intp, copy=False)

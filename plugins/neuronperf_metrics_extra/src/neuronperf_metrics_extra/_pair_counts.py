"""The state of the confusion-matrix metrics: counts of (true label, predicted label) pairs.

Memory is K x K counts for the K distinct labels seen, whatever the number of
records; ``max_classes`` bounds K so that labels that are not class ids (a
regression target, token ids) fail with a clear error instead of allocating
gigabytes.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from neuronperf_core.errors import MetricError

__all__ = ["LabelPairCounts"]

IntArray = NDArray[np.int64]

_PENDING_LIMIT = 4096  # record pairs kept in a dict before they are moved into the matrix


class LabelPairCounts:
    """``counts[i, j]``: records whose true label is ``labels[i]`` and predicted ``labels[j]``.

    ``labels`` is sorted, so the matrix is scikit-learn's ``confusion_matrix``
    (rows: true labels, columns: predicted labels).
    """

    def __init__(self, max_classes: int, owner: str) -> None:
        self.max_classes = max_classes
        self.owner = owner  # the metric's name, for error messages
        self.labels: IntArray = np.zeros(0, dtype=np.int64)
        self.counts: IntArray = np.zeros((0, 0), dtype=np.int64)
        self.pending: dict[tuple[int, int], int] = {}  # (true, predicted) -> count, per record

    def add_record(self, true: int, predicted: int) -> None:
        """Count one record (a dict update: much cheaper than numpy for one pair)."""
        key = (true, predicted)
        self.pending[key] = self.pending.get(key, 0) + 1
        if len(self.pending) >= _PENDING_LIMIT:
            self.flush()

    def add_batch(self, true: IntArray, predicted: IntArray) -> None:
        """Count a batch of (N,) true and (N,) predicted labels."""
        labels, counts = _batch_counts(true, predicted, self.max_classes, self.owner)
        self.add_matrix(labels, counts)

    def add_matrix(self, labels: IntArray, counts: IntArray) -> None:
        """Add a count matrix over sorted ``labels``, growing the state to their union."""
        if not np.array_equal(labels, self.labels):
            self._grow(np.union1d(self.labels, labels))
        index = np.searchsorted(self.labels, labels)
        self.counts[np.ix_(index, index)] += counts

    def flush(self) -> None:
        """Move the per-record pairs into the matrix."""
        if not self.pending:
            return
        pairs = np.array(list(self.pending), dtype=np.int64)
        weights = np.array(list(self.pending.values()), dtype=np.int64)
        self.pending.clear()
        labels, inverse = np.unique(pairs, return_inverse=True)
        _check_class_count(labels.size, self.max_classes, self.owner)
        codes = inverse.reshape(pairs.shape)
        k = labels.size
        counts = np.bincount(codes[:, 0] * k + codes[:, 1], weights=weights, minlength=k * k)
        self.add_matrix(labels, counts.astype(np.int64).reshape(k, k))

    def _grow(self, labels: IntArray) -> None:
        _check_class_count(labels.size, self.max_classes, self.owner)
        counts = np.zeros((labels.size, labels.size), dtype=np.int64)
        index = np.searchsorted(labels, self.labels)
        counts[np.ix_(index, index)] = self.counts
        self.labels, self.counts = labels, counts

    @staticmethod
    def merge(states: list[LabelPairCounts]) -> tuple[IntArray, IntArray]:
        """The labels and count matrix of all ``states`` together."""
        total = LabelPairCounts(max(s.max_classes for s in states), states[0].owner)
        for state in states:
            state.flush()
            total.add_matrix(state.labels, state.counts)
        return total.labels, total.counts


def _check_class_count(k: int, max_classes: int, owner: str) -> None:
    if k > max_classes:
        raise MetricError(
            f"{owner}: the records hold {k} distinct labels, more than max_classes="
            f"{max_classes}; expected class labels (the state is a K x K matrix). If these "
            "really are class labels, register a variant with a higher limit: "
            f"npf.register_metric_from_existing({owner!r}, <new name>, max_classes=<K>)."
        )


def _batch_counts(
    true: IntArray, predicted: IntArray, max_classes: int, owner: str
) -> tuple[IntArray, IntArray]:
    """The sorted labels present in a batch and its count matrix over them, vectorised."""
    n = true.shape[0]
    low = min(int(true.min()), int(predicted.min()))
    span = max(int(true.max()), int(predicted.max())) - low + 1
    if span * span <= max(4096, n):  # a compact label range: one bincount over label pairs
        codes = (true - low) * span + (predicted - low)
        counts = np.bincount(codes, minlength=span * span).reshape(span, span)
        present = np.flatnonzero(counts.sum(axis=0) + counts.sum(axis=1))
        _check_class_count(present.size, max_classes, owner)
        return present + low, counts[np.ix_(present, present)]
    labels, inverse = np.unique(np.concatenate([true, predicted]), return_inverse=True)
    _check_class_count(labels.size, max_classes, owner)
    k = labels.size
    codes = inverse[:n] * k + inverse[n:]
    return labels, np.bincount(codes, minlength=k * k).reshape(k, k)

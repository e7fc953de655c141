"""ROCAUC and AveragePrecision of binary scores, from a histogram of the scores.

The exact values need every score, so their memory would grow with the
records. These metrics keep, for each of ``n_bins`` equal-width bins of [0, 1]
(65,536 by default), the number of positive and of negative records whose
score falls in it: 2 x ``n_bins`` counts (1 MiB), whatever the number of
records, merged exactly in ``aggregate``. Bin b holds scores in
[b / n_bins, (b + 1) / n_bins), the last bin also 1.0.

The value is scikit-learn's on the scores rounded down to their bin, so it
equals scikit-learn's exact value whenever no bin holds two different scores
of records of different classes. Otherwise the error is bounded, and the bound
is computed from the same histogram (``error_bound``):

- ROCAUC: pairs of a positive and a negative in different bins are ordered
  exactly; a pair within one bin counts 1/2 instead of 0, 1/2 or 1, so
  ``|binned - exact| <= 1/2 * sum_b pos_b * neg_b / (P * N)``. That is at most
  ``1/2 * max_b pos_b / P``: for scores spread over [0, 1] with a density of at
  most d, about ``d / (2 * n_bins)`` (8e-6 for d = 1 at the default).
- AveragePrecision: the j-th positive of bin b has an exact precision between
  ``(TP_above + j) / (TP_above + j + FP_above + neg_b)`` (the bin's negatives
  all above it) and ``(TP_above + pos_b) / (TP_above + pos_b + FP_above)``
  (all below it, ties at the top). Summing these over the positives brackets
  the exact value; the bound is the larger distance from the binned value to
  the ends of that bracket (the lower sum is itself bounded below with
  ``sum_{i=a+1}^{a+k} 1/i <= log(1 + k / a)``).

Neither bound can tell ties (which binning keeps exact) from distinct scores in
one bin, so scores with few distinct values, or clipped to 0 and 1, get a
pessimistic bound.

``aggregate`` warns (``BinningWarning``) when the bound exceeds ``tolerance``
(1e-3 by default): scores crowded into a few bins, e.g. logits that saturate
the sigmoid. More bins, or scores on a wider scale, help.

Inputs: ``process_batch(outputs, targets)`` takes (N,) scores of the positive
class and (N,) targets, 1 for positive and 0 for negative (bools too);
``process_record`` one score and its target. Scores are probabilities in
[0, 1], or logits with ``from_logits=True`` (a sigmoid maps them to [0, 1]:
ranking is unchanged, only the binning depends on it).
"""

from __future__ import annotations

import math
import warnings
from abc import abstractmethod
from collections.abc import Iterable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from neuronperf_core.errors import MetricError, UndefinedMetricWarning
from neuronperf_core.metrics.base import BaseEvalMetric
from neuronperf_core.metrics.inputs import metric_instances, nothing_processed
from neuronperf_metrics_extra._inputs import batch_of_one, probabilities, score_targets

__all__ = ["ROCAUC", "AveragePrecision", "BinnedRankingMetric", "BinningWarning"]

FloatArray = NDArray[np.float64]

DEFAULT_BINS = 1 << 16


class BinningWarning(UserWarning):
    """A binned metric's error bound exceeds its tolerance."""


class BinnedRankingMetric(BaseEvalMetric):
    """Histograms binary scores by class; subclasses compute a value and its error bound.

    Args:
        n_bins: equal-width bins of [0, 1]; memory is 16 bytes per bin.
        from_logits: the scores are logits (a sigmoid is applied), not probabilities.
        tolerance: ``aggregate`` warns when the error bound exceeds it.
    """

    def __init__(
        self, *, n_bins: int = DEFAULT_BINS, from_logits: bool = False, tolerance: float = 1e-3
    ) -> None:
        super().__init__()
        name = type(self).__name__
        if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 1:
            raise MetricError(f"{name}: n_bins must be an integer >= 1, got {n_bins!r}.")
        if not (isinstance(tolerance, (int, float)) and tolerance >= 0):
            raise MetricError(f"{name}: tolerance must be a number >= 0, got {tolerance!r}.")
        self.n_bins = n_bins
        self.from_logits = bool(from_logits)
        self.tolerance = float(tolerance)
        self.negatives = np.zeros(n_bins, dtype=np.int64)  # negative records per bin
        self.positives = np.zeros(n_bins, dtype=np.int64)  # positive records per bin

    def process_record(self, output: Any = None, target: Any = None) -> None:
        where = f"{type(self).__name__}.process_record"
        outputs = batch_of_one(output, where, "output")
        targets = batch_of_one(target, where, "target")
        self._add(outputs, targets, where)

    def process_batch(self, outputs: Any, targets: Any) -> None:
        self._add(outputs, targets, f"{type(self).__name__}.process_batch")

    def _add(self, outputs: Any, targets: Any, where: str) -> None:
        p = probabilities(outputs, where, "outputs", from_logits=self.from_logits)
        if p.ndim != 1:
            raise MetricError(
                f"{where}: outputs has shape {p.shape}; expected (N,) scores of the positive "
                "class (binary). For (N, 2) per-class probabilities pass outputs[:, 1]."
            )
        y = score_targets(p, targets, where)
        bins = np.minimum((p * self.n_bins).astype(np.int64), self.n_bins - 1)
        counts = np.bincount(bins * 2 + y, minlength=2 * self.n_bins).reshape(self.n_bins, 2)
        self.negatives += counts[:, 0]
        self.positives += counts[:, 1]

    @classmethod
    def _merged(cls, metrics: Iterable[BaseEvalMetric]) -> tuple[FloatArray, FloatArray, float]:
        """Negatives and positives per bin, from the highest scores down, and the tolerance."""
        items = metric_instances(cls, metrics)
        if len({m.n_bins for m in items}) > 1:
            raise MetricError(
                f"{cls.__name__}.aggregate got instances with different n_bins "
                f"{sorted({m.n_bins for m in items})}; expected one. Create all instances "
                "with the same n_bins."
            )
        negatives = np.sum([m.negatives for m in items], axis=0)[::-1].astype(np.float64)
        positives = np.sum([m.positives for m in items], axis=0)[::-1].astype(np.float64)
        if negatives.sum() + positives.sum() == 0:
            raise nothing_processed(cls.__name__)
        return negatives, positives, items[0].tolerance

    @staticmethod
    @abstractmethod
    def _value_and_bound(negatives: FloatArray, positives: FloatArray) -> tuple[float, float]:
        """The metric and its error bound, from per-bin counts ordered by descending score."""

    @classmethod
    def error_bound(cls, metrics: Iterable[BaseEvalMetric]) -> float:
        """The largest possible difference between ``aggregate(metrics)`` and the exact value."""
        negatives, positives, _ = cls._merged(metrics)
        return cls._value_and_bound(negatives, positives)[1]

    @classmethod
    def aggregate(cls, metrics: Iterable[BaseEvalMetric]) -> float:
        """The metric over the records of all instances; warns if its error bound is large."""
        negatives, positives, tolerance = cls._merged(metrics)
        value, bound = cls._value_and_bound(negatives, positives)
        if bound > tolerance:
            warnings.warn(
                f"{cls.__name__}: the binned value {value:.6f} may differ from the exact one by "
                f"up to {bound:.2g} (tolerance {tolerance:g}): many scores share a bin. Use "
                "more bins (n_bins) or scores on a wider scale (logits with from_logits=True "
                "saturate less than their sigmoid if they are large).",
                BinningWarning,
                stacklevel=2,
            )
        return value


class ROCAUC(BinnedRankingMetric):
    """Area under the ROC curve of binary scores (scikit-learn's ``roc_auc_score``),
    binned: see the module documentation for the error bound. NaN, with a
    warning, when the targets hold a single class (as in scikit-learn)."""

    @staticmethod
    def _value_and_bound(negatives: FloatArray, positives: FloatArray) -> tuple[float, float]:
        n_pos, n_neg = positives.sum(), negatives.sum()
        if n_pos == 0 or n_neg == 0:
            warnings.warn(
                "ROCAUC is undefined when the targets hold a single class; returning NaN.",
                UndefinedMetricWarning,
                stacklevel=4,
            )
            return math.nan, 0.0
        negatives_below = n_neg - np.cumsum(negatives)
        ordered = float(positives @ negatives_below)  # positive above negative: counts 1
        tied = float(positives @ negatives)  # same bin: counts 1/2
        pairs = float(n_pos * n_neg)
        return (ordered + 0.5 * tied) / pairs, 0.5 * tied / pairs


class AveragePrecision(BinnedRankingMetric):
    """Average precision of binary scores, sum_n (R_n - R_n-1) P_n over thresholds
    (scikit-learn's ``average_precision_score``), binned: see the module
    documentation for the error bound. 0.0, with a warning, when there is no
    positive target (as in scikit-learn)."""

    @staticmethod
    def _value_and_bound(negatives: FloatArray, positives: FloatArray) -> tuple[float, float]:
        n_pos = positives.sum()
        if n_pos == 0:
            warnings.warn(
                "AveragePrecision is undefined without positive targets; returning 0.0 "
                "(as scikit-learn does).",
                UndefinedMetricWarning,
                stacklevel=4,
            )
            return 0.0, 0.0
        has = positives > 0
        pos, neg = positives[has], negatives[has]
        tp = np.cumsum(positives)[has]  # true positives at and above each bin
        fp = np.cumsum(negatives)[has]  # false positives at and above each bin
        total = float(pos @ (tp / (tp + fp)))  # n_pos * the binned average precision
        # The j-th positive of a bin (j = 1 .. pos) has an exact precision of at most
        # tp / (tp + fp - neg) (the bin's negatives all below it) and at least
        # (tp - pos + j) / (tp - pos + j + fp) (all above it). Summed over j, the latter is
        # pos - fp * sum_{i = a+1}^{a+pos} 1/i with a = tp - pos + fp, which is at least
        # pos - fp * log(1 + pos / a).
        highest = float(pos @ (tp / (tp + fp - neg)))
        lowest = float((pos - fp * np.log1p(pos / np.maximum(tp - pos + fp, 1))).sum())
        return total / n_pos, max(highest - total, total - lowest) / n_pos

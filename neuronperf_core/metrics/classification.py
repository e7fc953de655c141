"""Built-in classification metrics: accuracy and the confusion-matrix rates.

A record's ``output`` is a class label (an int-valued scalar) or a 1-D vector
of per-class scores whose argmax is the prediction; its ``target`` is a class
label. ``process_batch`` takes (N,) labels or (N, C) scores and (N,) targets.

State is sufficient statistics (counts), so instances that saw different
shards merge exactly in ``aggregate``. Averages follow scikit-learn:
``"binary"`` (two labels at most, as scikit-learn) scores ``pos_label``
against the other label, ``"micro"``
applies the formula to the counts summed over classes, ``"macro"`` is the
unweighted mean of per-class (one-vs-rest) values and ``"weighted"`` weights
them by support; the classes are every label seen in targets or predictions.
"""

from __future__ import annotations

import math
import warnings
from abc import abstractmethod
from collections.abc import Iterable
from typing import Any, ClassVar, Literal

import numpy as np
from numpy.typing import NDArray

from neuronperf_core.errors import MetricError, UndefinedMetricWarning
from neuronperf_core.metrics.base import BaseEvalMetric
from neuronperf_core.metrics.inputs import (
    batch_labels,
    metric_instances,
    nothing_processed,
    output_label,
    scalar_label,
    target_label,
)

__all__ = [
    "Accuracy",
    "ConfusionMatrixMetric",
    "F1Score",
    "FalseDiscoveryRate",
    "FalseNegativeRate",
    "FalseOmissionRate",
    "FalsePositiveRate",
    "NegativeLikelihoodRatio",
    "NegativePredictiveValue",
    "PositiveLikelihoodRatio",
    "PositivePredictiveValue",
    "PrevalenceThreshold",
    "ThreatScore",
    "TrueNegativeRate",
    "TruePositiveRate",
    "UndefinedMetricWarning",
]

Average = Literal["binary", "micro", "macro", "weighted"]
ZeroDivision = Literal["warn"] | float
FloatArray = NDArray[np.float64]

AVERAGES: tuple[str, ...] = ("binary", "micro", "macro", "weighted")
_BINCOUNT_MIN_SPAN = 1 << 12  # label spans up to max(this, 4 N) use bincount, wider np.unique
_MAX_PAIRS = 1 << 12  # distinct (predicted, true) pairs kept before folding into label counts


class Accuracy(BaseEvalMetric):
    """Fraction of records whose predicted label equals the target (scikit-learn's
    ``accuracy_score``). State: two counters, ``correct`` and ``total``."""

    def __init__(self) -> None:
        super().__init__()
        self.correct = 0
        self.total = 0

    def process_record(self, output: Any = None, target: Any = None) -> None:
        if type(output) is int and type(target) is int:  # fast path: plain Python labels
            self.total += 1
            if output == target:
                self.correct += 1
            return
        where = "Accuracy.process_record"
        predicted = output_label(output, where)
        actual = target_label(target, where)
        self.total += 1
        if predicted == actual:
            self.correct += 1

    def process_batch(self, outputs: Any, targets: Any) -> None:
        pred, true = batch_labels(outputs, targets, "Accuracy.process_batch")
        self.correct += int(np.count_nonzero(pred == true))
        self.total += int(true.shape[0])

    @classmethod
    def aggregate(cls, metrics: Iterable[BaseEvalMetric]) -> float:
        """Merge the counters of all instances; the fraction of correct records."""
        items = metric_instances(cls, metrics)
        correct = sum(m.correct for m in items)
        total = sum(m.total for m in items)
        if total == 0:
            raise nothing_processed(cls.__name__)
        return correct / total


def _div(num: FloatArray, den: FloatArray) -> tuple[FloatArray, NDArray[np.bool_]]:
    """``num / den`` where ``den > 0`` (0 elsewhere) and the mask of where it is defined."""
    defined = den > 0
    return np.divide(num, den, out=np.zeros_like(num), where=defined), defined


def _nanaverage(values: FloatArray, weights: FloatArray | None) -> float:
    """Weighted mean ignoring NaN (scikit-learn's ``_nanaverage``)."""
    keep = ~np.isnan(values)
    if not keep.any():
        return math.nan
    if weights is None or not weights[keep].any():
        return float(values[keep].mean())
    return float(np.average(values[keep], weights=weights[keep]))


def _class_counts(
    pred: NDArray[np.int64], true: NDArray[np.int64]
) -> tuple[list[int], list[int], list[int], list[int]]:
    """Per present label: label, true positives, predicted count, true count (vectorised)."""
    n = pred.shape[0]
    lo = min(int(pred.min()), int(true.min()))
    span = max(int(pred.max()), int(true.max())) - lo + 1
    limit = max(_BINCOUNT_MIN_SPAN, 4 * n)
    if span <= limit:
        if lo != 0:
            pred = pred - lo
            true = true - lo
        if span * span <= limit:  # few classes: the whole confusion matrix in one bincount
            codes = pred * span
            codes += true
            matrix = np.bincount(codes, minlength=span * span).reshape(span, span)
            tp = np.diagonal(matrix)
            pred_count = matrix.sum(axis=1)  # rows: predicted label
            true_count = matrix.sum(axis=0)  # columns: true label
        else:
            pred_count = np.bincount(pred, minlength=span)
            true_count = np.bincount(true, minlength=span)
            tp = np.bincount(true[pred == true], minlength=span)
        present = np.flatnonzero(pred_count + true_count)
        labels = (present + lo).tolist()
    else:  # a sparse, wide label range
        uniq, inverse = np.unique(np.concatenate([pred, true]), return_inverse=True)
        pi, ti = inverse[:n], inverse[n:]
        k = uniq.shape[0]
        pred_count = np.bincount(pi, minlength=k)
        true_count = np.bincount(ti, minlength=k)
        tp = np.bincount(ti[pi == ti], minlength=k)
        present = np.arange(k)
        labels = uniq.tolist()
    return labels, tp[present].tolist(), pred_count[present].tolist(), true_count[present].tolist()


def _check_zero_division(name: str, zero_division: object) -> tuple[float, bool]:
    """The value used for an undefined metric, and whether to warn."""
    if isinstance(zero_division, str):
        if zero_division == "warn":
            return 0.0, True
    elif isinstance(zero_division, (int, float, np.integer, np.floating)) and not isinstance(
        zero_division, (bool, np.bool_)
    ):
        value = float(zero_division)
        if value in (0.0, 1.0) or math.isnan(value):
            return value, False
    raise MetricError(
        f"{name}: zero_division={zero_division!r} is not supported; expected 'warn', 0, 1 or "
        "float('nan') (the value returned when a denominator is 0; 'warn' returns 0 and warns)."
    )


class ConfusionMatrixMetric(BaseEvalMetric):
    """Base of the metrics computed from true/false positive/negative counts.

    Subclasses set ``undefined_when`` (for the warning) and ``_values``, the
    formula on count arrays (the formula as text, for ``list_metrics``, is in
    ``neuronperf_core.metrics.builtin``); everything else
    (input handling, state, averaging, zero division) is shared.

    Args:
        average: ``"binary"`` (``pos_label`` against every other label),
            ``"micro"``, ``"macro"`` or ``"weighted"``, as in scikit-learn.
        pos_label: the positive class for ``average="binary"``; ignored (with a
            warning if not 1) for the other averages.
        zero_division: the value when a denominator is 0: ``"warn"`` (0 and an
            ``UndefinedMetricWarning``), 0, 1 or ``float("nan")``.
    """

    undefined_when: ClassVar[str]

    def __init__(
        self,
        *,
        average: Average = "binary",
        pos_label: int = 1,
        zero_division: ZeroDivision = "warn",
    ) -> None:
        super().__init__()
        name = type(self).__name__
        if average not in AVERAGES:
            raise MetricError(
                f"{name}: average={average!r} is not supported; expected one of "
                f"{', '.join(repr(a) for a in AVERAGES)}."
            )
        try:
            label = scalar_label(pos_label, name, "pos_label")
        except MetricError as exc:
            raise MetricError(f"{exc} pos_label must be an integer class label.") from None
        self._zero_value, self._warn = _check_zero_division(name, zero_division)
        if average != "binary" and label != 1:
            warnings.warn(
                f"{name}: pos_label={label} is ignored when average={average!r}; it only "
                "applies to average='binary'.",
                UserWarning,
                stacklevel=2,
            )
        self.average: Average = average
        self.pos_label: int = label
        self.zero_division: ZeroDivision = zero_division
        # (predicted, true) -> count, fed by the per-record fast path
        self._pairs: dict[tuple[int, int], int] = {}
        # per-label counts, fed by the slow paths and process_batch
        self._tp: dict[int, int] = {}
        self._pred: dict[int, int] = {}
        self._true: dict[int, int] = {}
        self._n = 0

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(average={self.average!r}, pos_label={self.pos_label!r}, "
            f"zero_division={self.zero_division!r})"
        )

    def _options(self) -> tuple[str, int, str]:
        zero = "warn" if self._warn else repr(self._zero_value)  # nan != nan: compare text
        return self.average, self.pos_label, zero

    def process_record(self, output: Any = None, target: Any = None) -> None:
        if type(output) is int and type(target) is int:  # fast path: plain Python labels
            key = (output, target)
        else:
            where = f"{type(self).__name__}.process_record"
            key = (output_label(output, where), target_label(target, where))
        pairs = self._pairs
        count = pairs.get(key)
        if count is None:
            if len(pairs) >= _MAX_PAIRS:  # many classes: bound the memory
                self._fold_pairs()
            pairs[key] = 1
        else:
            pairs[key] = count + 1

    def _fold_pairs(self) -> None:
        """Move the (predicted, true) pair counts into the per-label counts."""
        tp_d, pred_d, true_d = self._tp, self._pred, self._true
        for (predicted, actual), count in self._pairs.items():
            self._n += count
            pred_d[predicted] = pred_d.get(predicted, 0) + count
            true_d[actual] = true_d.get(actual, 0) + count
            if predicted == actual:
                tp_d[predicted] = tp_d.get(predicted, 0) + count
        self._pairs.clear()

    def process_batch(self, outputs: Any, targets: Any) -> None:
        pred, true = batch_labels(outputs, targets, f"{type(self).__name__}.process_batch")
        tp_d, pred_d, true_d = self._tp, self._pred, self._true
        for label, tp, n_pred, n_true in zip(*_class_counts(pred, true), strict=True):
            if tp:
                tp_d[label] = tp_d.get(label, 0) + tp
            if n_pred:
                pred_d[label] = pred_d.get(label, 0) + n_pred
            if n_true:
                true_d[label] = true_d.get(label, 0) + n_true
        self._n += int(true.shape[0])

    @staticmethod
    @abstractmethod
    def _values(
        tp: FloatArray, fp: FloatArray, fn: FloatArray, tn: FloatArray
    ) -> tuple[FloatArray, NDArray[np.bool_]]:
        """The metric per element of the count arrays, and where it is defined."""

    @classmethod
    def aggregate(cls, metrics: Iterable[BaseEvalMetric]) -> float:
        """Merge the counts of all instances and compute the metric (a Python float)."""
        items = metric_instances(cls, metrics)
        first = items[0]
        for item in items[1:]:
            if item._options() != first._options():
                raise MetricError(
                    f"{cls.__name__}.aggregate got instances with different options: {first!r} "
                    f"and {item!r}; expected the same average, pos_label and zero_division in "
                    "every instance. Create all instances with the same keyword arguments."
                )
        tp_d: dict[int, int] = {}
        pred_d: dict[int, int] = {}
        true_d: dict[int, int] = {}
        n = 0
        for item in items:
            item._fold_pairs()  # the same state in another form
            n += item._n
            for src, dst in ((item._tp, tp_d), (item._pred, pred_d), (item._true, true_d)):
                for label, count in src.items():
                    dst[label] = dst.get(label, 0) + count
        if n == 0:
            raise nothing_processed(cls.__name__)
        return first._compute(tp_d, pred_d, true_d, n)

    def _compute(
        self, tp_d: dict[int, int], pred_d: dict[int, int], true_d: dict[int, int], n: int
    ) -> float:
        name = type(self).__name__
        labels = sorted(pred_d.keys() | true_d.keys())
        if self.average == "binary":
            pos = self.pos_label
            if len(labels) > 2:  # as scikit-learn: one class's score is not the multiclass score
                shown = labels if len(labels) <= 10 else [*labels[:10], "..."]
                raise MetricError(
                    f"{name}: the data is multiclass (labels {shown}) but average='binary' "
                    f"scores only pos_label={pos}: average over the classes instead, with "
                    "average='macro' (or 'micro' / 'weighted').",
                    settings={"average": "macro"},
                )
            if pos not in pred_d and pos not in true_d and len(labels) >= 2:
                shown = labels if len(labels) <= 10 else [*labels[:10], "..."]
                raise MetricError(
                    f"{name}: pos_label={pos} never occurs in the targets or predictions, whose "
                    f"labels are {shown}; expected the positive class among them. Pass "
                    f"pos_label=<the positive class>, or average='macro' / 'micro' / "
                    f"'weighted' for multiclass data."
                )
            labels = [pos]
        tp = np.array([tp_d.get(label, 0) for label in labels], dtype=np.float64)
        fp = np.array([pred_d.get(label, 0) for label in labels], dtype=np.float64) - tp
        fn = np.array([true_d.get(label, 0) for label in labels], dtype=np.float64) - tp
        tn = n - tp - fp - fn
        if self.average == "micro":
            tp, fp, fn, tn = (np.array([x.sum()]) for x in (tp, fp, fn, tn))
        values, defined = self._values(tp, fp, fn, tn)
        if not defined.all():
            values[~defined] = self._zero_value
            if self._warn:
                if self.average == "binary":
                    scope = f"pos_label={self.pos_label}"
                elif self.average == "micro":
                    scope = "the micro-averaged counts"
                else:
                    bad = [
                        label for label, ok in zip(labels, defined.tolist(), strict=True) if not ok
                    ]
                    scope = f"label(s) {bad if len(bad) <= 10 else [*bad[:10], '...']}"
                warnings.warn(
                    f"{name} is ill-defined for {scope} ({self.undefined_when}) and is set to "
                    "0.0 there. Pass zero_division=0, 1 or float('nan') to choose the value "
                    "and silence this warning.",
                    UndefinedMetricWarning,
                    stacklevel=3,
                )
        if self.average in ("binary", "micro"):
            return float(values[0])
        weights = tp + fn if self.average == "weighted" else None
        return _nanaverage(values, weights)


class TruePositiveRate(ConfusionMatrixMetric):
    """TP / (TP + FN), also called sensitivity, recall or hit rate."""

    undefined_when = "no actual positives: TP + FN = 0"

    @staticmethod
    def _values(
        tp: FloatArray, fp: FloatArray, fn: FloatArray, tn: FloatArray
    ) -> tuple[FloatArray, NDArray[np.bool_]]:
        return _div(tp, tp + fn)


class TrueNegativeRate(ConfusionMatrixMetric):
    """TN / (TN + FP), also called specificity or selectivity."""

    undefined_when = "no actual negatives: TN + FP = 0"

    @staticmethod
    def _values(
        tp: FloatArray, fp: FloatArray, fn: FloatArray, tn: FloatArray
    ) -> tuple[FloatArray, NDArray[np.bool_]]:
        return _div(tn, tn + fp)


class PositivePredictiveValue(ConfusionMatrixMetric):
    """TP / (TP + FP), also called precision."""

    undefined_when = "no predicted positives: TP + FP = 0"

    @staticmethod
    def _values(
        tp: FloatArray, fp: FloatArray, fn: FloatArray, tn: FloatArray
    ) -> tuple[FloatArray, NDArray[np.bool_]]:
        return _div(tp, tp + fp)


class NegativePredictiveValue(ConfusionMatrixMetric):
    """TN / (TN + FN)."""

    undefined_when = "no predicted negatives: TN + FN = 0"

    @staticmethod
    def _values(
        tp: FloatArray, fp: FloatArray, fn: FloatArray, tn: FloatArray
    ) -> tuple[FloatArray, NDArray[np.bool_]]:
        return _div(tn, tn + fn)


class FalseNegativeRate(ConfusionMatrixMetric):
    """FN / (FN + TP), the miss rate."""

    undefined_when = "no actual positives: FN + TP = 0"

    @staticmethod
    def _values(
        tp: FloatArray, fp: FloatArray, fn: FloatArray, tn: FloatArray
    ) -> tuple[FloatArray, NDArray[np.bool_]]:
        return _div(fn, fn + tp)


class FalsePositiveRate(ConfusionMatrixMetric):
    """FP / (FP + TN), the fall-out."""

    undefined_when = "no actual negatives: FP + TN = 0"

    @staticmethod
    def _values(
        tp: FloatArray, fp: FloatArray, fn: FloatArray, tn: FloatArray
    ) -> tuple[FloatArray, NDArray[np.bool_]]:
        return _div(fp, fp + tn)


class FalseDiscoveryRate(ConfusionMatrixMetric):
    """FP / (FP + TP) (the 1.x guide printed the FPR formula by mistake)."""

    undefined_when = "no predicted positives: FP + TP = 0"

    @staticmethod
    def _values(
        tp: FloatArray, fp: FloatArray, fn: FloatArray, tn: FloatArray
    ) -> tuple[FloatArray, NDArray[np.bool_]]:
        return _div(fp, fp + tp)


class FalseOmissionRate(ConfusionMatrixMetric):
    """FN / (FN + TN) (the 1.x guide printed the FDR formula by mistake)."""

    undefined_when = "no predicted negatives: FN + TN = 0"

    @staticmethod
    def _values(
        tp: FloatArray, fp: FloatArray, fn: FloatArray, tn: FloatArray
    ) -> tuple[FloatArray, NDArray[np.bool_]]:
        return _div(fn, fn + tn)


class PositiveLikelihoodRatio(ConfusionMatrixMetric):
    """TPR / FPR; undefined when TPR or FPR is undefined or FPR is 0."""

    undefined_when = "TP + FN = 0, FP + TN = 0 or FPR = 0"

    @staticmethod
    def _values(
        tp: FloatArray, fp: FloatArray, fn: FloatArray, tn: FloatArray
    ) -> tuple[FloatArray, NDArray[np.bool_]]:
        tpr, tpr_ok = _div(tp, tp + fn)
        fpr, fpr_ok = _div(fp, fp + tn)
        ratio, ratio_ok = _div(tpr, fpr)
        return ratio, tpr_ok & fpr_ok & ratio_ok


class NegativeLikelihoodRatio(ConfusionMatrixMetric):
    """FNR / TNR; undefined when FNR or TNR is undefined or TNR is 0."""

    undefined_when = "TP + FN = 0, FP + TN = 0 or TNR = 0"

    @staticmethod
    def _values(
        tp: FloatArray, fp: FloatArray, fn: FloatArray, tn: FloatArray
    ) -> tuple[FloatArray, NDArray[np.bool_]]:
        fnr, fnr_ok = _div(fn, fn + tp)
        tnr, tnr_ok = _div(tn, tn + fp)
        ratio, ratio_ok = _div(fnr, tnr)
        return ratio, fnr_ok & tnr_ok & ratio_ok


class PrevalenceThreshold(ConfusionMatrixMetric):
    """sqrt(FPR) / (sqrt(FPR) + sqrt(TPR)); undefined when TPR, FPR or the sum is."""

    undefined_when = "TP + FN = 0, FP + TN = 0 or TPR = FPR = 0"

    @staticmethod
    def _values(
        tp: FloatArray, fp: FloatArray, fn: FloatArray, tn: FloatArray
    ) -> tuple[FloatArray, NDArray[np.bool_]]:
        tpr, tpr_ok = _div(tp, tp + fn)
        fpr, fpr_ok = _div(fp, fp + tn)
        root_fpr = np.sqrt(fpr)
        value, value_ok = _div(root_fpr, root_fpr + np.sqrt(tpr))
        return value, tpr_ok & fpr_ok & value_ok


class ThreatScore(ConfusionMatrixMetric):
    """TP / (TP + FN + FP), the critical success index (Jaccard index)."""

    undefined_when = "TP + FN + FP = 0"

    @staticmethod
    def _values(
        tp: FloatArray, fp: FloatArray, fn: FloatArray, tn: FloatArray
    ) -> tuple[FloatArray, NDArray[np.bool_]]:
        return _div(tp, tp + fn + fp)


class F1Score(ConfusionMatrixMetric):
    """2TP / (2TP + FN + FP), the harmonic mean of precision and recall."""

    undefined_when = "no actual or predicted positives: 2TP + FN + FP = 0"

    @staticmethod
    def _values(
        tp: FloatArray, fp: FloatArray, fn: FloatArray, tn: FloatArray
    ) -> tuple[FloatArray, NDArray[np.bool_]]:
        return _div(2 * tp, 2 * tp + fn + fp)

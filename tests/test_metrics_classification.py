"""Accuracy and the confusion-matrix metrics, against scikit-learn and by hand."""

from __future__ import annotations

import importlib
import math
import subprocess
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from neuronperf_core.errors import MetricError
from neuronperf_core.metrics import builtin
from neuronperf_core.metrics.base import BaseEvalMetric
from neuronperf_core.metrics.classification import (
    Accuracy,
    ConfusionMatrixMetric,
    F1Score,
    FalseDiscoveryRate,
    FalseNegativeRate,
    FalseOmissionRate,
    FalsePositiveRate,
    NegativeLikelihoodRatio,
    NegativePredictiveValue,
    PositiveLikelihoodRatio,
    PositivePredictiveValue,
    PrevalenceThreshold,
    ThreatScore,
    TrueNegativeRate,
    TruePositiveRate,
    UndefinedMetricWarning,
)
from neuronperf_core.metrics.registry import get_metric
from neuronperf_core.metrics.regression import MeanAbsoluteError, MeanSquaredError

AVERAGES = ("binary", "micro", "macro", "weighted")
ZERO_DIVISIONS: tuple[Any, ...] = ("warn", 0, 1, math.nan)
PROPERTY = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---------------------------------------------------------------------------
# Reference: scalar Python formulas on the counts scikit-learn computes.


def _d(num: float | None, den: float | None) -> float | None:
    """num / den, None when undefined (an operand undefined or den == 0)."""
    if num is None or den is None or den == 0:
        return None
    return num / den


def _pt(tp: float, fp: float, fn: float, tn: float) -> float | None:
    tpr, fpr = _d(tp, tp + fn), _d(fp, fp + tn)
    if tpr is None or fpr is None:
        return None
    return _d(math.sqrt(fpr), math.sqrt(fpr) + math.sqrt(tpr))


Formula = Callable[[float, float, float, float], "float | None"]
REFERENCE: dict[type[ConfusionMatrixMetric], Formula] = {
    TruePositiveRate: lambda tp, fp, fn, tn: _d(tp, tp + fn),
    TrueNegativeRate: lambda tp, fp, fn, tn: _d(tn, tn + fp),
    PositivePredictiveValue: lambda tp, fp, fn, tn: _d(tp, tp + fp),
    NegativePredictiveValue: lambda tp, fp, fn, tn: _d(tn, tn + fn),
    FalseNegativeRate: lambda tp, fp, fn, tn: _d(fn, fn + tp),
    FalsePositiveRate: lambda tp, fp, fn, tn: _d(fp, fp + tn),
    FalseDiscoveryRate: lambda tp, fp, fn, tn: _d(fp, fp + tp),
    FalseOmissionRate: lambda tp, fp, fn, tn: _d(fn, fn + tn),
    PositiveLikelihoodRatio: lambda tp, fp, fn, tn: _d(_d(tp, tp + fn), _d(fp, fp + tn)),
    NegativeLikelihoodRatio: lambda tp, fp, fn, tn: _d(_d(fn, fn + tp), _d(tn, tn + fp)),
    PrevalenceThreshold: _pt,
    ThreatScore: lambda tp, fp, fn, tn: _d(tp, tp + fn + fp),
    F1Score: lambda tp, fp, fn, tn: _d(2 * tp, 2 * tp + fn + fp),
}
CM_METRICS = list(REFERENCE)

# the four metrics scikit-learn computes directly
SKLEARN_DIRECT: dict[type[ConfusionMatrixMetric], Callable[..., float]] = {
    PositivePredictiveValue: skm.precision_score,
    TruePositiveRate: skm.recall_score,
    F1Score: skm.f1_score,
    ThreatScore: skm.jaccard_score,
}


def reference_value(
    cls: type[ConfusionMatrixMetric],
    y_true: Sequence[int],
    y_pred: Sequence[int],
    average: str,
    pos_label: int,
    zero_division: Any,
) -> float:
    """The metric from scikit-learn's confusion matrices and the scalar formulas above."""
    formula = REFERENCE[cls]
    zero = 0.0 if zero_division == "warn" else float(zero_division)
    if average == "binary":
        tn, fp, fn, tp = skm.confusion_matrix(
            np.equal(y_true, pos_label), np.equal(y_pred, pos_label), labels=[False, True]
        ).ravel()
        counts = [(tp, fp, fn, tn)]
    else:
        labels = np.union1d(y_true, y_pred)
        mcm = skm.multilabel_confusion_matrix(y_true, y_pred, labels=labels)
        counts = [(c[1, 1], c[0, 1], c[1, 0], c[0, 0]) for c in mcm]
        if average == "micro":
            counts = [tuple(sum(c[i] for c in counts) for i in range(4))]
    values = []
    for tp, fp, fn, tn in counts:
        value = formula(float(tp), float(fp), float(fn), float(tn))
        values.append(zero if value is None else value)
    if average in ("binary", "micro"):
        return values[0]
    weights = [float(tp + fn) for tp, fp, fn, tn in counts]
    kept = [(v, w) for v, w in zip(values, weights, strict=True) if not math.isnan(v)]
    if not kept:
        return math.nan
    if average == "weighted" and sum(w for _, w in kept) > 0:
        return sum(v * w for v, w in kept) / sum(w for _, w in kept)
    return sum(v for v, _ in kept) / len(kept)


def same(actual: float, expected: float) -> bool:
    if math.isnan(expected):
        return math.isnan(actual)
    return math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-12)


def run_records(metric: Any, y_true: Sequence[Any], y_pred: Sequence[Any]) -> None:
    for output, target in zip(y_pred, y_true, strict=True):
        metric.process_record(output, target)


def value_of(metric: Any) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        result: float = type(metric).aggregate([metric])
    return result


# ---------------------------------------------------------------------------
# Strategies


@st.composite
def labelled_data(draw: st.DrawFn, binary: bool) -> tuple[list[int], list[int], int]:
    """(y_true, y_pred, a pos_label among the possible labels)."""
    n_classes = 2 if binary else draw(st.integers(2, 5))
    offset = 0 if binary else draw(st.sampled_from([0, 0, -2, 5]))
    label = st.integers(offset, offset + n_classes - 1)
    n = draw(st.integers(1, 30))
    y_true = draw(st.lists(label, min_size=n, max_size=n))
    y_pred = draw(st.lists(label, min_size=n, max_size=n))
    pos_label = 1 if binary else draw(label)
    return y_true, y_pred, pos_label


def binary_error(y_true: Sequence[int], y_pred: Sequence[int], pos_label: int) -> str | None:
    """What average='binary' must reject, as scikit-learn does: multiclass data, or a
    pos_label absent from two labels. None when the data is fine."""
    seen = set(y_true) | set(y_pred)
    if len(seen) > 2:
        return "the data is multiclass"
    if pos_label not in seen and len(seen) == 2:
        return f"pos_label={pos_label} never occurs"
    return None


# ---------------------------------------------------------------------------
# Every confusion-matrix metric, every average, both paths, against scikit-learn


@pytest.mark.parametrize("average", AVERAGES)
@pytest.mark.parametrize("cls", CM_METRICS, ids=lambda c: c.__name__)
@PROPERTY
@given(
    binary=st.booleans(),
    data=st.data(),
    zero_division=st.sampled_from(ZERO_DIVISIONS),
)
def test_matches_sklearn_confusion_matrices(
    cls: type[ConfusionMatrixMetric],
    average: str,
    binary: bool,
    data: st.DataObject,
    zero_division: Any,
) -> None:
    y_true, y_pred, pos_label = data.draw(labelled_data(binary))
    kwargs: dict[str, Any] = {"average": average, "zero_division": zero_division}
    if average == "binary":
        kwargs["pos_label"] = pos_label
    by_record, by_batch = cls(**kwargs), cls(**kwargs)
    run_records(by_record, y_true, y_pred)
    by_batch.process_batch(np.array(y_pred), np.array(y_true))
    error = binary_error(y_true, y_pred, pos_label) if average == "binary" else None
    if error is not None:
        for metric in (by_record, by_batch):
            with pytest.raises(MetricError, match=error):
                value_of(metric)
        return
    expected = reference_value(cls, y_true, y_pred, average, pos_label, zero_division)
    assert same(value_of(by_record), expected), (value_of(by_record), expected)
    assert same(value_of(by_batch), expected), (value_of(by_batch), expected)


@pytest.mark.parametrize("average", AVERAGES)
@pytest.mark.parametrize("cls", list(SKLEARN_DIRECT), ids=lambda c: c.__name__)
@PROPERTY
@given(binary=st.booleans(), data=st.data(), zero_division=st.sampled_from(ZERO_DIVISIONS))
def test_matches_sklearn_functions(
    cls: type[ConfusionMatrixMetric],
    average: str,
    binary: bool,
    data: st.DataObject,
    zero_division: Any,
) -> None:
    """precision/recall/f1/jaccard straight from scikit-learn's own functions."""
    y_true, y_pred, pos_label = data.draw(labelled_data(binary))
    sk_function = SKLEARN_DIRECT[cls]
    if cls is ThreatScore and isinstance(zero_division, float) and math.isnan(zero_division):
        zero_division = 1  # jaccard_score has no NaN option
    kwargs: dict[str, Any] = {"average": average, "zero_division": zero_division}
    if average == "binary":
        if binary_error(y_true, y_pred, pos_label):
            return  # covered by test_matches_sklearn_confusion_matrices
        kwargs["pos_label"] = pos_label
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = float(sk_function(y_true, y_pred, **kwargs))
    by_record, by_batch = cls(**kwargs), cls(**kwargs)
    run_records(by_record, y_true, y_pred)
    by_batch.process_batch(y_pred, y_true)  # plain lists
    assert same(value_of(by_record), expected), (value_of(by_record), expected)
    assert same(value_of(by_batch), expected), (value_of(by_batch), expected)


@PROPERTY
@given(binary=st.booleans(), data=st.data())
def test_accuracy_matches_sklearn(binary: bool, data: st.DataObject) -> None:
    y_true, y_pred, _ = data.draw(labelled_data(binary))
    by_record, by_batch = Accuracy(), Accuracy()
    run_records(by_record, y_true, y_pred)
    by_batch.process_batch(np.array(y_pred), np.array(y_true))
    expected = skm.accuracy_score(y_true, y_pred)
    assert Accuracy.aggregate([by_record]) == pytest.approx(expected, rel=1e-12)
    assert Accuracy.aggregate([by_batch]) == pytest.approx(expected, rel=1e-12)


def test_sklearn_agrees_on_a_large_multiclass_sample() -> None:
    """Beyond hypothesis' small examples: 5,000 records, 12 classes, every metric."""
    rng = np.random.default_rng(7)
    y_true = rng.integers(0, 12, 5000)
    y_pred = np.where(rng.random(5000) < 0.6, y_true, rng.integers(0, 12, 5000))
    for cls in CM_METRICS:
        for average in ("micro", "macro", "weighted"):  # binary rejects 12 classes (tested above)
            metric = cls(average=average, zero_division=math.nan)
            metric.process_batch(y_pred, y_true)
            expected = reference_value(cls, y_true, y_pred, average, 1, math.nan)
            assert same(value_of(metric), expected), (cls.__name__, average)


# ---------------------------------------------------------------------------
# Shards: k instances over a random split aggregate to the single-pass value


@PROPERTY
@given(
    data=st.data(),
    binary=st.booleans(),
    k=st.integers(1, 5),
    average=st.sampled_from(AVERAGES),
)
def test_shards_aggregate_to_the_single_pass(
    data: st.DataObject, binary: bool, k: int, average: str
) -> None:
    y_true, y_pred, pos_label = data.draw(labelled_data(binary))
    assignment = data.draw(st.lists(st.integers(0, k - 1), min_size=len(y_true)))
    use_batch = data.draw(st.lists(st.booleans(), min_size=k, max_size=k))
    kwargs: dict[str, Any] = {"average": average, "zero_division": math.nan}
    if average == "binary":
        kwargs["pos_label"] = pos_label
    for cls in [Accuracy, *CM_METRICS]:
        make = (lambda c=cls: c()) if cls is Accuracy else (lambda c=cls: c(**kwargs))
        single = make()
        run_records(single, y_true, y_pred)
        shards = [make() for _ in range(k)]
        for i, shard in enumerate(shards):
            rows = [j for j, s in enumerate(assignment[: len(y_true)]) if s == i]
            if not rows:
                continue  # an instance that saw nothing still aggregates
            targets, outputs = [y_true[j] for j in rows], [y_pred[j] for j in rows]
            if use_batch[i]:
                shard.process_batch(np.array(outputs), np.array(targets))
            else:
                run_records(shard, targets, outputs)
        if average == "binary" and cls is not Accuracy and binary_error(y_true, y_pred, pos_label):
            with pytest.raises(MetricError):
                value_of(single)
            with pytest.raises(MetricError):
                cls.aggregate(shards)
            continue
        expected = value_of(single)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            merged = cls.aggregate(shards)
        assert isinstance(merged, float)
        assert same(merged, expected) and (math.isnan(expected) or merged == expected)


def test_shards_with_disjoint_label_sets_merge_into_the_union() -> None:
    first, second = F1Score(average="macro"), F1Score(average="macro")
    first.process_batch([0, 1, 1, 0], [0, 1, 0, 0])
    second.process_batch(np.array([2, 3, 3]), np.array([2, 3, 2]))
    y_true = [0, 1, 0, 0, 2, 3, 2]
    y_pred = [0, 1, 1, 0, 2, 3, 3]
    assert F1Score.aggregate([first, second]) == pytest.approx(
        skm.f1_score(y_true, y_pred, average="macro"), rel=1e-12
    )
    assert F1Score.aggregate(iter([second, first])) == F1Score.aggregate([first, second])


def test_record_and_batch_paths_mix_in_one_instance() -> None:
    metric = TruePositiveRate(average="weighted")
    metric.process_record(2, 2)
    metric.process_record(np.int64(1), 2.0)
    metric.process_batch(np.array([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1]]), [1, 0])
    expected = skm.recall_score([2, 2, 1, 0], [2, 1, 1, 0], average="weighted")
    assert TruePositiveRate.aggregate([metric]) == pytest.approx(expected, rel=1e-12)


def test_wide_and_negative_label_ranges_use_the_same_counts() -> None:
    """Labels spanning more than the bincount range go through np.unique."""
    y_true = np.array([-5, 3_000_000_000, 7, 7, -5])
    y_pred = np.array([-5, 7, 7, 3_000_000_000, 3_000_000_000])
    for average in ("micro", "macro", "weighted"):
        metric = PositivePredictiveValue(average=average, zero_division=0)
        metric.process_batch(y_pred, y_true)
        expected = skm.precision_score(y_true, y_pred, average=average, zero_division=0)
        assert value_of(metric) == pytest.approx(expected, rel=1e-12)
        by_record = PositivePredictiveValue(average=average, zero_division=0)
        run_records(by_record, y_true.tolist(), y_pred.tolist())
        assert value_of(by_record) == value_of(metric)


# ---------------------------------------------------------------------------
# Options: zero_division, pos_label, average


def test_zero_division_policies_for_an_undefined_precision() -> None:
    # no predicted positives: TP + FP = 0
    results = {}
    for zero_division in (0, 1, math.nan):
        metric = PositivePredictiveValue(zero_division=zero_division)
        metric.process_batch([0, 0, 0], [1, 0, 1])
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # an explicit policy never warns
            results[zero_division] = PositivePredictiveValue.aggregate([metric])
    assert results[0] == 0.0 and results[1] == 1.0 and math.isnan(results[math.nan])


def test_zero_division_warn_returns_zero_and_names_the_metric() -> None:
    metric = NegativePredictiveValue()
    metric.process_batch([1, 1], [1, 0])  # no predicted negatives: TN + FN = 0
    with pytest.warns(UserWarning, match=r"NegativePredictiveValue is ill-defined") as record:
        assert NegativePredictiveValue.aggregate([metric]) == 0.0
    assert "TN + FN = 0" in str(record[0].message)
    assert "zero_division" in str(record[0].message)


def test_defined_values_do_not_warn() -> None:
    metric = PositivePredictiveValue()
    metric.process_batch([1, 0, 1], [1, 0, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert PositivePredictiveValue.aggregate([metric]) == 0.5


@pytest.mark.parametrize(
    ("cls", "y_pred", "y_true"),
    [
        (PositiveLikelihoodRatio, [1, 0, 0], [1, 0, 0]),  # FPR = 0
        (NegativeLikelihoodRatio, [1, 1, 0], [1, 0, 1]),  # TNR = 0
        (PrevalenceThreshold, [0, 0], [1, 0]),  # TPR = FPR = 0
    ],
    ids=["PLR", "NLR", "PT"],
)
def test_ratios_with_a_zero_denominator_use_zero_division(
    cls: type[ConfusionMatrixMetric], y_pred: list[int], y_true: list[int]
) -> None:
    for zero_division, expected in ((1, 1.0), (0, 0.0)):
        metric = cls(zero_division=zero_division)
        metric.process_batch(y_pred, y_true)
        assert cls.aggregate([metric]) == expected
    metric = cls()
    metric.process_batch(y_pred, y_true)
    with pytest.warns(UndefinedMetricWarning, match=cls.__name__):
        assert cls.aggregate([metric]) == 0.0


def test_macro_average_skips_nan_classes_and_warns_with_the_labels() -> None:
    # label 2 is only predicted: its recall is undefined
    y_true, y_pred = [0, 1, 1, 0], [0, 1, 2, 0]
    metric = TruePositiveRate(average="macro", zero_division=math.nan)
    metric.process_batch(y_pred, y_true)
    assert TruePositiveRate.aggregate([metric]) == pytest.approx((1.0 + 0.5) / 2)
    metric = TruePositiveRate(average="macro")
    metric.process_batch(y_pred, y_true)
    with pytest.warns(UndefinedMetricWarning, match=r"label\(s\) \[2\]"):
        assert TruePositiveRate.aggregate([metric]) == pytest.approx((1.0 + 0.5 + 0.0) / 3)


def test_pos_label_selects_the_positive_class() -> None:
    y_true, y_pred = [0, 0, 1, 1, 0], [0, 1, 1, 0, 0]
    metric = PositivePredictiveValue(pos_label=0)
    metric.process_batch(y_pred, y_true)
    expected = skm.precision_score(y_true, y_pred, pos_label=0)
    assert PositivePredictiveValue.aggregate([metric]) == pytest.approx(expected)
    assert expected != pytest.approx(skm.precision_score(y_true, y_pred))  # the test can fail

    y_true, y_pred = [3, 7, 7, 3], [7, 7, 3, 3]
    metric = F1Score(pos_label=7)
    run_records(metric, y_true, y_pred)
    assert F1Score.aggregate([metric]) == pytest.approx(skm.f1_score(y_true, y_pred, pos_label=7))


def test_binary_average_on_multiclass_data_is_an_error() -> None:
    # scikit-learn raises too: the score of one class is not the multiclass score
    y_true, y_pred = [0, 1, 2, 2, 1], [2, 1, 2, 0, 0]
    metric = TrueNegativeRate(pos_label=2)
    metric.process_batch(y_pred, y_true)
    with pytest.raises(MetricError, match=r"multiclass \(labels \[0, 1, 2\]\).*average='macro'"):
        TrueNegativeRate.aggregate([metric])


def test_pos_label_missing_from_two_labels_is_an_error() -> None:
    metric = PositivePredictiveValue()  # pos_label=1
    metric.process_batch([0, 2, 2], [2, 0, 2])
    with pytest.raises(MetricError, match=r"pos_label=1 never occurs.*\[0, 2\].*pos_label="):
        PositivePredictiveValue.aggregate([metric])


def test_pos_label_missing_with_a_single_label_is_zero_counts() -> None:
    metric = TrueNegativeRate(zero_division=0)
    metric.process_batch([0, 0], [0, 0])  # all negatives, correctly predicted
    assert TrueNegativeRate.aggregate([metric]) == 1.0


def test_pos_label_is_ignored_with_a_warning_for_other_averages() -> None:
    with pytest.warns(UserWarning, match="pos_label=3 is ignored"):
        F1Score(average="macro", pos_label=3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"average": "samples"}, r"average='samples' is not supported.*'binary', 'micro'"),
        ({"average": None}, r"average=None is not supported"),
        ({"zero_division": 2}, r"zero_division=2 is not supported.*'warn', 0, 1"),
        ({"zero_division": "nan"}, r"zero_division='nan' is not supported"),
        ({"zero_division": True}, r"zero_division=True is not supported"),
        ({"pos_label": 0.5}, r"pos_label is 0.5.*integer"),
        ({"pos_label": "yes"}, r"pos_label is a str"),
    ],
)
def test_invalid_options_fail_at_construction(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(MetricError, match=message):
        PositivePredictiveValue(**kwargs)


def test_default_construction_and_repr() -> None:
    metric = FalseOmissionRate()
    assert repr(metric) == "FalseOmissionRate(average='binary', pos_label=1, zero_division='warn')"
    assert FalseOmissionRate(pos_label=np.int64(2), zero_division=1.0).pos_label == 2


# ---------------------------------------------------------------------------
# Corrected formulas and scores -> argmax


def test_corrected_false_discovery_and_omission_rates() -> None:
    # TP=2, FP=1, FN=3, TN=4
    y_true = [1, 1, 0, 1, 1, 1, 0, 0, 0, 0]
    y_pred = [1, 1, 1, 0, 0, 0, 0, 0, 0, 0]
    fdr, for_ = FalseDiscoveryRate(), FalseOmissionRate()
    run_records(fdr, y_true, y_pred)
    for_.process_batch(y_pred, y_true)
    assert FalseDiscoveryRate.aggregate([fdr]) == pytest.approx(1 / (1 + 2))  # FP / (FP + TP)
    assert FalseOmissionRate.aggregate([for_]) == pytest.approx(3 / (3 + 4))  # FN / (FN + TN)
    assert get_metric("FalseDiscoveryRate").description == "FP / (FP + TP)"
    assert get_metric("FalseOmissionRate").description == "FN / (FN + TN)"


def test_hand_computed_values_of_every_metric() -> None:
    # TP=2, FP=1, FN=3, TN=4 as above
    y_true = [1, 1, 0, 1, 1, 1, 0, 0, 0, 0]
    y_pred = [1, 1, 1, 0, 0, 0, 0, 0, 0, 0]
    tpr, fpr, fnr, tnr = 2 / 5, 1 / 5, 3 / 5, 4 / 5
    expected = {
        TruePositiveRate: tpr,
        TrueNegativeRate: tnr,
        PositivePredictiveValue: 2 / 3,
        NegativePredictiveValue: 4 / 7,
        FalseNegativeRate: fnr,
        FalsePositiveRate: fpr,
        FalseDiscoveryRate: 1 / 3,
        FalseOmissionRate: 3 / 7,
        PositiveLikelihoodRatio: tpr / fpr,
        NegativeLikelihoodRatio: fnr / tnr,
        PrevalenceThreshold: math.sqrt(fpr) / (math.sqrt(fpr) + math.sqrt(tpr)),
        ThreatScore: 2 / 6,
        F1Score: 4 / 8,
    }
    assert set(expected) == set(CM_METRICS)
    for cls, value in expected.items():
        metric = cls()
        metric.process_batch(y_pred, y_true)
        assert cls.aggregate([metric]) == pytest.approx(value, rel=1e-12), cls.__name__


def test_score_vectors_are_argmaxed() -> None:
    scores = np.array([[0.1, 0.7, 0.2], [2.0, -1.0, 0.5], [0.0, 0.0, 3.0], [1.0, 1.0, 0.0]])
    y_true = [1, 0, 1, 1]
    labels = [1, 0, 2, 0]  # ties go to the first class, like numpy and torch
    for make in (Accuracy, lambda: PositivePredictiveValue(average="macro")):
        from_scores_batch, from_scores_record, from_labels = make(), make(), make()
        from_scores_batch.process_batch(scores, y_true)
        run_records(from_scores_record, y_true, [list(row) for row in scores])
        from_labels.process_batch(labels, y_true)
        expected = value_of(from_labels)
        assert value_of(from_scores_batch) == expected
        assert value_of(from_scores_record) == expected
    accuracy = Accuracy()
    accuracy.process_batch(scores, y_true)
    assert Accuracy.aggregate([accuracy]) == 0.5


def test_infinite_scores_are_valid_logits() -> None:
    metric = Accuracy()
    metric.process_record([-np.inf, 1.0, np.inf], 2)
    metric.process_batch(np.array([[0.0, -np.inf]]), [0])
    assert Accuracy.aggregate([metric]) == 1.0


def test_labels_of_every_numeric_kind() -> None:
    metric = Accuracy()
    for output, target in [
        (1, 1),
        (np.int32(2), np.uint8(2)),
        (3.0, np.float32(3.0)),
        (True, 1),
        (np.array(4), np.array(4.0)),
        (np.bool_(False), 0),
    ]:
        metric.process_record(output, target)
    metric.process_batch(np.array([1.0, 2.0], dtype=np.float16), np.array([1, 2], np.uint64))
    metric.process_batch(np.array([True, False]), [1, 1])
    assert (metric.correct, metric.total) == (9, 10)


# ---------------------------------------------------------------------------
# Errors, each with its message


@pytest.mark.parametrize("cls", [Accuracy, F1Score], ids=lambda c: c.__name__)
@pytest.mark.parametrize(
    ("output", "target", "message"),
    [
        (None, 1, r"output is None; expected a number"),
        (1, None, r"target is None"),
        (1, "cat", r"target is a str \('cat'\).*integers"),
        (1.5, 1, r"output is 1.5, which is not an integer-valued.*threshold/round"),
        (1, math.nan, r"target is NaN; expected an integer class label"),
        (math.inf, 1, r"output is inf; expected an integer class label"),
        ([0.3], 1, r"output is a vector with a single element.*output.item\(\)"),
        ([[0.1, 0.9]], 1, r"output has shape \(1, 2\).*process_batch.*output\[0\]"),
        ([0.1, math.nan], 1, r"output contains 1 NaN value\(s\) \(first at index \(1,\)\)"),
        (1, [0, 1], r"target has shape \(2,\); expected a scalar.*argmax"),
        (1, object(), r"target contains a non-numeric element <object"),
        (1, 1 + 2j, r"target contains complex numbers"),
        ([], 1, r"output is empty"),
    ],
)
def test_process_record_errors(cls: type[Any], output: Any, target: Any, message: str) -> None:
    metric = cls()
    with pytest.raises(MetricError, match=f"{cls.__name__}.process_record: {message}"):
        metric.process_record(output, target)
    assert isinstance(MetricError("x"), ValueError)


@pytest.mark.parametrize("cls", [Accuracy, ThreatScore], ids=lambda c: c.__name__)
@pytest.mark.parametrize(
    ("outputs", "targets", "message"),
    [
        ([1, 0, 1], [1, 0], r"got 3 outputs \(shape \(3,\)\) but 2 targets"),
        ([], [], r"outputs is empty"),
        ([1, 0], [[1], [0]], r"targets has shape \(2, 1\).*targets.ravel\(\)"),
        ([1, 0], [[1, 0], [0, 1]], r"targets has shape \(2, 2\).*argmax\(axis=1\)"),
        ([[[1, 0]], [[0, 1]]], [1, 0], r"outputs has shape \(2, 1, 2\); expected \(N,\)"),
        ([[0.9], [0.2]], [1, 0], r"outputs has shape \(2, 1\): one score per record"),
        (
            [0.9, 0.2],
            [1, 0],
            r"outputs contains values that are not integer class labels "
            r"\(e.g. 0.9 at index 0\).*\(N, C\)",
        ),
        ([1, 0], [1.0, math.nan], r"targets contains 1 NaN value\(s\)"),
        ([[0.1, math.nan], [0.3, 0.2]], [1, 0], r"outputs contains 1 NaN"),
        ([1, 0], ["a", "b"], r"targets contains strings"),
        ([1, None], [1, 0], r"outputs contains a non-numeric element None at flat index 1"),
        ([[1, 2], [3]], [1, 0], r"outputs could not be read.*ragged"),
        (3, [1], r"outputs has shape \(\); expected \(N,\)"),
        ([1, 0], 1, r"targets has shape \(\); expected shape \(N,\)"),
    ],
)
def test_process_batch_errors(cls: type[Any], outputs: Any, targets: Any, message: str) -> None:
    metric = cls()
    with pytest.raises(MetricError, match=f"{cls.__name__}.process_batch: {message}"):
        metric.process_batch(outputs, targets)


def test_a_failed_record_or_batch_leaves_the_state_unchanged() -> None:
    metric = PositivePredictiveValue()
    metric.process_record(1, 1)
    with pytest.raises(MetricError):
        metric.process_record(1, "x")
    with pytest.raises(MetricError):
        metric.process_batch([1, 1], [1, math.nan])
    assert PositivePredictiveValue.aggregate([metric]) == 1.0


@pytest.mark.parametrize("cls", [Accuracy, *CM_METRICS], ids=lambda c: c.__name__)
def test_aggregate_of_nothing_processed_is_an_error(cls: type[Any]) -> None:
    with pytest.raises(MetricError, match=r"nothing was processed \(0 records"):
        cls.aggregate([cls(), cls()])
    with pytest.raises(MetricError, match=r"got no metric instances"):
        cls.aggregate([])


def test_aggregate_rejects_mixed_classes_options_and_single_instances() -> None:
    precision, recall = PositivePredictiveValue(), TruePositiveRate()
    precision.process_record(1, 1)
    recall.process_record(1, 1)
    with pytest.raises(MetricError, match=r"got a TruePositiveRate among PositivePredictive"):
        PositivePredictiveValue.aggregate([precision, recall])
    with pytest.raises(MetricError, match=r"PositivePredictiveValue.aggregate got a TruePos"):
        PositivePredictiveValue.aggregate([recall])
    with pytest.raises(MetricError, match=r"got a single metric instance.*\[metric\]"):
        PositivePredictiveValue.aggregate(precision)  # type: ignore[arg-type]
    other = PositivePredictiveValue(zero_division=math.nan)
    other.process_record(1, 0)
    with pytest.raises(MetricError, match=r"different options.*zero_division='warn'.*nan"):
        PositivePredictiveValue.aggregate([precision, other])
    same_nan = PositivePredictiveValue(zero_division=float("nan"))
    same_nan.process_record(1, 1)
    assert PositivePredictiveValue.aggregate([other, same_nan]) == 0.5


def test_instances_pickle_with_their_state() -> None:
    import pickle

    metric = F1Score(average="macro")
    metric.process_record(1, 1)
    metric.process_batch([0, 2], [0, 1])
    copy = pickle.loads(pickle.dumps(metric))
    assert F1Score.aggregate([copy]) == F1Score.aggregate([metric])
    assert F1Score.aggregate([copy, metric]) == F1Score.aggregate([metric])


# ---------------------------------------------------------------------------
# The built-in plugin


def test_builtin_plugin_registers_the_guide_table_in_order() -> None:
    calls: list[tuple[str, type, str, tuple[str, ...]]] = []

    def register(
        name: str, metric_class: type | str, *, description: str, aliases: tuple[str, ...] = ()
    ) -> None:
        assert isinstance(metric_class, str)  # an import path: listing imports no metric
        module, _, attribute = metric_class.partition(":")
        calls.append(
            (name, getattr(importlib.import_module(module), attribute), description, aliases)
        )

    builtin.neuronperf_register_metrics(register)
    assert [c[0] for c in calls] == [
        "Accuracy",
        "TruePositiveRate",
        "TrueNegativeRate",
        "PositivePredictiveValue",
        "NegativePredictiveValue",
        "FalseNegativeRate",
        "FalsePositiveRate",
        "FalseDiscoveryRate",
        "FalseOmissionRate",
        "PositiveLikelihoodRatio",
        "NegativeLikelihoodRatio",
        "PrevalenceThreshold",
        "ThreatScore",
        "F1Score",
        "MeanAbsoluteError",
        "MeanSquaredError",
    ]
    table = {name: (cls, description, aliases) for name, cls, description, aliases in calls}
    assert table["TruePositiveRate"][2] == ("Sensitivity", "Recall", "Hit Rate")
    assert table["TrueNegativeRate"][2] == ("Specificity", "Selectivity")
    assert table["PositivePredictiveValue"][2] == ("Precision",)
    assert table["FalseDiscoveryRate"][1] == "FP / (FP + TP)"
    assert table["FalseOmissionRate"][1] == "FN / (FN + TN)"
    assert table["PrevalenceThreshold"][1] == "sqrt(FPR) / (sqrt(FPR) + sqrt(TPR))"
    assert table["MeanAbsoluteError"][1] == "sum(|y - x|) / n"
    assert table["MeanSquaredError"][1] == "sum((y - x)^2) / n"
    assert table["MeanSquaredError"][0] is MeanSquaredError
    assert table["MeanAbsoluteError"][0] is MeanAbsoluteError
    for cls, _, _ in table.values():
        assert isinstance(cls(), BaseEvalMetric)  # every built-in constructs without arguments


def test_builtin_plugin_imports_nothing_heavy() -> None:
    code = (
        "import sys, neuronperf_core.metrics.builtin; "
        "heavy = {'torch', 'sklearn', 'scipy', 'pandas', 'torchmetrics', 'numpy', "
        "'neuronperf_core.metrics.classification'} & set(sys.modules); "
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_many_classes_per_record_bound_the_pair_table() -> None:
    """More distinct (predicted, true) pairs than the table keeps: folded, same value."""
    rng = np.random.default_rng(3)
    y_true = rng.integers(0, 150, 20_000)
    y_pred = rng.integers(0, 150, 20_000)
    metric = PositivePredictiveValue(average="macro", zero_division=0)
    run_records(metric, y_true.tolist(), y_pred.tolist())
    assert len(metric._pairs) <= 4096  # 150 * 150 = 22,500 distinct pairs were seen
    expected = skm.precision_score(y_true, y_pred, average="macro", zero_division=0)
    assert PositivePredictiveValue.aggregate([metric]) == pytest.approx(expected, rel=1e-12)


# with 500 records: span**2 <= 4096 dense, span <= 4096 per label, wider np.unique
@pytest.mark.parametrize("n_classes", [2, 60, 100, 10_000], ids=["2", "60", "100", "10000"])
def test_every_batch_counting_strategy_matches_sklearn(n_classes: int) -> None:
    """Few classes (one confusion-matrix bincount), many (per-label bincounts), few records
    over a wide label range (np.unique): the same counts."""
    rng = np.random.default_rng(n_classes)
    n = 500
    y_true = rng.integers(-3, n_classes - 3, n)
    y_pred = np.where(rng.random(n) < 0.5, y_true, rng.integers(-3, n_classes - 3, n))
    for average in ("micro", "macro", "weighted"):
        metric = F1Score(average=average, zero_division=0)
        metric.process_batch(y_pred, y_true)
        expected = skm.f1_score(y_true, y_pred, average=average, zero_division=0)
        assert F1Score.aggregate([metric]) == pytest.approx(expected, rel=1e-12)

"""BalancedAccuracy, MatthewsCorrelation, CohenKappa and ConfusionMatrix against scikit-learn."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from helpers import PROPERTY, by_batch, by_record, by_shards
from hypothesis import given
from hypothesis import strategies as st
from neuronperf_metrics_extra import (
    BalancedAccuracy,
    CohenKappa,
    ConfusionMatrix,
    MatthewsCorrelation,
)
from sklearn import metrics as skm

from neuronperf_core.errors import MetricError, UndefinedMetricWarning


def confusion(**options: Any) -> Callable[[Any, Any], list[list[float]]]:
    return lambda t, p: skm.confusion_matrix(t, p, **options).tolist()


# (metric class, its options, scikit-learn's function of (y_true, y_pred))
CASES: list[tuple[type[Any], dict[str, Any], Callable[[Any, Any], Any]]] = [
    (BalancedAccuracy, {}, skm.balanced_accuracy_score),
    (
        BalancedAccuracy,
        {"adjusted": True},
        lambda t, p: skm.balanced_accuracy_score(t, p, adjusted=True),
    ),
    (MatthewsCorrelation, {}, skm.matthews_corrcoef),
    (CohenKappa, {}, skm.cohen_kappa_score),
    (CohenKappa, {"weights": "linear"}, lambda t, p: skm.cohen_kappa_score(t, p, weights="linear")),
    (
        CohenKappa,
        {"weights": "quadratic"},
        lambda t, p: skm.cohen_kappa_score(t, p, weights="quadratic"),
    ),
    (ConfusionMatrix, {}, confusion()),
    (ConfusionMatrix, {"normalize": "true"}, confusion(normalize="true")),
    (ConfusionMatrix, {"normalize": "pred"}, confusion(normalize="pred")),
    (ConfusionMatrix, {"normalize": "all"}, confusion(normalize="all")),
]
parametrize_cases = pytest.mark.parametrize(
    ("cls", "options", "reference"),
    CASES,
    ids=[f"{c.__name__}-{'-'.join(map(str, o.values())) or 'default'}" for c, o, _ in CASES],
)


def quietly(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``function(*args, **kwargs)`` with warnings silenced (undefined cases warn on both sides)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function(*args, **kwargs)


def assert_close(value: Any, expected: Any) -> None:
    if isinstance(expected, list):
        assert isinstance(value, list)
        np.testing.assert_allclose(value, expected, rtol=1e-12, atol=1e-12)
    elif not math.isfinite(expected):  # undefined: NaN here (scikit-learn may say -inf)
        assert math.isnan(value)
    else:
        assert isinstance(value, float)
        assert value == pytest.approx(expected, rel=1e-12, abs=1e-12)


@parametrize_cases
@PROPERTY
@given(pairs=st.lists(st.tuples(st.integers(-2, 4), st.integers(-2, 4)), min_size=1))
def test_random_labels_match_sklearn(
    cls: type[Any],
    options: dict[str, Any],
    reference: Callable[[Any, Any], Any],
    pairs: list[tuple[int, int]],
) -> None:
    """Any labels, negative ones included: one batch, record by record and in shards."""
    true = np.array([t for t, _ in pairs])
    pred = np.array([p for _, p in pairs])
    expected = quietly(reference, true, pred)
    assert_close(quietly(by_batch, cls, pred, true, **options), expected)
    assert_close(quietly(by_record, cls, pred.tolist(), true.tolist(), **options), expected)
    assert_close(quietly(by_shards, cls, pred, true, 3, **options), expected)


@parametrize_cases
def test_scores_of_many_records_match_sklearn(
    cls: type[Any], options: dict[str, Any], reference: Callable[[Any, Any], Any]
) -> None:
    """(N, C) scores: the argmax is the prediction; 7 shards merge to the single pass."""
    rng = np.random.default_rng(0)
    true = rng.integers(0, 6, 20_000)
    scores = rng.random((20_000, 6))
    scores[np.arange(20_000), true] += rng.random(20_000) * 0.6  # better than chance
    expected = reference(true, scores.argmax(axis=1))
    assert_close(by_batch(cls, scores, true, **options), expected)
    assert_close(by_shards(cls, scores, true, 7, **options), expected)


@pytest.mark.parametrize(("cls", "options", "reference"), CASES[2:4] + CASES[6:7])
def test_sparse_wide_labels_match_sklearn(
    cls: type[Any], options: dict[str, Any], reference: Callable[[Any, Any], Any]
) -> None:
    """Labels far apart (10**12, -7, 3) take the np.unique path instead of one bincount."""
    rng = np.random.default_rng(1)
    values = np.array([-7, 3, 10**12])
    true = values[rng.integers(0, 3, 500)]
    pred = np.where(rng.random(500) < 0.7, true, values[rng.integers(0, 3, 500)])
    assert_close(by_batch(cls, pred, true, **options), reference(true, pred))
    assert_close(by_record(cls, pred.tolist(), true.tolist(), **options), reference(true, pred))


def test_many_record_pairs_fold_into_the_matrix() -> None:
    """Past 4096 distinct pairs the per-record dict is moved into the matrix: same result."""
    rng = np.random.default_rng(2)
    true = rng.integers(0, 100, 30_000)
    pred = rng.integers(0, 100, 30_000)
    metric = ConfusionMatrix()
    for p, t in zip(pred.tolist(), true.tolist(), strict=True):
        metric.process_record(p, t)
    assert len(metric.pairs.pending) < 4096
    assert ConfusionMatrix.aggregate([metric]) == skm.confusion_matrix(true, pred).tolist()


def test_memory_does_not_grow_with_records() -> None:
    metric = MatthewsCorrelation()
    rng = np.random.default_rng(3)
    for _ in range(20):
        metric.process_batch(rng.integers(0, 5, 10_000), rng.integers(0, 5, 10_000))
    assert metric.pairs.counts.shape == (5, 5)
    assert metric.pairs.labels.tolist() == [0, 1, 2, 3, 4]
    assert not metric.pairs.pending


def test_records_take_scores_and_tensors_like_the_core() -> None:
    torch = pytest.importorskip("torch")
    metric = MatthewsCorrelation()
    metric.process_record(torch.tensor([0.1, 0.9]), torch.tensor(1))
    metric.process_record(np.array([0.8, 0.2]), 0)
    metric.process_record(1, 0.0)
    metric.process_batch(torch.tensor([[0.3, 0.7]]), torch.tensor([1]))
    expected = skm.matthews_corrcoef([1, 0, 0, 1], [1, 0, 1, 1])
    assert MatthewsCorrelation.aggregate([metric]) == pytest.approx(expected)


def test_confusion_matrix_with_given_labels_follows_their_order() -> None:
    true, pred = [0, 1, 2, 2], [0, 2, 2, 1]
    value = by_batch(ConfusionMatrix, pred, true, labels=[2, 0, 1, 5])
    assert value == skm.confusion_matrix(true, pred, labels=[2, 0, 1, 5]).tolist()
    assert all(type(x) is int for row in value for x in row)


def test_confusion_matrix_rejects_labels_outside_the_given_ones() -> None:
    with pytest.raises(MetricError, match=r"contain labels \[2\] that are not in labels=\[0, 1\]"):
        by_batch(ConfusionMatrix, [0, 1, 2], [0, 1, 1], labels=[0, 1])


def test_balanced_accuracy_leaves_out_classes_only_predicted() -> None:
    with pytest.warns(UndefinedMetricWarning, match=r"labels \[2\] that never occur"):
        value = by_batch(BalancedAccuracy, [0, 2, 1, 1], [0, 0, 1, 1])
    assert value == quietly(skm.balanced_accuracy_score, [0, 0, 1, 1], [0, 2, 1, 1]) == 0.75


def test_cohen_kappa_with_a_single_shared_label_is_nan() -> None:
    with pytest.warns(UndefinedMetricWarning, match="single label in common"):
        assert math.isnan(by_batch(CohenKappa, [3, 3], [3, 3]))


def test_matthews_of_a_constant_prediction_is_zero() -> None:
    assert by_batch(MatthewsCorrelation, [1, 1, 1], [0, 1, 0]) == 0.0


@pytest.mark.parametrize(
    "cls", [BalancedAccuracy, MatthewsCorrelation, CohenKappa, ConfusionMatrix]
)
@pytest.mark.parametrize(
    ("outputs", "targets", "message"),
    [
        ([0.0, math.nan], [0, 1], r"outputs contains 1 NaN value\(s\) \(first at index \(1,\)\)"),
        ([[0.2, math.nan]], [0], r"outputs contains 1 NaN"),
        ([0, 1], [[0, 1], [1, 0]], r"targets has shape \(2, 2\); expected shape \(N,\)"),
        ([0, 1, 1], [0, 1], r"got 3 outputs \(shape \(3,\)\) but 2 targets"),
        ([], [], r"outputs is empty \(shape \(0,\)\)"),
        (
            [0.5, 1],
            [0, 1],
            r"outputs contains values that are not integer class labels \(e.g. 0.5 at index 0\)",
        ),
        (np.zeros((2, 2, 2)), [0, 1], r"outputs has shape \(2, 2, 2\); expected \(N,\) class"),
    ],
)
def test_bad_batches_raise_clear_errors(
    cls: type[Any], outputs: Any, targets: Any, message: str
) -> None:
    with pytest.raises(MetricError, match=rf"{cls.__name__}\.process_batch: {message}"):
        cls().process_batch(outputs, targets)


@pytest.mark.parametrize("cls", [BalancedAccuracy, CohenKappa])
def test_bad_records_raise_clear_errors(cls: type[Any]) -> None:
    with pytest.raises(MetricError, match=rf"{cls.__name__}\.process_record: output is NaN"):
        cls().process_record(math.nan, 1)
    with pytest.raises(MetricError, match=r"target has shape \(2,\); expected a scalar"):
        cls().process_record(1, [0, 1])


def test_aggregate_of_nothing_raises() -> None:
    with pytest.raises(MetricError, match=r"MatthewsCorrelation.aggregate: nothing was processed"):
        MatthewsCorrelation.aggregate([MatthewsCorrelation()])


def test_too_many_classes_raise_before_allocating() -> None:
    with pytest.raises(MetricError, match=r"5000 distinct labels, more than max_classes=1024"):
        by_batch(CohenKappa, np.arange(5000), np.arange(5000))
    assert by_batch(CohenKappa, np.arange(5000), np.arange(5000), max_classes=5000) == 1.0


def test_instances_with_different_options_do_not_merge() -> None:
    a, b = CohenKappa(), CohenKappa(weights="linear")
    a.process_batch([0, 1], [0, 1])
    b.process_batch([0, 1], [0, 1])
    with pytest.raises(MetricError, match=r"different options \(\(None,\) and \('linear',\)\)"):
        CohenKappa.aggregate([a, b])


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: CohenKappa(weights="cubic"), r"weights='cubic' is not supported"),
        (lambda: ConfusionMatrix(normalize="rows"), r"normalize='rows' is not supported"),
        (lambda: ConfusionMatrix(labels=[1, 1]), r"labels=\[1, 1\] repeats a label"),
        (lambda: BalancedAccuracy(max_classes=1), r"max_classes must be an integer >= 2"),
    ],
)
def test_bad_options_raise(make: Callable[[], Any], message: str) -> None:
    with pytest.raises(MetricError, match=message):
        make()

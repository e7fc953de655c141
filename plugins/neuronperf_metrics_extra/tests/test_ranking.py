"""ROCAUC and AveragePrecision: exact where binning loses nothing, within their bound elsewhere."""

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
from neuronperf_metrics_extra import ROCAUC, AveragePrecision, BinningWarning
from sklearn import metrics as skm

from neuronperf_core.errors import MetricError, UndefinedMetricWarning

METRICS: list[tuple[type[Any], Callable[[Any, Any], float]]] = [
    (ROCAUC, skm.roc_auc_score),
    (AveragePrecision, skm.average_precision_score),
]
parametrize_metrics = pytest.mark.parametrize(
    ("cls", "sk_function"), METRICS, ids=[c.__name__ for c, _ in METRICS]
)


def exact(sk_function: Callable[[Any, Any], float], targets: Any, scores: Any) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a single class warns on both sides
        return float(sk_function(targets, scores))


def binned(cls: type[Any], scores: Any, targets: Any, **options: Any) -> tuple[float, float]:
    """The binned value and its error bound."""
    metric = cls(**options)
    metric.process_batch(scores, targets)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cls.aggregate([metric]), cls.error_bound([metric])


def two_classes(pairs: list[tuple[Any, int]]) -> bool:
    return len({t for _, t in pairs}) == 2


@parametrize_metrics
@PROPERTY
@given(
    pairs=st.lists(st.tuples(st.integers(0, 63), st.integers(0, 1)), min_size=2).filter(two_classes)
)
def test_one_score_per_bin_is_exact(
    cls: type[Any], sk_function: Callable[[Any, Any], float], pairs: list[tuple[int, int]]
) -> None:
    """Scores at bin centres (ties included): binning loses nothing. (The bound cannot tell
    ties from distinct scores, so it need not be 0.)"""
    scores = np.array([(k + 0.5) / 64 for k, _ in pairs])
    targets = np.array([t for _, t in pairs])
    options = {"n_bins": 64, "tolerance": 1.0}  # no BinningWarning
    value, _ = binned(cls, scores, targets, **options)
    assert value == pytest.approx(exact(sk_function, targets, scores), rel=1e-12, abs=1e-12)
    assert by_record(cls, scores.tolist(), targets.tolist(), **options) == value
    assert by_shards(cls, scores, targets, 3, **options) == pytest.approx(value, rel=1e-12)


@parametrize_metrics
@PROPERTY
@given(
    pairs=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 1)), min_size=2).filter(
        two_classes
    ),
    n_bins=st.sampled_from([1, 2, 5, 16, 100]),
)
def test_the_error_is_within_the_bound(
    cls: type[Any],
    sk_function: Callable[[Any, Any], float],
    pairs: list[tuple[float, int]],
    n_bins: int,
) -> None:
    """Any scores, few bins (so that the bound matters): |binned - exact| <= bound."""
    scores = np.array([s for s, _ in pairs])
    targets = np.array([t for _, t in pairs])
    value, bound = binned(cls, scores, targets, n_bins=n_bins)
    assert 0.0 <= bound <= 1.0
    assert abs(value - exact(sk_function, targets, scores)) <= bound + 1e-12


@parametrize_metrics
def test_spread_scores_are_close_at_the_default_bins(
    cls: type[Any], sk_function: Callable[[Any, Any], float]
) -> None:
    """200,000 scores of density <= 2: the bound is ~1/(2 * 65536) for ROC AUC, and holds."""
    rng = np.random.default_rng(0)
    targets = rng.integers(0, 2, 200_000)
    scores = np.where(targets == 1, rng.random(200_000) ** 0.5, rng.random(200_000))
    value, bound = binned(cls, scores, targets)
    error = abs(value - exact(sk_function, targets, scores))
    assert error <= bound
    assert bound < (2e-5 if cls is ROCAUC else 2e-4)
    assert by_shards(cls, scores, targets, 5) == pytest.approx(value, rel=1e-12)


@parametrize_metrics
def test_logits_rank_as_their_sigmoid(
    cls: type[Any], sk_function: Callable[[Any, Any], float]
) -> None:
    rng = np.random.default_rng(1)
    targets = rng.integers(0, 2, 50_000)
    logits = rng.normal(0.0, 1.5, 50_000) + targets
    value, bound = binned(cls, logits, targets, from_logits=True)
    assert abs(value - exact(sk_function, targets, logits)) <= bound < 1e-3


def test_crowded_scores_warn_with_the_bound() -> None:
    metric = ROCAUC(n_bins=4)
    metric.process_batch([0.30, 0.31, 0.32, 0.33], [0, 1, 0, 1])
    with pytest.warns(BinningWarning, match=r"may differ from the exact one by up to 0.5 "):
        assert ROCAUC.aggregate([metric]) == 0.5
    quiet = ROCAUC(n_bins=4, tolerance=0.5)
    quiet.process_batch([0.30, 0.31, 0.32, 0.33], [0, 1, 0, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ROCAUC.aggregate([quiet])


def test_a_single_class_is_undefined_as_in_sklearn() -> None:
    with pytest.warns(UndefinedMetricWarning, match="ROCAUC is undefined"):
        assert math.isnan(by_batch(ROCAUC, [0.2, 0.4], [1, 1]))
    with pytest.warns(UndefinedMetricWarning, match="AveragePrecision is undefined"):
        assert by_batch(AveragePrecision, [0.2, 0.4], [0, 0]) == 0.0
    assert by_batch(AveragePrecision, [0.2, 0.4], [1, 1]) == 1.0


def test_state_is_two_histograms_whatever_the_records() -> None:
    metric = AveragePrecision()
    rng = np.random.default_rng(2)
    for _ in range(10):
        metric.process_batch(rng.random(10_000), rng.integers(0, 2, 10_000))
    assert metric.positives.shape == metric.negatives.shape == (65_536,)
    assert int(metric.positives.sum() + metric.negatives.sum()) == 100_000


@pytest.mark.parametrize("cls", [ROCAUC, AveragePrecision])
@pytest.mark.parametrize(
    ("outputs", "targets", "message"),
    [
        (
            [[0.2, 0.8]],
            [1],
            r"outputs has shape \(1, 2\); expected \(N,\) scores .* outputs\[:, 1\]",
        ),
        ([0.2, 0.8], [1, 2], r"targets contains 2 at index 1; expected class ids 0 \.\. 1"),
        ([0.2, 1.8], [1, 0], r"outputs contains 1.8; expected probabilities .* from_logits=True"),
        ([0.2, math.nan], [1, 0], r"outputs contains 1 NaN value\(s\)"),
        ([0.2, 0.8], [1], r"got 2 outputs \(shape \(2,\)\) but 1 targets"),
        ([], [], r"outputs is empty"),
    ],
)
def test_bad_batches_raise_clear_errors(
    cls: type[Any], outputs: Any, targets: Any, message: str
) -> None:
    with pytest.raises(MetricError, match=rf"{cls.__name__}\.process_batch: {message}"):
        cls().process_batch(outputs, targets)


def test_aggregate_errors() -> None:
    with pytest.raises(MetricError, match=r"ROCAUC\.aggregate: nothing was processed"):
        ROCAUC.aggregate([ROCAUC()])
    with pytest.raises(MetricError, match=r"different n_bins \[16, 65536\]"):
        ROCAUC.aggregate([ROCAUC(), ROCAUC(n_bins=16)])
    with pytest.raises(MetricError, match=r"n_bins must be an integer >= 1, got 0"):
        ROCAUC(n_bins=0)
    with pytest.raises(MetricError, match=r"tolerance must be a number >= 0, got -1"):
        AveragePrecision(tolerance=-1)

"""The regression metrics against scikit-learn and scipy, and their streaming numerics."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from helpers import PROPERTY, by_batch, by_record, by_shards
from hypothesis import assume, given
from hypothesis import strategies as st
from neuronperf_metrics_extra import (
    ExplainedVariance,
    MaxError,
    MeanAbsolutePercentageError,
    PearsonCorrelation,
    R2Score,
    RootMeanSquaredError,
    _chunks,
)
from scipy import stats
from sklearn import metrics as skm

from neuronperf_core.errors import MetricError, UndefinedMetricWarning


def pearson(targets: Any, outputs: Any) -> float:
    return float(stats.pearsonr(outputs, targets).statistic)


# (metric class, reference function of (targets, outputs))
METRICS: list[tuple[type[Any], Callable[[Any, Any], float]]] = [
    (RootMeanSquaredError, skm.root_mean_squared_error),
    (MeanAbsolutePercentageError, skm.mean_absolute_percentage_error),
    (MaxError, skm.max_error),
    (R2Score, skm.r2_score),
    (ExplainedVariance, skm.explained_variance_score),
    (PearsonCorrelation, pearson),
]
ALL = [cls for cls, _ in METRICS]
parametrize_metrics = pytest.mark.parametrize(
    ("cls", "reference"), METRICS, ids=[c.__name__ for c in ALL]
)
finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


def spread(values: np.ndarray) -> bool:
    """Not (nearly) constant: a constant makes R2, explained variance and r ill-conditioned."""
    return float(np.std(values)) > 1e-3 * (1.0 + float(np.abs(values).max()))


@parametrize_metrics
@PROPERTY
@given(pairs=st.lists(st.tuples(finite, finite), min_size=2, max_size=60))
def test_scalar_records_match_the_reference(
    cls: type[Any], reference: Callable[[Any, Any], float], pairs: list[tuple[float, float]]
) -> None:
    """One batch, record by record and in 3 shards: the reference's value."""
    outputs = np.array([o for o, _ in pairs])
    targets = np.array([t for _, t in pairs])
    assume(spread(outputs) and spread(targets))
    expected = reference(targets, outputs)
    for value in (
        by_batch(cls, outputs, targets),
        by_record(cls, outputs.tolist(), targets.tolist()),
        by_shards(cls, outputs, targets, 3),
    ):
        assert isinstance(value, float)
        assert value == pytest.approx(expected, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize(
    ("cls", "reference"),
    [
        (R2Score, skm.r2_score),
        (ExplainedVariance, skm.explained_variance_score),
        (MeanAbsolutePercentageError, skm.mean_absolute_percentage_error),
        (RootMeanSquaredError, lambda t, o: math.sqrt(skm.mean_squared_error(t, o))),
        (MaxError, lambda t, o: float(np.abs(t - o).max())),
    ],
    ids=lambda x: getattr(x, "__name__", ""),
)
def test_records_of_several_outputs(cls: type[Any], reference: Callable[[Any, Any], float]) -> None:
    """(N, 3) and (N, 2, 2) records: per output then averaged (R2, explained variance), or
    over every element (the others)."""
    rng = np.random.default_rng(0)
    for shape in [(5000, 3), (5000, 2, 2)]:
        targets = rng.normal(2.0, 3.0, shape)
        outputs = targets + rng.normal(0.5, 1.0, shape) * np.arange(1, shape[-1] + 1)
        expected = reference(targets.reshape(5000, -1), outputs.reshape(5000, -1))
        assert by_batch(cls, outputs, targets) == pytest.approx(expected, rel=1e-12)
        assert by_shards(cls, outputs, targets, 7) == pytest.approx(expected, rel=1e-12)
        assert by_record(cls, outputs[:100], targets[:100]) == pytest.approx(
            reference(targets[:100].reshape(100, -1), outputs[:100].reshape(100, -1)), rel=1e-12
        )


@pytest.mark.parametrize("cls", [R2Score, ExplainedVariance, PearsonCorrelation])
def test_a_large_offset_loses_no_digits(cls: type[Any]) -> None:
    """Values near 1e9 with a spread of 1: sums of squares would cancel catastrophically
    (var = E[x^2] - E[x]^2 keeps no correct digit); Chan's merged moments stay exact."""
    rng = np.random.default_rng(1)
    targets = 1e9 + rng.normal(0.0, 1.0, 100_000)
    outputs = targets + rng.normal(0.0, 0.5, 100_000)
    centred = dict(METRICS)[cls](targets - 1e9, outputs - 1e9)  # the same value, well scaled
    metric = cls()
    for part in np.array_split(np.arange(100_000), 1000):  # many small batches
        metric.process_batch(outputs[part], targets[part])
    assert cls.aggregate([metric]) == pytest.approx(centred, rel=1e-7)


def large_batch(kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(outputs, targets) of a few chunks: targets in [1, 2) ("float"), as float32, as
    integers, near 1e8 with a spread of 1 ("offset"), with zeros and signs mixed
    ("mixed"), or outputs with a bias 100 times their spread ("biased")."""
    rng = np.random.default_rng(11)
    n = 3 * _chunks.CHUNK + 4321
    targets = 1.0 + rng.random(n)
    if kind == "offset":
        targets = 1e8 + rng.normal(0.0, 1.0, n)
    elif kind == "integers":
        targets = rng.integers(1, 100, n)
    elif kind == "mixed":
        targets = rng.normal(0.0, 1.0, n)
        targets[::1000] = 0.0
    outputs = targets + rng.normal(0.0, 0.5, n)
    if kind == "biased":
        outputs = targets + rng.normal(50.0, 0.5, n)
    if kind == "float32":
        return outputs.astype(np.float32), targets.astype(np.float32)
    return outputs, targets


@parametrize_metrics
@pytest.mark.parametrize("kind", ["float", "float32", "integers", "offset", "mixed", "biased"])
def test_batches_of_several_chunks_match_the_reference(
    cls: type[Any], reference: Callable[[Any, Any], float], kind: str
) -> None:
    """Chunked sums, the raw and the two-pass moments, any dtype: the reference's value."""
    outputs, targets = large_batch(kind)
    expected = reference(targets.astype(np.float64), outputs.astype(np.float64))
    assert by_batch(cls, outputs, targets) == pytest.approx(expected, rel=1e-12)


@parametrize_metrics
def test_nan_in_a_later_chunk_is_located(
    cls: type[Any], reference: Callable[[Any, Any], float]
) -> None:
    outputs, targets = large_batch("float")
    index = 2 * _chunks.CHUNK + 5
    outputs[index] = math.nan
    with pytest.raises(
        MetricError, match=rf"outputs contains 1 NaN value\(s\) \(first at index \({index},"
    ):
        cls().process_batch(outputs, targets)


def test_constant_targets_follow_sklearn_force_finite() -> None:
    assert by_batch(R2Score, [2.0, 2.0], [2.0, 2.0]) == skm.r2_score([2.0, 2.0], [2.0, 2.0]) == 1.0
    assert by_batch(R2Score, [1.0, 3.0], [2.0, 2.0]) == skm.r2_score([2.0, 2.0], [1.0, 3.0]) == 0.0
    assert by_batch(ExplainedVariance, [1.0, 3.0], [2.0, 2.0]) == 0.0


@pytest.mark.parametrize("cls", [R2Score, ExplainedVariance, PearsonCorrelation])
def test_a_single_record_is_undefined(cls: type[Any]) -> None:
    with pytest.warns(UndefinedMetricWarning, match="undefined for a single record"):
        assert math.isnan(by_batch(cls, [1.0], [2.0]))


def test_pearson_of_a_constant_is_nan() -> None:
    with pytest.warns(UndefinedMetricWarning, match="outputs or targets are constant"):
        assert math.isnan(by_batch(PearsonCorrelation, [1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))


def test_state_does_not_grow_with_records() -> None:
    metric = R2Score()
    rng = np.random.default_rng(2)
    for _ in range(10):
        metric.process_batch(rng.random((10_000, 4)), rng.random((10_000, 4)))
    assert metric.targets.count == 100_000
    for array in (metric.targets.mean, metric.targets.m2, metric.squares):
        assert array.shape == (4,)
    pearson = PearsonCorrelation()
    for _ in range(10):
        pearson.process_batch(rng.random(10_000), rng.random(10_000))
    assert pearson.moments.count == 100_000 and pearson.moments.c_xy.shape == (1,)


@pytest.mark.parametrize("cls", ALL)
def test_aggregate_leaves_the_instances_as_they_were(cls: type[Any]) -> None:
    """aggregate merges copies: asking twice, or after more records, stays right."""
    rng = np.random.default_rng(4)
    outputs, targets = rng.random(300), rng.random(300)
    a, b = cls(), cls()
    a.process_batch(outputs[:100], targets[:100])
    b.process_batch(outputs[100:200], targets[100:200])
    first = cls.aggregate([a, b])
    assert cls.aggregate([a, b]) == first
    a.process_batch(outputs[200:], targets[200:])
    assert cls.aggregate([a, b]) == pytest.approx(by_batch(cls, outputs, targets), rel=1e-12)


@pytest.mark.parametrize("cls", ALL)
@pytest.mark.parametrize(
    ("outputs", "targets", "message"),
    [
        ([1.0, math.nan], [1.0, 2.0], r"outputs contains 1 NaN value\(s\)"),
        ([1.0, 2.0], [math.inf, 2.0], r"targets contains 1 infinite value\(s\)"),
        ([1.0, 2.0, 3.0], [1.0, 2.0], r"outputs has shape \(3,\) but targets has shape \(2,\)"),
        ([], [], r"outputs is empty"),
        (1.0, 2.0, r"outputs has shape \(\) and targets shape \(\); a batch needs a leading"),
        (["a", "b"], [1.0, 2.0], r"outputs contains strings"),
    ],
)
def test_bad_batches_raise_clear_errors(
    cls: type[Any], outputs: Any, targets: Any, message: str
) -> None:
    with pytest.raises(MetricError, match=rf"{cls.__name__}\.process_batch: {message}"):
        cls().process_batch(outputs, targets)


@pytest.mark.parametrize("cls", ALL)
def test_bad_records_and_empty_aggregates_raise(cls: type[Any]) -> None:
    with pytest.raises(MetricError, match=rf"{cls.__name__}\.process_record: output is None"):
        cls().process_record(None, 1.0)
    with pytest.raises(MetricError, match=rf"{cls.__name__}\.aggregate: nothing was processed"):
        cls.aggregate([cls()])


def test_overflow_is_an_error_not_inf() -> None:
    for cls in ALL:
        with pytest.raises(MetricError, match="overflowed float64"):
            cls().process_batch([1e308, -1e308], [-1e308, 1e308])


def test_pearson_takes_scalar_records_only() -> None:
    with pytest.raises(MetricError, match=r"records have 2 elements; PearsonCorrelation scores"):
        PearsonCorrelation().process_batch([[1.0, 2.0]], [[1.0, 2.0]])


def test_records_must_keep_one_shape() -> None:
    metric = R2Score()
    metric.process_batch([[1.0, 2.0]], [[1.0, 2.0]])
    with pytest.raises(MetricError, match=r"records have 3 element\(s\), earlier ones 2"):
        metric.process_batch([[1.0, 2.0, 3.0]], [[1.0, 2.0, 3.0]])
    other = R2Score()
    other.process_batch([1.0], [1.0])
    with pytest.raises(
        MetricError, match=r"aggregate: records have 1 element\(s\), earlier ones 2"
    ):
        R2Score.aggregate([metric, other])

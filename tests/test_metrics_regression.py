"""MeanAbsoluteError and MeanSquaredError, against scikit-learn."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn import metrics as skm

from neuronperf_core.errors import MetricError
from neuronperf_core.metrics.classification import Accuracy
from neuronperf_core.metrics.regression import (
    MeanAbsoluteError,
    MeanErrorMetric,
    MeanSquaredError,
)

PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
METRICS: dict[type[MeanErrorMetric], Callable[..., Any]] = {
    MeanAbsoluteError: skm.mean_absolute_error,
    MeanSquaredError: skm.mean_squared_error,
}
finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
parametrize_metrics = pytest.mark.parametrize(
    ("cls", "sk_function"), list(METRICS.items()), ids=lambda x: getattr(x, "__name__", "")
)


@parametrize_metrics
@PROPERTY
@given(pairs=st.lists(st.tuples(finite, finite | st.integers(-1000, 1000)), min_size=1))
def test_scalars_match_sklearn(
    cls: type[MeanErrorMetric], sk_function: Callable[..., Any], pairs: list[tuple[Any, Any]]
) -> None:
    outputs, targets = [p[0] for p in pairs], [p[1] for p in pairs]
    by_record, by_batch = cls(), cls()
    for output, target in pairs:
        by_record.process_record(output, target)
    by_batch.process_batch(outputs, targets)
    expected = float(sk_function(targets, outputs))
    for metric in (by_record, by_batch):
        value = cls.aggregate([metric])
        assert isinstance(value, float)
        assert value == pytest.approx(expected, rel=1e-9, abs=1e-9)


@parametrize_metrics
@PROPERTY
@given(
    data=st.data(),
    shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=4),
    n=st.integers(1, 8),
)
def test_arrays_match_sklearn(
    cls: type[MeanErrorMetric],
    sk_function: Callable[..., Any],
    data: st.DataObject,
    shape: tuple[int, ...],
    n: int,
) -> None:
    """Records of any shape: the mean over every element of every record."""
    outputs = data.draw(hnp.arrays(np.float64, (n, *shape), elements=finite))
    targets = data.draw(
        hnp.arrays(np.float32, (n, *shape), elements=st.floats(-1e3, 1e3, width=32))
    )
    by_record, by_batch = cls(), cls()
    for output, target in zip(outputs, targets, strict=True):
        by_record.process_record(output, target)
    by_batch.process_batch(outputs, targets)
    # scikit-learn's uniform average over output columns = the mean over all elements
    expected = float(sk_function(targets.reshape(n, -1), outputs.reshape(n, -1)))
    assert cls.aggregate([by_record]) == pytest.approx(expected, rel=1e-9, abs=1e-9)
    assert cls.aggregate([by_batch]) == pytest.approx(expected, rel=1e-9, abs=1e-9)
    assert by_batch.count == outputs.size


@parametrize_metrics
@PROPERTY
@given(data=st.data(), k=st.integers(1, 5))
def test_shards_aggregate_to_the_single_pass(
    cls: type[MeanErrorMetric], sk_function: Callable[..., Any], data: st.DataObject, k: int
) -> None:
    values = data.draw(st.lists(st.tuples(finite, finite), min_size=1, max_size=40))
    assignment = data.draw(st.lists(st.integers(0, k - 1), min_size=len(values)))
    single, shards = cls(), [cls() for _ in range(k)]
    for output, target in values:
        single.process_record(output, target)
    for i, shard in enumerate(shards):
        rows = [values[j] for j, s in enumerate(assignment[: len(values)]) if s == i]
        if rows and i % 2:
            shard.process_batch([r[0] for r in rows], [r[1] for r in rows])
        for output, target in rows if i % 2 == 0 else []:
            shard.process_record(output, target)
    assert cls.aggregate(shards) == pytest.approx(cls.aggregate([single]), rel=1e-12, abs=1e-12)


def test_hand_computed_values() -> None:
    mae, mse = MeanAbsoluteError(), MeanSquaredError()
    for metric in (mae, mse):
        metric.process_record(3, 1)  # error 2
        metric.process_record(np.array([1.0, -1.0]), np.array([0.0, 0.0]))  # errors 1, 1
        metric.process_batch(np.array([[0.5], [2.0]]), np.array([[1.0], [2.0]]))  # 0.5, 0
    assert MeanAbsoluteError.aggregate([mae]) == pytest.approx((2 + 1 + 1 + 0.5 + 0) / 5)
    assert MeanSquaredError.aggregate([mse]) == pytest.approx((4 + 1 + 1 + 0.25 + 0) / 5)


def test_integer_inputs_do_not_wrap_around() -> None:
    """uint8 0 - 1 must be -1, not 255: differences are taken in float64."""
    metric = MeanAbsoluteError()
    metric.process_batch(np.array([0, 0], dtype=np.uint8), np.array([1, 255], dtype=np.uint8))
    metric.process_record(np.int8(-128), np.int8(127))
    metric.process_record(True, False)
    assert MeanAbsoluteError.aggregate([metric]) == pytest.approx((1 + 255 + 255 + 1) / 4)


def test_large_python_ints_are_exact() -> None:
    metric = MeanSquaredError()
    metric.process_record(10**15 + 1, 10**15)
    assert MeanSquaredError.aggregate([metric]) == 1.0
    with pytest.raises(MetricError, match=r"process_record: the error of output 1000.* float64"):
        metric.process_record(10**400, 0)
    assert metric.count == 1


@pytest.mark.parametrize("cls", list(METRICS), ids=lambda c: c.__name__)
@pytest.mark.parametrize(
    ("output", "target", "message"),
    [
        (math.nan, 1.0, r"output contains 1 NaN value\(s\); expected finite values"),
        (1.0, math.inf, r"target contains 1 infinite value\(s\); expected finite values"),
        (
            np.array([1.0, np.nan, np.inf]),
            np.zeros(3),
            r"output contains 1 NaN, 1 infinite value\(s\) \(first at index \(1,\)\)",
        ),
        ([1.0, 2.0], [1.0], r"output has shape \(2,\) but target has shape \(1,\).*reshape"),
        ([[1.0, 2.0]], [1.0, 2.0], r"output has shape \(1, 2\) but target has shape \(2,\)"),
        (1.0, [1.0], r"output has shape \(\) but target has shape \(1,\)"),
        ([], [], r"output is empty"),
        (None, 1.0, r"output is None"),
        (1.0, "2.0", r"target is a str"),
        ([1.0, None], [1.0, 2.0], r"output contains a non-numeric element None"),
    ],
)
def test_process_record_errors(
    cls: type[MeanErrorMetric], output: Any, target: Any, message: str
) -> None:
    metric = cls()
    with pytest.raises(MetricError, match=f"{cls.__name__}.process_record: {message}"):
        metric.process_record(output, target)
    assert metric.count == 0 and metric.sum == 0.0  # a rejected record leaves no trace


@pytest.mark.parametrize("cls", list(METRICS), ids=lambda c: c.__name__)
@pytest.mark.parametrize(
    ("outputs", "targets", "message"),
    [
        (np.zeros((4, 1)), np.zeros(4), r"outputs has shape \(4, 1\) but targets has shape \(4,\)"),
        (np.zeros(3), np.zeros(4), r"outputs has shape \(3,\) but targets has shape \(4,\)"),
        (
            1.0,
            1.0,
            r"outputs has shape \(\) and targets shape \(\); a batch needs a leading axis N",
        ),
        (np.zeros((0, 3)), np.zeros((0, 3)), r"outputs is empty \(shape \(0, 3\)\)"),
        ([1.0, math.nan], [1.0, 2.0], r"outputs contains 1 NaN value\(s\)"),
        ([1.0, 2.0], [1.0, -math.inf], r"targets contains 1 infinite value\(s\)"),
    ],
)
def test_process_batch_errors(
    cls: type[MeanErrorMetric], outputs: Any, targets: Any, message: str
) -> None:
    metric = cls()
    with pytest.raises(MetricError, match=f"{cls.__name__}.process_batch: {message}"):
        metric.process_batch(outputs, targets)
    assert metric.count == 0 and metric.sum == 0.0  # a rejected batch leaves no trace


def test_overflowing_squares_are_an_error_not_inf() -> None:
    metric = MeanSquaredError()
    metric.process_record(1e300, -1e300)  # the fast path: (2e300)^2 overflows
    with pytest.raises(MetricError, match=r"MeanSquaredError.aggregate: the sum of errors is inf"):
        MeanSquaredError.aggregate([metric])
    batch = MeanSquaredError()
    with pytest.raises(MetricError, match=r"process_batch: the sum of errors overflowed float64"):
        batch.process_batch([1e300], [-1e300])
    mae = MeanAbsoluteError()
    mae.process_record(1e300, -1e300)  # |diff| = 2e300 still fits in float64
    assert MeanAbsoluteError.aggregate([mae]) == 2e300


@pytest.mark.parametrize("cls", list(METRICS), ids=lambda c: c.__name__)
def test_aggregate_errors(cls: type[MeanErrorMetric]) -> None:
    with pytest.raises(MetricError, match=r"nothing was processed"):
        cls.aggregate([cls()])
    with pytest.raises(MetricError, match=r"got no metric instances"):
        cls.aggregate([])
    other = MeanSquaredError if cls is MeanAbsoluteError else MeanAbsoluteError
    first, second = cls(), other()
    first.process_record(1.0, 2.0)
    second.process_record(1.0, 2.0)
    with pytest.raises(MetricError, match=rf"got a {other.__name__} among {cls.__name__}"):
        cls.aggregate([first, second])
    accuracy = Accuracy()
    accuracy.process_record(1, 1)
    with pytest.raises(MetricError, match=rf"{cls.__name__}.aggregate got a Accuracy"):
        cls.aggregate([accuracy])

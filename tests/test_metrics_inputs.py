"""Input conversion of the built-in metrics: scalars, lists, arrays, tensors, bad input."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from neuronperf_core.errors import MetricError
from neuronperf_core.metrics.classification import Accuracy, F1Score, PositivePredictiveValue
from neuronperf_core.metrics.inputs import (
    batch_labels,
    check_finite,
    is_tensor,
    output_label,
    regression_pair,
    scalar_label,
    target_label,
    to_numpy,
)
from neuronperf_core.metrics.regression import MeanAbsoluteError, MeanSquaredError

W = "Metric.process_batch"


class FakeTensor:
    """Duck-types a torch tensor: detach(), cpu(), numpy(), float().

    ``bfloat16=True`` makes numpy() fail like torch does for dtypes numpy lacks.
    """

    def __init__(self, data: Any, bfloat16: bool = False) -> None:
        self.data = np.asarray(data)
        self.bfloat16 = bfloat16
        self.calls: list[str] = []

    def detach(self) -> FakeTensor:
        self.calls.append("detach")
        return self

    def cpu(self) -> FakeTensor:
        self.calls.append("cpu")
        return self

    def numpy(self) -> np.ndarray:
        if self.bfloat16:
            raise TypeError("Got unsupported ScalarType BFloat16")
        return self.data

    def float(self) -> FakeTensor:
        return FakeTensor(self.data.astype(np.float32))


# ---------------------------------------------------------------------------
# to_numpy


@pytest.mark.parametrize(
    ("value", "shape", "kind"),
    [
        (3, (), "i"),
        (2.5, (), "f"),
        (True, (), "b"),
        ([1, 2, 3], (3,), "i"),
        ((1.0, 2.0), (2,), "f"),
        ([[1, 2], [3, 4]], (2, 2), "i"),
        (np.arange(6, dtype=np.uint8).reshape(2, 3), (2, 3), "u"),
        (np.float16(1.5), (), "f"),
    ],
)
def test_to_numpy_accepts_numbers_lists_and_arrays(
    value: Any, shape: tuple[int, ...], kind: str
) -> None:
    arr = to_numpy(value, W, "outputs")
    assert arr.shape == shape and arr.dtype.kind == kind
    np.testing.assert_array_equal(arr, np.asarray(value))


def test_to_numpy_does_not_copy_numpy_input() -> None:
    arr = np.arange(5)
    assert to_numpy(arr, W, "outputs") is arr


def test_fake_tensors_are_detached_moved_to_cpu_and_converted() -> None:
    tensor = FakeTensor([[0.1, 0.9], [0.8, 0.2]])
    assert is_tensor(tensor) and not is_tensor(np.zeros(2)) and not is_tensor([1])
    arr = to_numpy(tensor, W, "outputs")
    assert tensor.calls == ["detach", "cpu"]
    np.testing.assert_array_equal(arr, [[0.1, 0.9], [0.8, 0.2]])


def test_tensors_of_a_dtype_numpy_lacks_go_through_float() -> None:
    arr = to_numpy(FakeTensor([1.5, 2.0], bfloat16=True), W, "outputs")
    assert arr.dtype == np.float32
    np.testing.assert_array_equal(arr, [1.5, 2.0])


def test_lists_of_tensors_are_stacked() -> None:
    arr = to_numpy([FakeTensor([1.0, 0.0]), FakeTensor([0.0, 1.0], bfloat16=True)], W, "outputs")
    np.testing.assert_array_equal(arr, [[1.0, 0.0], [0.0, 1.0]])


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, r"outputs is None; expected a number.*dataset yields a target"),
        ("cat", r"outputs is a str \('cat'\); expected a number.*integer ids"),
        (b"\x01", r"outputs is a bytes"),
        (["a", "b"], r"outputs contains strings; expected real numbers"),
        ([1, None], r"outputs contains a non-numeric element None at flat index 1"),
        ([1, "2"], r"outputs contains strings"),
        ({"a": 1}, r"outputs contains a non-numeric element \{'a': 1\}"),
        ([1 + 1j], r"outputs contains complex numbers"),
        ([2**70], r"outputs contains values of Python object dtype"),
        (
            np.array(["2020-01-01"], dtype="datetime64[D]"),
            r"outputs contains values of dtype datetime64\[D\]",
        ),
        ([[1, 2], [3]], r"outputs could not be read as a numeric array.*ragged"),
        ([], r"outputs is empty \(shape \(0,\)\); expected at least one value"),
        (np.zeros((3, 0)), r"outputs is empty \(shape \(3, 0\)\)"),
    ],
)
def test_to_numpy_rejects_what_is_not_numeric(value: Any, message: str) -> None:
    with pytest.raises(MetricError, match=f"{W}: {message}"):
        to_numpy(value, W, "outputs")


# ---------------------------------------------------------------------------
# check_finite


def test_check_finite_reports_counts_and_the_first_index() -> None:
    arr = np.array([[1.0, 2.0], [np.nan, np.inf]])
    with pytest.raises(
        MetricError, match=r"x contains 1 NaN, 1 infinite value\(s\) \(first at index \(1, 0\)\)"
    ):
        check_finite(arr, W, "x")
    with pytest.raises(MetricError, match=r"x contains 1 NaN value\(s\).*expected no NaN"):
        check_finite(arr, W, "x", allow_inf=True)
    check_finite(np.array([1.0, np.inf]), W, "x", allow_inf=True)
    check_finite(np.array([1, 2]), W, "x")  # integers are always finite
    with pytest.raises(MetricError, match=r"x contains 1 infinite value\(s\); expected finite"):
        check_finite(np.array(-np.inf), W, "x")


# ---------------------------------------------------------------------------
# Labels


@pytest.mark.parametrize(
    ("value", "label"),
    [
        (3, 3),
        (-2, -2),
        (np.int16(7), 7),
        (np.uint64(2**63 + 1), 2**63 + 1),
        (4.0, 4),
        (np.float32(5.0), 5),
        (True, 1),
        (np.bool_(False), 0),
        (np.array(6), 6),
        (FakeTensor(8), 8),
        (FakeTensor(2.0, bfloat16=True), 2),
    ],
)
def test_scalar_labels(value: Any, label: int) -> None:
    result = scalar_label(value, W, "target")
    assert result == label and type(result) is int
    assert target_label(value, W) == label
    assert output_label(value, W) == label


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (2.5, r"target is 2.5, which is not an integer-valued class label.*int\(p > 0.5\)"),
        (math.nan, r"target is NaN; expected an integer class label"),
        (-math.inf, r"target is -inf; expected an integer class label"),
        (np.array([1, 2]), r"target has shape \(2,\); expected a scalar class label"),
        (None, r"target is None"),
    ],
)
def test_scalar_label_errors(value: Any, message: str) -> None:
    with pytest.raises(MetricError, match=f"{W}: {message}"):
        scalar_label(value, W, "target")


def test_output_score_vectors_give_their_argmax() -> None:
    assert output_label([0.1, 0.5, 0.4], W) == 1
    assert output_label(np.array([3, 9, 9]), W) == 1  # first of a tie
    assert output_label(FakeTensor([0.0, -1.0]), W) == 0
    assert output_label(FakeTensor([0.0, 1.0], bfloat16=True), W) == 1
    assert output_label((-np.inf, 0.0), W) == 1


def test_batch_labels_from_labels_and_scores() -> None:
    pred, true = batch_labels([1.0, 0.0, 2.0], np.array([1, 1, 2], dtype=np.uint8), W)
    assert pred.dtype == np.int64 and true.dtype == np.int64
    assert pred.tolist() == [1, 0, 2] and true.tolist() == [1, 1, 2]
    pred, _ = batch_labels(FakeTensor([[0.2, 0.8], [0.9, 0.1]]), FakeTensor([1, 0]), W)
    assert pred.tolist() == [1, 0]
    pred, true = batch_labels(np.array([True, False]), [False, False], W)
    assert pred.tolist() == [1, 0] and true.tolist() == [0, 0]


@pytest.mark.parametrize(
    ("outputs", "targets", "message"),
    [
        ([1, 2], [1, 2, 3], r"got 2 outputs \(shape \(2,\)\) but 3 targets \(shape \(3,\)\)"),
        ([1.5, 2.0], [1, 2], r"outputs contains values that are not integer class labels"),
        ([1e19, 2.0], [1, 2], r"outputs contains labels beyond the int64 range"),
        ([1, 2], np.array([2**63, 1], dtype=np.uint64), r"targets contains labels beyond"),
        ([1, 2], [1.0, math.inf], r"targets contains 1 infinite value\(s\)"),
    ],
)
def test_batch_label_errors(outputs: Any, targets: Any, message: str) -> None:
    with pytest.raises(MetricError, match=f"{W}: {message}"):
        batch_labels(outputs, targets, W)


# ---------------------------------------------------------------------------
# Regression pairs


def test_regression_pairs_keep_shapes_and_reject_broadcasting() -> None:
    out, tgt = regression_pair([[1.0, 2.0]], FakeTensor([[1.0, 3.0]]), W, batch=True)
    assert out.shape == tgt.shape == (1, 2)
    out, tgt = regression_pair(2.0, 3, "R.process_record", batch=False)
    assert out.shape == tgt.shape == ()
    with pytest.raises(MetricError, match=r"output has shape \(1,\) but target has shape \(\)"):
        regression_pair([2.0], 3.0, "R.process_record", batch=False)
    with pytest.raises(MetricError, match=r"a batch needs a leading axis N"):
        regression_pair(2.0, 3.0, W, batch=True)


# ---------------------------------------------------------------------------
# Real torch tensors (skipped without torch)


def test_real_torch_tensors() -> None:
    torch = pytest.importorskip("torch")
    logits = torch.tensor([[0.1, 2.0, 0.3], [1.5, 0.2, 0.1], [0.0, 0.1, 0.9]], requires_grad=True)
    targets = torch.tensor([1, 0, 0])
    for cls in (Accuracy, F1Score):
        kwargs = {} if cls is Accuracy else {"average": "macro", "zero_division": 0}
        from_torch, from_numpy, by_record = cls(**kwargs), cls(**kwargs), cls(**kwargs)
        from_torch.process_batch(logits, targets)
        from_numpy.process_batch(logits.detach().numpy(), targets.numpy())
        for row, target in zip(logits, targets, strict=True):
            by_record.process_record(row, target)  # 1-D and 0-d tensors
        assert cls.aggregate([from_torch]) == cls.aggregate([from_numpy])
        assert cls.aggregate([by_record]) == cls.aggregate([from_numpy])

    # bfloat16 (numpy has no such dtype) and half precision
    metric = PositivePredictiveValue(average="micro")  # 3 classes: micro precision = accuracy
    metric.process_batch(logits.detach().to(torch.bfloat16), targets.to(torch.float16))
    metric.process_record(torch.tensor(1.0, dtype=torch.bfloat16), torch.tensor(1))
    assert PositivePredictiveValue.aggregate([metric]) == 3 / 4

    mse, mae = MeanSquaredError(), MeanAbsoluteError()
    preds = torch.tensor([[1.0, 2.0], [3.0, 5.0]], dtype=torch.bfloat16)
    truth = torch.tensor([[1.0, 1.0], [3.0, 3.0]])
    mse.process_batch(preds, truth)
    mae.process_record(preds[1], truth[1])
    assert MeanSquaredError.aggregate([mse]) == pytest.approx((1 + 4) / 4)
    assert MeanAbsoluteError.aggregate([mae]) == pytest.approx(2 / 2)

    with pytest.raises(MetricError, match=r"outputs contains 1 NaN"):
        Accuracy().process_batch(torch.tensor([[0.0, float("nan")]]), torch.tensor([1]))
    with pytest.raises(MetricError, match=r"targets contains complex numbers"):
        Accuracy().process_batch(torch.tensor([1]), torch.tensor([1 + 1j]))

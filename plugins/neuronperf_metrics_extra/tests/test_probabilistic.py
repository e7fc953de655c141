"""LogLoss against scikit-learn, ExpectedCalibrationError against torchmetrics and by hand."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from helpers import PROPERTY, by_batch, by_record, by_shards
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from neuronperf_metrics_extra import ExpectedCalibrationError, LogLoss
from scipy.special import expit, softmax
from sklearn import metrics as skm

from neuronperf_core.errors import MetricError

# -- LogLoss -------------------------------------------------------------------------


@PROPERTY
@given(pairs=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 1)), min_size=1, max_size=50))
def test_log_loss_of_binary_probabilities_matches_sklearn(pairs: list[tuple[float, int]]) -> None:
    """Probabilities of the positive class, 0 and 1 included (clipped as scikit-learn does)."""
    p = np.array([x for x, _ in pairs])
    y = np.array([t for _, t in pairs])
    expected = skm.log_loss(y, p, labels=[0, 1])
    assert by_batch(LogLoss, p, y) == pytest.approx(expected, rel=1e-12)
    assert by_record(LogLoss, p.tolist(), y.tolist()) == pytest.approx(expected, rel=1e-12)
    assert by_shards(LogLoss, p, y, 4) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("n_classes", [2, 3, 10])
def test_log_loss_of_class_probabilities_matches_sklearn(n_classes: int) -> None:
    rng = np.random.default_rng(n_classes)
    y = rng.integers(0, n_classes, 5000)
    p = rng.dirichlet(np.ones(n_classes), 5000)
    expected = skm.log_loss(y, p, labels=list(range(n_classes)))
    assert by_batch(LogLoss, p, y) == pytest.approx(expected, rel=1e-12)
    assert by_shards(LogLoss, p, y, 6) == pytest.approx(expected, rel=1e-12)
    assert by_record(LogLoss, p[:50], y[:50]) == pytest.approx(
        skm.log_loss(y[:50], p[:50], labels=list(range(n_classes))), rel=1e-12
    )


@PROPERTY
@given(
    logits=hnp.arrays(
        np.float64, st.tuples(st.integers(1, 20), st.integers(2, 5)), elements=st.floats(-10, 10)
    ),
    data=st.data(),
)
def test_log_loss_of_logits_matches_sklearn_on_their_softmax(
    logits: np.ndarray, data: st.DataObject
) -> None:
    n, c = logits.shape
    y = np.array(data.draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    expected = skm.log_loss(y, softmax(logits, axis=1), labels=list(range(c)))
    assert by_batch(LogLoss, logits, y, from_logits=True) == pytest.approx(expected, rel=1e-9)
    binary = logits[:, 0]
    expected = skm.log_loss(y % 2, expit(binary), labels=[0, 1])
    assert by_batch(LogLoss, binary, y % 2, from_logits=True) == pytest.approx(expected, rel=1e-9)


def test_log_loss_of_extreme_logits_is_exact_not_clipped() -> None:
    """-log(sigmoid(-800)) = 800: computed in log space, without overflow or clipping."""
    assert by_batch(LogLoss, [-800.0], [1], from_logits=True) == pytest.approx(800.0)
    assert by_batch(LogLoss, [[0.0, 800.0]], [0], from_logits=True) == pytest.approx(800.0)
    assert by_batch(LogLoss, [0.0], [1]) == pytest.approx(-math.log(np.finfo(float).eps))


@pytest.mark.parametrize(
    ("outputs", "targets", "options", "message"),
    [
        (
            [2.5, 0.1],
            [1, 0],
            {},
            r"outputs contains 2.5; expected probabilities in \[0, 1\]\. "
            r"If these are logits .* from_logits=True",
        ),
        ([[0.6, 0.6]], [0], {}, r"row 0 of outputs sums to 1.2; expected per-class probabilities"),
        ([0.2, 0.9], [1, 2], {}, r"targets contains 2 at index 1; expected class ids 0 \.\. 1"),
        ([[0.5, 0.5]], [0.5], {}, r"targets contains 0.5 at index 0; expected class ids"),
        ([0.2, math.nan], [1, 0], {}, r"outputs contains 1 NaN value\(s\)"),
        ([0.2, 0.3], [1, math.nan], {}, r"targets contains 1 NaN value\(s\)"),
        ([0.2, 0.3], [1], {}, r"got 2 outputs \(shape \(2,\)\) but 1 targets"),
        (np.zeros((2, 2, 2)), [0, 1], {}, r"outputs has shape \(2, 2, 2\); expected \(N,\)"),
        ([0.2, 0.3], [[1], [0]], {}, r"targets has shape \(2, 1\); expected shape \(N,\)"),
        ([], [], {}, r"outputs is empty"),
        ([[0.7]], [1], {}, r"outputs has shape \(1, 1\): one score per record; .*ravel\(\)"),
        ([math.inf], [1], {"from_logits": True}, r"outputs contains 1 infinite value\(s\)"),
    ],
)
def test_log_loss_bad_batches_raise_clear_errors(
    outputs: Any, targets: Any, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(MetricError, match=rf"LogLoss\.process_batch: {message}"):
        LogLoss(**options).process_batch(outputs, targets)


def test_log_loss_bad_record_names_process_record() -> None:
    with pytest.raises(MetricError, match=r"LogLoss\.process_record: outputs contains 1.5"):
        LogLoss().process_record(1.5, 1)
    with pytest.raises(MetricError, match=r"LogLoss\.process_record: output is None"):
        LogLoss().process_record(None, 1)


def test_log_loss_aggregate_of_nothing_raises() -> None:
    with pytest.raises(MetricError, match=r"LogLoss\.aggregate: nothing was processed"):
        LogLoss.aggregate([LogLoss()])


# -- ExpectedCalibrationError -------------------------------------------------------------


def ece_by_hand(confidence: np.ndarray, correct: np.ndarray, n_bins: int) -> float:
    """The textbook formula, one bin at a time."""
    total = 0.0
    for b in range(n_bins):
        low, high = b / n_bins, (b + 1) / n_bins
        inside = (confidence >= low) & ((confidence < high) | (b == n_bins - 1))
        if inside.any():
            gap = abs(correct[inside].mean() - confidence[inside].mean())
            total += inside.mean() * gap
    return total


@pytest.mark.parametrize("n_bins", [1, 10, 15])
def test_ece_of_binary_probabilities_matches_the_formula(n_bins: int) -> None:
    rng = np.random.default_rng(n_bins)
    p = rng.random(10_000)
    y = (rng.random(10_000) < p**1.5).astype(int)  # miscalibrated on purpose
    expected = ece_by_hand(p, y.astype(float), n_bins)
    assert by_batch(ExpectedCalibrationError, p, y, n_bins=n_bins) == pytest.approx(expected)
    assert by_shards(ExpectedCalibrationError, p, y, 5, n_bins=n_bins) == pytest.approx(expected)
    small = ece_by_hand(p[:40], y[:40].astype(float), n_bins)
    assert by_record(ExpectedCalibrationError, p[:40], y[:40], n_bins=n_bins) == pytest.approx(
        small
    )


def test_ece_of_class_probabilities_matches_the_formula() -> None:
    rng = np.random.default_rng(7)
    logits = rng.normal(0, 2, (10_000, 5))
    y = rng.integers(0, 5, 10_000)
    p = softmax(logits, axis=1)
    expected = ece_by_hand(p.max(axis=1), (p.argmax(axis=1) == y).astype(float), 15)
    assert by_batch(ExpectedCalibrationError, p, y) == pytest.approx(expected, rel=1e-12)
    value = by_batch(ExpectedCalibrationError, logits, y, from_logits=True)
    assert value == pytest.approx(expected, rel=1e-12)


def test_ece_matches_torchmetrics() -> None:
    torch = pytest.importorskip("torch")
    tmf = pytest.importorskip("torchmetrics.functional.classification")
    rng = np.random.default_rng(8)
    p = rng.random(20_000)
    y = (rng.random(20_000) < p).astype(np.int64)
    expected = float(tmf.binary_calibration_error(torch.from_numpy(p), torch.from_numpy(y)))
    assert by_batch(ExpectedCalibrationError, p, y) == pytest.approx(expected, rel=1e-9)
    probs = rng.dirichlet(np.ones(4), 20_000)
    labels = rng.integers(0, 4, 20_000)
    expected = float(
        tmf.multiclass_calibration_error(
            torch.from_numpy(probs), torch.from_numpy(labels), num_classes=4
        )
    )  # torchmetrics computes this one in float32
    assert by_batch(ExpectedCalibrationError, probs, labels) == pytest.approx(expected, rel=1e-5)


def test_ece_is_zero_for_a_calibrated_constant_and_one_for_certain_mistakes() -> None:
    assert by_batch(ExpectedCalibrationError, [0.5] * 4, [0, 1, 0, 1]) == 0.0
    assert by_batch(ExpectedCalibrationError, [[1.0, 0.0], [0.0, 1.0]], [1, 0]) == 1.0


def test_ece_state_is_n_bins_numbers() -> None:
    metric = ExpectedCalibrationError(n_bins=15)
    rng = np.random.default_rng(9)
    for _ in range(10):
        metric.process_batch(rng.random(10_000), rng.integers(0, 2, 10_000))
    assert metric.count.shape == metric.confidence.shape == metric.correct.shape == (15,)
    assert int(metric.count.sum()) == 100_000


def test_ece_errors() -> None:
    with pytest.raises(MetricError, match=r"outputs contains -0.5; expected probabilities"):
        ExpectedCalibrationError().process_batch([-0.5], [0])
    with pytest.raises(MetricError, match=r"targets contains 4 at index 0; expected class ids"):
        ExpectedCalibrationError().process_batch([[0.5, 0.5]], [4])
    with pytest.raises(MetricError, match=r"n_bins must be an integer >= 1, got 0"):
        ExpectedCalibrationError(n_bins=0)
    a, b = ExpectedCalibrationError(n_bins=10), ExpectedCalibrationError(n_bins=15)
    with pytest.raises(MetricError, match=r"different n_bins \[10, 15\]"):
        ExpectedCalibrationError.aggregate([a, b])
    with pytest.raises(MetricError, match=r"nothing was processed"):
        ExpectedCalibrationError.aggregate([a])

"""Input checks this package needs beyond ``neuronperf_core.metrics.inputs``.

The core's helpers convert and check records (``to_numpy``, ``check_finite``,
``batch_labels``, ``regression_pair``, ...). The ones below add what the
probabilistic metrics need: scores of shape (N,) or (N, C), probabilities (or
logits turned into probabilities) and the class ids that go with them. Every
problem raises ``MetricError`` with a message that says what was wrong, what
was expected and what to do. ``where`` names the caller
(``"LogLoss.process_batch"``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from neuronperf_core.errors import MetricError
from neuronperf_core.metrics.inputs import check_finite, to_numpy

__all__ = [
    "batch_of_one",
    "probabilities",
    "score_targets",
    "scores",
    "sigmoid",
    "softmax",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

ROW_SUM_TOLERANCE = 1e-3  # catches logits and unnormalised scores, not rounding


def batch_of_one(value: Any, where: str, what: str) -> NDArray[Any]:
    """One record as a batch of one: ``value`` with a leading axis of length 1."""
    return to_numpy(value, where, what)[np.newaxis]


def scores(values: Any, where: str, what: str) -> FloatArray:
    """``values`` as finite float64 scores of shape (N,) or (N, C)."""
    arr = to_numpy(values, where, what)
    if arr.ndim not in (1, 2):
        raise MetricError(
            f"{where}: {what} has shape {arr.shape}; expected (N,) scores of the positive "
            "class or (N, C) per-class scores, one row per record."
        )
    if arr.ndim == 2 and arr.shape[1] < 2:
        raise MetricError(
            f"{where}: {what} has shape {arr.shape}: one score per record; expected (N,) "
            "scores of the positive class or (N, C) per-class scores with C >= 2. Pass "
            f"{what}.ravel() for binary scores."
        )
    check_finite(arr, where, what)
    return arr.astype(np.float64, copy=False)


def sigmoid(x: FloatArray) -> FloatArray:
    """The logistic function, without overflow for large ``|x|``."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def softmax(x: FloatArray) -> FloatArray:
    """Softmax over the last axis, shifted by the row maximum so that nothing overflows."""
    e: FloatArray = np.exp(x - x.max(axis=-1, keepdims=True))
    e /= e.sum(axis=-1, keepdims=True)
    return e


def probabilities(values: Any, where: str, what: str, *, from_logits: bool) -> FloatArray:
    """``values`` (N,) or (N, C) as float64 probabilities.

    With ``from_logits`` the values are logits: a sigmoid (N,) or a softmax
    (N, C) turns them into probabilities. Without it they must already be
    probabilities: in [0, 1], and each row of an (N, C) array summing to 1
    (within ``ROW_SUM_TOLERANCE``: float32 and float16 softmax outputs pass).
    """
    x = scores(values, where, what)
    if from_logits:
        return sigmoid(x) if x.ndim == 1 else softmax(x)
    hint = (
        "If these are logits (raw scores), register a variant that takes them: "
        "npf.register_metric_from_existing(<this metric>, <new name>, from_logits=True)."
    )
    low, high = float(x.min()), float(x.max())
    if low < 0.0 or high > 1.0:
        raise MetricError(
            f"{where}: {what} contains {low if low < 0.0 else high!r}; expected probabilities "
            f"in [0, 1]. {hint}"
        )
    if x.ndim == 2:
        sums = x.sum(axis=1)
        off = np.abs(sums - 1.0) > ROW_SUM_TOLERANCE
        if off.any():
            row = int(np.flatnonzero(off)[0])
            raise MetricError(
                f"{where}: row {row} of {what} sums to {float(sums[row])!r}; expected per-class "
                f"probabilities summing to 1 (within {ROW_SUM_TOLERANCE}). {hint}"
            )
    return x


def score_targets(scores: FloatArray, targets: Any, where: str) -> IntArray:
    """The (N,) class ids that go with (N,) or (N, C) ``scores``.

    For (N,) scores of the positive class the ids are 0 and 1 (bools too);
    for (N, C) scores they are 0 .. C-1.
    """
    n_classes = 2 if scores.ndim == 1 else scores.shape[1]
    arr = to_numpy(targets, where, "targets")
    if arr.ndim != 1:
        raise MetricError(
            f"{where}: targets has shape {arr.shape}; expected shape (N,), one class id per "
            "record. Pass targets.ravel() for an (N, 1) column, targets.argmax(axis=1) for "
            "one-hot targets."
        )
    if arr.shape[0] != scores.shape[0]:
        raise MetricError(
            f"{where}: got {scores.shape[0]} outputs (shape {scores.shape}) but "
            f"{arr.shape[0]} targets; expected one target per output. Check that outputs and "
            "targets come from the same batch."
        )
    check_finite(arr, where, "targets")
    outside = (arr < 0) | (arr >= n_classes)
    if arr.dtype.kind == "f":
        outside |= arr != np.floor(arr)
    if outside.any():
        index = int(np.flatnonzero(outside)[0])
        shape = "(N,) scores of the positive class" if scores.ndim == 1 else "(N, C) scores"
        raise MetricError(
            f"{where}: targets contains {arr[index].item()!r} at index {index}; expected "
            f"class ids 0 .. {n_classes - 1} (integers) to go with {shape}. Map labels to "
            "ids first (for binary scores: 1 for the positive class, 0 otherwise)."
        )
    return arr.astype(np.int64, copy=False)

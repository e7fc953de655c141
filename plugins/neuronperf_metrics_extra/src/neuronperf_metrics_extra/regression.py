"""Regression metrics: RootMeanSquaredError, MeanAbsolutePercentageError, MaxError,
R2Score, ExplainedVariance and PearsonCorrelation.

Inputs, as for the core's MeanSquaredError: a record's output and target are
scalars or arrays of one shape; ``process_batch`` takes arrays whose leading
axis N is the record axis: (N,) for scalar records, (N, ...) for array records.
Nothing is broadcast: shapes must match.

- RootMeanSquaredError, MeanAbsolutePercentageError, MaxError: over every
  element of every record. For records of several elements this is
  torchmetrics' convention; scikit-learn's RMSE would instead average the RMSE
  of each output.
- R2Score, ExplainedVariance: per output (each element position of a record
  is one output), then the plain mean over outputs: scikit-learn's default
  ``multioutput="uniform_average"``.
- PearsonCorrelation: scalar records only.

State is sums, a maximum, or streaming means and centred sums of squares
merged with Chan's update (``_moments``), so it is constant in the number of
records, and instances that saw different shards merge exactly (up to float
rounding) in ``aggregate``.

RootMeanSquaredError, MeanAbsolutePercentageError, and R2Score and
ExplainedVariance on scalar records, compute a batch's sums chunk by chunk
(``_chunks``): one pass over the inputs into a cache-sized scratch array, and
BLAS dot products for the sums, instead of a temporary as long as the batch
per numpy step. A NaN or infinity in the input, or an overflow, makes a sum
non-finite; only then are the inputs searched for the bad value, to name it.
"""

from __future__ import annotations

import math
import warnings
from abc import abstractmethod
from collections.abc import Iterable
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from neuronperf_core.errors import MetricError, UndefinedMetricWarning
from neuronperf_core.metrics.base import BaseEvalMetric
from neuronperf_core.metrics.inputs import (
    check_finite,
    metric_instances,
    nothing_processed,
    regression_pair,
)
from neuronperf_core.metrics.regression import MeanSquaredError
from neuronperf_metrics_extra._chunks import (
    CHUNK,
    by_chunks,
    column_sum,
    sum_and_squares,
    sum_of,
    sum_of_squares,
)
from neuronperf_metrics_extra._moments import CoMoments, Moments

__all__ = [
    "ExplainedVariance",
    "MaxError",
    "MeanAbsolutePercentageError",
    "PearsonCorrelation",
    "R2Score",
    "RootMeanSquaredError",
]

FloatArray = NDArray[np.float64]

_EPS = float(np.finfo(np.float64).eps)


def _check_result(value: float, out: NDArray[Any], tgt: NDArray[Any], where: str) -> None:
    """Raise a clear MetricError if ``value`` is not finite: NaN or infinity in, or overflow."""
    if math.isfinite(value):
        return
    check_finite(out, where, "outputs")
    check_finite(tgt, where, "targets")
    raise MetricError(
        f"{where}: the result overflowed float64 (values too large); expected values whose "
        "errors fit in float64. Rescale outputs and targets."
    )


# Sums over a batch of scalar pairs (1-D arrays x: outputs, y: targets, of any numeric
# dtype), chunk by chunk (``_chunks``): each kernel writes one chunk's sums, in float64,
# into ``row``.


def _squared_error_sum(x: NDArray[Any], y: NDArray[Any]) -> float:
    """sum((x - y)^2)."""

    def kernel(start: int, stop: int, row: FloatArray, scratch: FloatArray) -> None:
        diff = np.subtract(
            x[start:stop], y[start:stop], out=scratch[0, : stop - start], dtype=np.float64
        )
        row[0] = sum_of_squares(diff)

    return column_sum(by_chunks(x.shape[0], 1, kernel)[:, 0])


def _relative_error_sum(x: NDArray[Any], y: NDArray[Any]) -> float:
    """sum(|x - y| / max(|y|, eps))."""

    def kernel(start: int, stop: int, row: FloatArray, scratch: FloatArray) -> None:
        target = y[start:stop]
        ratio = np.subtract(x[start:stop], target, out=scratch[0, : stop - start], dtype=np.float64)
        if target.min() >= _EPS or target.max() <= -_EPS:
            # every |y| >= eps, so max(|y|, eps) = |y|, and |d| / |y| = |d / y| exactly
            np.divide(ratio, target, out=ratio, dtype=np.float64)
        else:  # zeros, tiny values or NaN among the targets
            scale = np.abs(target, out=scratch[1, : stop - start], dtype=np.float64)
            np.divide(ratio, np.maximum(scale, _EPS, out=scale), out=ratio)
        row[0] = sum_of(np.abs(ratio, out=ratio))

    return column_sum(by_chunks(x.shape[0], 1, kernel)[:, 0])


_RAW_LIMIT = 64.0  # sum(u^2) / M2 up to which M2 = sum(u^2) - sum(u)^2 / m loses <= 6 bits


class _ChunkMoments:
    """Writes a float64 chunk's sum of ``values - shift`` and its M2 into a results row.

    M2 = sum(u^2) - sum(u)^2 / m, from two sums of one pass and no temporary, when
    sum(u^2) <= 64 M2: the subtraction then multiplies the rounding error of the
    sums by at most 64. u is the values themselves, or, once a chunk failed that
    test (a mean large against the spread, where the formula loses digits, all of
    them at 1e8 +- 1), the values minus ``shift``, one value of the batch, for that
    chunk and every later one. Should u fail too, M2 takes a second pass,
    sum((u - mean(u))^2), which keeps every digit. The shift also keeps the sums
    small, so that merging the chunks (``Moments.of_chunks``) loses no digits.
    """

    def __init__(self, shift: float) -> None:
        self.shift = shift
        self.shifted = False  # whether chunks are shifted before they are summed

    def __call__(self, values: FloatArray, row: FloatArray, scratch: FloatArray) -> None:
        """Sums of ``values`` into row[0] and row[1]; ``scratch`` (which may be
        ``values``) takes the shifted values."""
        size = values.shape[0]
        if not self.shifted:
            total, squares = sum_and_squares(values)
            m2 = squares - total * total / size
            if m2 > 0.0 and squares <= _RAW_LIMIT * m2:  # False for NaN too
                row[0], row[1] = total - size * self.shift, m2
                return
            self.shifted = True
        shifted = np.subtract(values, self.shift, out=scratch[:size])
        total, squares = sum_and_squares(shifted)
        m2 = squares - total * total / size
        if not (m2 > 0.0 and squares <= _RAW_LIMIT * m2):
            m2 = sum_of_squares(np.subtract(shifted, total / size, out=shifted))
        row[0], row[1] = total, m2


def _as_float64(values: NDArray[Any], out: FloatArray) -> FloatArray:
    """``values`` itself if float64, else converted into ``out``."""
    if values.dtype == np.float64:
        return values
    converted = out[: values.shape[0]]
    converted[...] = values
    return converted


def _chunk_counts(n: int) -> FloatArray:
    """The number of elements in each chunk of ``range(n)``."""
    counts = np.full(-(-n // CHUNK), float(CHUNK))
    counts[-1] = n - CHUNK * (counts.shape[0] - 1)
    return counts


def _r2_sums(x: NDArray[Any], y: NDArray[Any]) -> tuple[FloatArray, Moments]:
    """sum((y - x)^2), and the moments of y."""

    def kernel(start: int, stop: int, row: FloatArray, scratch: FloatArray) -> None:
        target = y[start:stop]
        diff = np.subtract(target, x[start:stop], out=scratch[0, : stop - start], dtype=np.float64)
        row[0] = sum_of_squares(diff)
        target_sums(_as_float64(target, scratch[1]), row[1:], scratch[0])

    target_sums = _ChunkMoments(float(y[0]))
    sums = by_chunks(x.shape[0], 3, kernel)
    counts = _chunk_counts(x.shape[0])
    targets = Moments.of_chunks(counts, sums[:, 1], sums[:, 2], target_sums.shift)
    return np.array([column_sum(sums[:, 0])]), targets


def _explained_variance_sums(x: NDArray[Any], y: NDArray[Any]) -> tuple[Moments, Moments]:
    """The moments of y - x and of y."""

    def kernel(start: int, stop: int, row: FloatArray, scratch: FloatArray) -> None:
        target = y[start:stop]
        residuals = np.subtract(
            target, x[start:stop], out=scratch[0, : stop - start], dtype=np.float64
        )
        residual_sums(residuals, row, residuals)
        target_sums(_as_float64(target, scratch[1]), row[2:], scratch[0])

    residual_sums = _ChunkMoments(float(y[0]) - float(x[0]))
    target_sums = _ChunkMoments(float(y[0]))
    sums = by_chunks(x.shape[0], 4, kernel)
    counts = _chunk_counts(x.shape[0])
    residuals = Moments.of_chunks(counts, sums[:, 0], sums[:, 1], residual_sums.shift)
    return residuals, Moments.of_chunks(counts, sums[:, 2], sums[:, 3], target_sums.shift)


class _PairMetric(BaseEvalMetric):
    """Reads (output, target) pairs as two arrays and hands them to ``_add``: flattened to
    elements, or with ``_columns`` as (N, D) arrays, a row per record, a column per output."""

    _columns: ClassVar[bool] = False

    def process_record(self, output: Any = None, target: Any = None) -> None:
        self._read(output, target, batch=False)

    def process_batch(self, outputs: Any, targets: Any) -> None:
        self._read(outputs, targets, batch=True)

    def _read(self, output: Any, target: Any, *, batch: bool) -> None:
        where = f"{type(self).__name__}.process_{'batch' if batch else 'record'}"
        if self._columns:
            out, tgt = _as_columns(output, target, where, batch=batch)
        else:
            out, tgt = regression_pair(output, target, where, batch=batch)
            out, tgt = out.reshape(-1), tgt.reshape(-1)  # a scalar as a 1-element array
        self._add(out, tgt, where)

    @abstractmethod
    def _add(self, out: NDArray[Any], tgt: NDArray[Any], where: str) -> None:
        """Fold one record's or batch's arrays into the state."""


class RootMeanSquaredError(MeanSquaredError):
    """sqrt(sum((y - x)^2) / n) over every element of every record: the square root of
    the core's MeanSquaredError, whose state and input handling it shares."""

    def process_batch(self, outputs: Any, targets: Any) -> None:
        where = f"{type(self).__name__}.process_batch"
        out, tgt = regression_pair(outputs, targets, where, batch=True)
        total = _squared_error_sum(out.reshape(-1), tgt.reshape(-1))
        _check_result(total, out, tgt, where)
        self.sum += total
        self.count += int(out.size)

    @classmethod
    def aggregate(cls, metrics: Iterable[BaseEvalMetric]) -> float:
        """The square root of the merged mean squared error."""
        return math.sqrt(super().aggregate(metrics))


class MeanAbsolutePercentageError(_PairMetric):
    """sum(|y - x| / max(|y|, eps)) / n over every element of every record
    (scikit-learn's ``mean_absolute_percentage_error``): a fraction, not a
    percentage; eps = 2.2e-16 keeps a zero target finite (and huge)."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0.0  # sum of |y - x| / max(|y|, eps)
        self.count = 0  # elements scored

    def _add(self, out: NDArray[Any], tgt: NDArray[Any], where: str) -> None:
        total = _relative_error_sum(out, tgt)
        _check_result(total, out, tgt, where)
        self.total += total
        self.count += int(out.size)

    @classmethod
    def aggregate(cls, metrics: Iterable[BaseEvalMetric]) -> float:
        """The mean relative error over the elements of all instances."""
        items = metric_instances(cls, metrics)
        count = sum(m.count for m in items)
        if count == 0:
            raise nothing_processed(cls.__name__)
        return math.fsum(m.total for m in items) / count


class MaxError(_PairMetric):
    """max(|y - x|) over every element of every record (scikit-learn's ``max_error``)."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0.0  # the largest absolute error so far
        self.count = 0  # elements scored

    def _add(self, out: NDArray[Any], tgt: NDArray[Any], where: str) -> None:
        with np.errstate(over="ignore", invalid="ignore"):  # non-finite results raise below
            error = np.subtract(out, tgt, dtype=np.float64)
            largest = float(np.abs(error, out=error).max())
        _check_result(largest, out, tgt, where)
        self.largest = max(self.largest, largest)
        self.count += int(error.size)

    @classmethod
    def aggregate(cls, metrics: Iterable[BaseEvalMetric]) -> float:
        """The largest absolute error over all instances."""
        items = metric_instances(cls, metrics)
        if sum(m.count for m in items) == 0:
            raise nothing_processed(cls.__name__)
        return max(m.largest for m in items)


def _as_columns(
    output: Any, target: Any, where: str, *, batch: bool
) -> tuple[NDArray[Any], NDArray[Any]]:
    """Outputs and targets as (N, D) arrays: a row per record, a column per output."""
    out, tgt = regression_pair(output, target, where, batch=batch)
    n = out.shape[0] if batch else 1
    return out.reshape(n, -1), tgt.reshape(n, -1)


def _check_width(width: int | None, new: int, where: str) -> None:
    """Every record must have as many outputs as the ones before."""
    if width is not None and width != new:
        raise MetricError(
            f"{where}: records have {new} element(s), earlier ones {width}; expected every "
            "record to have the same shape."
        )


def _undefined_for_one_record(name: str) -> float:
    warnings.warn(
        f"{name} is undefined for a single record; returning NaN.",
        UndefinedMetricWarning,
        stacklevel=3,
    )
    return math.nan


def _one_minus_ratio(numerator: FloatArray, denominator: FloatArray) -> float:
    """mean(1 - numerator / denominator) over outputs, with scikit-learn's force_finite
    rule for a constant target: 1.0 if the numerator is 0 too, else 0.0."""
    scores = np.ones_like(numerator)
    defined = denominator != 0
    scores[defined] = 1.0 - numerator[defined] / denominator[defined]
    scores[~defined & (numerator != 0)] = 0.0
    return float(scores.mean())


class R2Score(_PairMetric):
    """The coefficient of determination 1 - sum((y - x)^2) / sum((y - mean(y))^2)
    (scikit-learn's ``r2_score``): per output, averaged over outputs. A constant
    target scores 1.0 if predicted exactly, else 0.0 (scikit-learn's force_finite).

    State per output: the sum of squared residuals, and the count, mean and M2
    of the targets.
    """

    _columns = True

    def __init__(self) -> None:
        super().__init__()
        self.squares = np.zeros(0)  # sum((y - x)^2) per output
        self.targets = Moments()

    def _add(self, out: NDArray[Any], tgt: NDArray[Any], where: str) -> None:
        _check_width(self.targets.width, out.shape[1], where)
        if out.shape[1] == 1:  # scalar records
            squares, targets = _r2_sums(out.reshape(-1), tgt.reshape(-1))
        else:
            with np.errstate(over="ignore", invalid="ignore"):  # non-finite results raise below
                buffer = np.subtract(tgt, out, dtype=np.float64)  # the one temporary array
                squares = np.einsum("ij,ij->j", buffer, buffer)
                targets = Moments.of(tgt.astype(np.float64, copy=False), scratch=buffer)
        if not (np.isfinite(squares).all() and targets.is_finite()):
            _check_result(math.inf, out, tgt, where)
        self.squares = squares if self.targets.count == 0 else self.squares + squares
        self.targets.merge(targets)

    @classmethod
    def aggregate(cls, metrics: Iterable[BaseEvalMetric]) -> float:
        """Merge the sums and moments of all instances; the mean R^2 over outputs."""
        items = [m for m in metric_instances(cls, metrics) if m.targets.count]
        if not items:
            raise nothing_processed(cls.__name__)
        targets = Moments()
        for item in items:
            _check_width(targets.width, item.targets.mean.shape[0], f"{cls.__name__}.aggregate")
            targets.merge(item.targets)
        if targets.count < 2:
            return _undefined_for_one_record(cls.__name__)
        squares = np.sum([m.squares for m in items], axis=0)
        return _one_minus_ratio(squares, targets.m2)


class ExplainedVariance(_PairMetric):
    """1 - Var(y - x) / Var(y) (scikit-learn's ``explained_variance_score``): per
    output, averaged over outputs; like R2Score but blind to a constant bias.

    State per output: the count, mean and M2 of the residuals and of the targets.
    """

    _columns = True

    def __init__(self) -> None:
        super().__init__()
        self.residuals = Moments()  # of y - x
        self.targets = Moments()  # of y

    def _add(self, out: NDArray[Any], tgt: NDArray[Any], where: str) -> None:
        _check_width(self.targets.width, out.shape[1], where)
        if out.shape[1] == 1:  # scalar records
            residuals, targets = _explained_variance_sums(out.reshape(-1), tgt.reshape(-1))
        else:
            with np.errstate(over="ignore", invalid="ignore"):  # non-finite results raise below
                buffer = np.subtract(tgt, out, dtype=np.float64)  # the one temporary array
                residuals = Moments.of(buffer, scratch=buffer)
                targets = Moments.of(tgt.astype(np.float64, copy=False), scratch=buffer)
        if not (residuals.is_finite() and targets.is_finite()):
            _check_result(math.inf, out, tgt, where)
        self.residuals.merge(residuals)
        self.targets.merge(targets)

    @classmethod
    def aggregate(cls, metrics: Iterable[BaseEvalMetric]) -> float:
        """Merge the moments of all instances; the mean explained variance over outputs."""
        items = [m for m in metric_instances(cls, metrics) if m.targets.count]
        if not items:
            raise nothing_processed(cls.__name__)
        residuals, targets = Moments(), Moments()
        for item in items:
            _check_width(targets.width, item.targets.mean.shape[0], f"{cls.__name__}.aggregate")
            residuals.merge(item.residuals)
            targets.merge(item.targets)
        if targets.count < 2:
            return _undefined_for_one_record(cls.__name__)
        return _one_minus_ratio(residuals.m2, targets.m2)


class PearsonCorrelation(_PairMetric):
    """Pearson's r between outputs and targets, cov(x, y) / (std(x) std(y))
    (scipy's ``pearsonr``), for scalar records. NaN, with a warning, when
    outputs or targets are constant (as in scipy)."""

    _columns = True

    def __init__(self) -> None:
        super().__init__()
        self.moments = CoMoments()  # x: outputs, y: targets

    def _add(self, out: NDArray[Any], tgt: NDArray[Any], where: str) -> None:
        if out.shape[1] != 1:
            raise MetricError(
                f"{where}: records have {out.shape[1]} elements; PearsonCorrelation scores "
                "scalar records (one output). Score each output with its own metric instance."
            )
        with np.errstate(over="ignore", invalid="ignore"):  # non-finite results raise below
            batch = CoMoments.of(
                out.astype(np.float64, copy=False), tgt.astype(np.float64, copy=False)
            )
        if not batch.is_finite():
            _check_result(math.inf, out, tgt, where)
        self.moments.merge(batch)

    @classmethod
    def aggregate(cls, metrics: Iterable[BaseEvalMetric]) -> float:
        """Merge the moments of all instances; Pearson's r."""
        items = metric_instances(cls, metrics)
        total = CoMoments()
        for item in items:
            total.merge(item.moments)
        if total.count == 0:
            raise nothing_processed(cls.__name__)
        if total.count < 2:
            return _undefined_for_one_record(cls.__name__)
        m2_x, m2_y = float(total.x.m2[0]), float(total.y.m2[0])
        if m2_x == 0 or m2_y == 0:
            warnings.warn(
                "PearsonCorrelation is undefined when outputs or targets are constant; "
                "returning NaN.",
                UndefinedMetricWarning,
                stacklevel=2,
            )
            return math.nan
        r = float(total.c_xy[0]) / (math.sqrt(m2_x) * math.sqrt(m2_y))
        return min(1.0, max(-1.0, r))

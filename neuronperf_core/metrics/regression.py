"""Built-in regression metrics: mean absolute and mean squared error.

A record's output and target are scalars or arrays of one shape; the mean is
over every element of every record. ``process_batch`` takes arrays whose
leading axis N is the record axis. State is a float64 sum and an element
count, so instances that saw different shards merge exactly in ``aggregate``.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Iterable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from neuronperf_core.errors import MetricError
from neuronperf_core.metrics.base import BaseEvalMetric
from neuronperf_core.metrics.inputs import (
    check_finite,
    metric_instances,
    nothing_processed,
    regression_pair,
)

__all__ = ["MeanAbsoluteError", "MeanErrorMetric", "MeanSquaredError"]

_INF = math.inf


class MeanErrorMetric(BaseEvalMetric):
    """Base of the metrics that average an elementwise error of ``output - target``.

    Subclasses set the error of one scalar difference (``_error``) and of an
    array of differences, summed (``_error_sum``).
    """

    def __init__(self) -> None:
        super().__init__()
        self.sum = 0.0  # float64 sum of the elementwise errors
        self.count = 0  # number of elements scored

    @staticmethod
    @abstractmethod
    def _error(diff: float) -> float:
        """The error of one scalar difference."""

    @staticmethod
    @abstractmethod
    def _error_sum(diff: NDArray[np.float64]) -> float:
        """The summed error of a 1-D float64 array of differences (which it may overwrite)."""

    def process_record(self, output: Any = None, target: Any = None) -> None:
        t_out, t_tgt = type(output), type(target)
        if (t_out is float or t_out is int) and (t_tgt is float or t_tgt is int):
            diff = output - target
            if -_INF < diff < _INF:  # False for NaN and +-inf
                try:
                    self.sum += self._error(diff)
                except OverflowError:  # a Python int error beyond float64
                    raise MetricError(
                        f"{type(self).__name__}.process_record: the error of output {output!r} "
                        f"and target {target!r} does not fit in float64; expected values whose "
                        "error fits in float64. Rescale outputs and targets."
                    ) from None
                self.count += 1
                return
        self._add(output, target, batch=False)

    def process_batch(self, outputs: Any, targets: Any) -> None:
        self._add(outputs, targets, batch=True)

    def _add(self, output: Any, target: Any, *, batch: bool) -> None:
        where = f"{type(self).__name__}.process_{'batch' if batch else 'record'}"
        out, tgt = regression_pair(output, target, where, batch=batch)
        with np.errstate(over="ignore", invalid="ignore"):  # non-finite results raise below
            diff = np.subtract(out, tgt, dtype=np.float64)
            total = self._error_sum(diff.ravel())
        if not math.isfinite(total):
            names = ("outputs", "targets") if batch else ("output", "target")
            check_finite(out, where, names[0])
            check_finite(tgt, where, names[1])
            raise MetricError(
                f"{where}: the sum of errors overflowed float64 (values too large); expected "
                "errors whose sum fits in float64. Rescale outputs and targets."
            )
        self.sum += total
        self.count += int(diff.size)

    @classmethod
    def aggregate(cls, metrics: Iterable[BaseEvalMetric]) -> float:
        """Merge the sums and counts of all instances; the mean error (a Python float)."""
        items = metric_instances(cls, metrics)
        count = sum(m.count for m in items)
        if count == 0:
            raise nothing_processed(cls.__name__)
        total = math.fsum(m.sum for m in items)
        if not math.isfinite(total):
            raise MetricError(
                f"{cls.__name__}.aggregate: the sum of errors is {total} (NaN or float64 "
                "overflow); expected a finite sum. Rescale outputs and targets."
            )
        return total / count


class MeanAbsoluteError(MeanErrorMetric):
    """sum(|y - x|) / n over every element of every record."""

    @staticmethod
    def _error(diff: float) -> float:
        return abs(diff)

    @staticmethod
    def _error_sum(diff: NDArray[np.float64]) -> float:
        return float(np.abs(diff, out=diff).sum())  # diff is a temporary: reuse it


class MeanSquaredError(MeanErrorMetric):
    """sum((y - x)^2) / n over every element of every record."""

    @staticmethod
    def _error(diff: float) -> float:
        return diff * diff

    @staticmethod
    def _error_sum(diff: NDArray[np.float64]) -> float:
        # not np.dot: BLAS threads make it erratic (several ms with torch loaded)
        return float(np.square(diff, out=diff).sum())  # diff is a temporary: reuse it

"""Sums over long 1-D float64 arrays, chunk by chunk, in few numpy calls.

The regression metrics reduce a batch to a few sums (of squared errors, of
targets, of squares). Computed whole, each numpy step writes a temporary as
long as the batch (8 MB per million records, fresh memory each call) and the
next step reads it back. ``by_chunks`` instead runs a kernel on chunks of
``CHUNK`` elements that reuse two scratch arrays, and each chunk writes its
sums to its own row of a small results array, which the caller combines in
chunk order. The sums themselves are BLAS dot products (``sum_of``,
``sum_of_squares``): one pass, about twice as fast as ``np.sum`` of
``np.square``, and of ``_DOT`` elements each, so that BLAS stays on the calling
thread (OpenBLAS starts threads for dot products over 10,000 elements, which
makes timings erratic when another thread pool, torch's, is busy).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

__all__ = ["CHUNK", "by_chunks", "column_sum", "sum_and_squares", "sum_of", "sum_of_squares"]

FloatArray = NDArray[np.float64]
Kernel = Callable[[int, int, FloatArray, FloatArray], None]

CHUNK = 1 << 17  # elements: few numpy calls per batch, and 1 MiB scratch arrays
_DOT = 8192  # elements of one BLAS dot product
_vecdot = getattr(np, "vecdot", None)  # numpy >= 2.0: many dot products in one call
_ONES = np.ones(_DOT)


def by_chunks(n: int, width: int, kernel: Kernel) -> FloatArray:
    """Call ``kernel(start, stop, row, scratch)`` for each chunk ``[start, stop)`` of
    ``range(n)``, in order: it writes the chunk's ``width`` results into ``row``, and
    may overwrite ``scratch``, a (2, min(n, CHUNK)) float64 array. Returns the (number
    of chunks, width) results, a row per chunk. Floating-point overflow and invalid
    operations pass silently: check the results."""
    starts = range(0, n, CHUNK)
    results = np.empty((len(starts), width))
    scratch = np.empty((2, min(n, CHUNK)))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for row, start in zip(results, starts, strict=True):
            kernel(start, min(start + CHUNK, n), row, scratch)
    return results


def column_sum(column: FloatArray) -> float:
    """The sum of one column of ``by_chunks``' results."""
    return float(column[0]) if column.shape[0] == 1 else float(column.sum())


def _dot(values: FloatArray, other: FloatArray | None) -> float:
    """sum(values * other) of a 1-D float64 array and ``other``: the same array, or
    (None) ones."""
    size = values.shape[0]
    if size <= _DOT:
        return float(np.dot(values, _ONES[:size] if other is None else values))
    full = size - size % _DOT
    total = 0.0
    if full:
        rows = values[:full].reshape(-1, _DOT)
        right = _ONES if other is None else rows
        if _vecdot is not None:
            total = float(_vecdot(rows, right).sum())
        else:  # pragma: no cover - numpy < 2.0
            total = math.fsum(float(np.dot(row, _ONES if other is None else row)) for row in rows)
    if full < size:
        tail = values[full:]
        total += float(np.dot(tail, _ONES[: size - full] if other is None else tail))
    return total


def sum_of(values: FloatArray) -> float:
    """sum(values) of a 1-D float64 array."""
    return _dot(values, None)


def sum_of_squares(values: FloatArray) -> float:
    """sum(values^2) of a 1-D float64 array."""
    return _dot(values, values)


def sum_and_squares(values: FloatArray) -> tuple[float, float]:
    """sum(values) and sum(values^2) of a 1-D float64 array."""
    return _dot(values, None), _dot(values, values)

"""Streaming means, variances and covariances, per column, that merge without losing digits.

Summing x and x^2 and subtracting at the end loses every digit when the mean is
large compared with the spread. Instead, each batch's mean and centred sum of
squares (M2 = sum((x - mean)^2)) are computed in two passes, then merged with
the running ones by the pairwise update of Chan, Golub and LeVeque (1979), the
batch form of Welford's update:

    n = n_a + n_b,  d = mean_b - mean_a
    mean = mean_a + d * n_b / n
    M2 = M2_a + M2_b + d^2 * n_a * n_b / n
    C = C_a + C_b + d_x * d_y * n_a * n_b / n    (the co-moment sum((x - mean_x)(y - mean_y)))

The same update merges the instances of different workers in ``aggregate``,
and (``Moments.of_chunks``, all at once) the chunks that the regression
metrics cut a large batch of scalar records into.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["CoMoments", "Moments"]

FloatArray = NDArray[np.float64]


def _sum_of_products(a: FloatArray, b: FloatArray) -> FloatArray:
    """Column sums of a * b in one pass (einsum: no temporary array, no BLAS threads)."""
    sums: FloatArray = np.einsum("ij,ij->j", a, b)
    return sums


class Moments:
    """Count, mean and M2 of each column of a stream of (N, D) arrays."""

    def __init__(self) -> None:
        self.count = 0
        self.mean: FloatArray = np.zeros(0)  # the first batch sets the number of columns
        self.m2: FloatArray = np.zeros(0)

    @property
    def width(self) -> int | None:
        """The number of columns, or None before the first batch."""
        return self.mean.shape[0] if self.count else None

    @classmethod
    def of(cls, values: FloatArray, *, scratch: FloatArray | None = None) -> Moments:
        """The moments of one (N, D) float64 batch, N >= 1. The deviations from the mean
        are written to ``scratch`` (which may be ``values`` itself) to save memory."""
        moments = cls()
        moments.count = values.shape[0]
        moments.mean = values.mean(axis=0)
        deviations = np.subtract(values, moments.mean, out=scratch)
        moments.m2 = _sum_of_products(deviations, deviations)
        return moments

    @classmethod
    def of_chunks(
        cls, counts: FloatArray, sums: FloatArray, m2: FloatArray, shift: float = 0.0
    ) -> Moments:
        """The moments of one column from those of its consecutive chunks, given as 1-D
        arrays of each chunk's count, sum of ``values - shift`` and M2, all merged at
        once by the update above: M2 = sum(M2_c) + sum(n_c * (mean_c - mean)^2).
        A shift near the values keeps the chunk means exact when the values are
        large against their spread."""
        moments = cls()
        count = float(counts.sum())
        if counts.shape[0] == 1:
            mean, m2_total = float(sums[0]) / count, float(m2[0])
        else:
            with np.errstate(over="ignore", invalid="ignore"):  # NaN or inf in: see is_finite
                mean = float(sums.sum()) / count
                offsets = sums / counts - mean
                m2_total = float(m2.sum()) + float((counts * offsets * offsets).sum())
        moments.count = int(count)
        moments.mean = np.array([shift + mean])
        moments.m2 = np.array([m2_total])
        return moments

    def is_finite(self) -> bool:
        """False if the data held NaN or infinity, or a sum overflowed."""
        return bool(np.isfinite(self.mean).all() and np.isfinite(self.m2).all())

    def merge(self, other: Moments) -> None:
        """Add the moments of ``other`` (of the same number of columns) to these."""
        if other.count == 0:
            return
        if self.count == 0:
            self.count, self.mean, self.m2 = other.count, other.mean, other.m2
            return
        n = self.count + other.count
        delta = other.mean - self.mean
        self.mean = self.mean + delta * (other.count / n)
        self.m2 = self.m2 + other.m2 + delta * delta * (self.count * other.count / n)
        self.count = n


class CoMoments:
    """The moments of two streams x and y of (N, D) arrays, and their co-moment per column."""

    def __init__(self) -> None:
        self.x = Moments()
        self.y = Moments()
        self.c_xy: FloatArray = np.zeros(0)

    @property
    def count(self) -> int:
        return self.x.count

    @classmethod
    def of(cls, x: FloatArray, y: FloatArray) -> CoMoments:
        """The moments of one batch of (N, D) float64 arrays, N >= 1 (two passes)."""
        moments = cls()
        moments.x.count = moments.y.count = x.shape[0]
        moments.x.mean, moments.y.mean = x.mean(axis=0), y.mean(axis=0)
        dx, dy = x - moments.x.mean, y - moments.y.mean
        moments.x.m2 = _sum_of_products(dx, dx)
        moments.y.m2 = _sum_of_products(dy, dy)
        moments.c_xy = _sum_of_products(dx, dy)
        return moments

    def is_finite(self) -> bool:
        """False if the data held NaN or infinity, or a sum overflowed."""
        return self.x.is_finite() and self.y.is_finite() and bool(np.isfinite(self.c_xy).all())

    def merge(self, other: CoMoments) -> None:
        """Add the moments of ``other`` (of the same number of columns) to these."""
        if other.count == 0:
            return
        if self.count == 0:
            self.c_xy = other.c_xy
        else:
            weight = self.count * other.count / (self.count + other.count)
            d_x = other.x.mean - self.x.mean
            d_y = other.y.mean - self.y.mean
            self.c_xy = self.c_xy + other.c_xy + d_x * d_y * weight
        self.x.merge(other.x)
        self.y.merge(other.y)

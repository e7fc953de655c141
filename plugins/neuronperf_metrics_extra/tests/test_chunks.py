"""Chunked sums (``_chunks``): every chunk once, in order; BLAS sums as exact as numpy's."""

from __future__ import annotations

import math

import numpy as np
import pytest
from neuronperf_metrics_extra._chunks import (
    CHUNK,
    by_chunks,
    column_sum,
    sum_and_squares,
    sum_of,
    sum_of_squares,
)


@pytest.mark.parametrize("n", [1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 7])
def test_every_chunk_once_in_order(n: int) -> None:
    def kernel(start: int, stop: int, row: np.ndarray, scratch: np.ndarray) -> None:
        assert scratch.shape == (2, min(CHUNK, n))
        row[:] = start, stop

    rows = by_chunks(n, 2, kernel)
    starts = list(range(0, n, CHUNK))
    assert rows[:, 0].tolist() == starts
    assert rows[:, 1].tolist() == [min(start + CHUNK, n) for start in starts]
    assert column_sum(rows[:, 1] - rows[:, 0]) == n


def test_overflow_passes_silently_to_be_checked() -> None:
    def kernel(start: int, stop: int, row: np.ndarray, scratch: np.ndarray) -> None:
        row[0] = np.float64(1e308) * 10  # no RuntimeWarning

    assert by_chunks(3, 1, kernel)[0, 0] == math.inf


@pytest.mark.parametrize("n", [1, 100, 8192, 8193, 3 * 8192 + 5])
def test_sums_match_exact_ones(n: int) -> None:
    values = np.random.default_rng(n).normal(3.0, 2.0, n)
    assert sum_of(values) == pytest.approx(math.fsum(values), rel=1e-14)
    assert sum_of_squares(values) == pytest.approx(math.fsum(values * values), rel=1e-14)
    assert sum_and_squares(values) == (sum_of(values), sum_of_squares(values))

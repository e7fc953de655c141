"""A mergeable latency histogram with bounded relative error (HdrHistogram style).

Reports keep one per config, so two runs can be compared on their whole latency
distributions long after the samples are gone. Bucket ``i`` holds the latencies in
``[G**i, G**(i+1))`` nanoseconds, ``G = (1 + e) / (1 - e)``, and stands for the value
``G**i * (1 + e)``: every latency is within ``e`` (``RELATIVE_ERROR``, 1 %) of the value
its bucket stands for. Latencies are clamped to 1 ns .. 10,000 s, so a histogram never
holds more than ``MAX_BUCKETS`` (1,495) buckets, however many samples it counts.
Histograms of the same error merge by adding counts.

In a report (``latency_histogram``) it is plain JSON::

    {"unit": "ns", "relative_error": 0.01, "index": [i, ...], "count": [n, ...]}

with only the buckets that hold samples, in increasing order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

RELATIVE_ERROR = 0.01
MAX_NS = 10**13  # 10,000 s: longer latencies are counted as this
_GROWTH = (1 + RELATIVE_ERROR) / (1 - RELATIVE_ERROR)
MAX_BUCKETS = int(math.log(MAX_NS) / math.log(_GROWTH)) + 1


class HistogramError(ValueError):
    """A report's ``latency_histogram`` that is not one this module wrote."""


@dataclass(frozen=True)
class LatencyHistogram:
    """Sample counts per log bucket; ``index`` increasing, every count > 0."""

    index: npt.NDArray[np.int64]
    count: npt.NDArray[np.int64]
    relative_error: float = RELATIVE_ERROR

    @classmethod
    def of(cls, latency_ns: npt.ArrayLike) -> LatencyHistogram:
        """The histogram of latencies in nanoseconds."""
        values = np.clip(np.asarray(latency_ns, dtype=np.float64), 1.0, float(MAX_NS))
        buckets = np.floor(np.log(values) / math.log(_GROWTH)).astype(np.int64)
        index, count = np.unique(buckets, return_counts=True)
        return cls(index.astype(np.int64), count.astype(np.int64))

    @property
    def total(self) -> int:
        return int(self.count.sum())

    def merge(self, other: LatencyHistogram) -> LatencyHistogram:
        """Both histograms' samples in one (of the same relative error)."""
        if other.relative_error != self.relative_error:
            raise HistogramError(
                f"cannot merge histograms of relative error {self.relative_error} and "
                f"{other.relative_error}"
            )
        index = np.concatenate([self.index, other.index])
        count = np.concatenate([self.count, other.count])
        merged, where = np.unique(index, return_inverse=True)
        return LatencyHistogram(merged, np.bincount(where, weights=count).astype(np.int64))

    def value_at_rank(self, rank: int, edge: str = "middle") -> float:
        """The ``rank``-th smallest sample (1-based), in ns: the value its bucket stands for
        (``edge="middle"``), or the bucket's lower or upper bound (``"low"``, ``"high"``),
        which bound the sample itself."""
        if not 1 <= rank <= self.total:
            raise IndexError(f"rank {rank} of a histogram of {self.total} samples")
        bucket = int(self.index[np.searchsorted(np.cumsum(self.count), rank)])
        low = _GROWTH**bucket
        return {"low": low, "high": low * _GROWTH, "middle": low * (1 + self.relative_error)}[edge]

    def to_dict(self) -> dict[str, Any]:
        return {
            "unit": "ns",
            "relative_error": self.relative_error,
            "index": self.index.tolist(),
            "count": self.count.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Any) -> LatencyHistogram:
        """A histogram as a report holds it, checked."""
        if not isinstance(data, Mapping) or data.get("unit") != "ns":
            raise HistogramError(
                "latency_histogram must be a dict with unit 'ns', relative_error, index and "
                f"count, as benchmark() writes it; got {type(data).__name__}"
            )
        try:
            index = np.asarray(data["index"], dtype=np.int64)
            count = np.asarray(data["count"], dtype=np.int64)
            error = float(data["relative_error"])
        except (KeyError, TypeError, ValueError) as exc:
            raise HistogramError(f"latency_histogram is malformed: {exc}") from None
        if (
            index.ndim != 1
            or index.shape != count.shape
            or (count <= 0).any()
            or (np.diff(index) <= 0).any()
            or error != RELATIVE_ERROR
        ):
            raise HistogramError(
                "latency_histogram is malformed: index and count must be lists of equal "
                f"length, index increasing, counts positive, relative_error {RELATIVE_ERROR}"
            )
        return cls(index, count, error)

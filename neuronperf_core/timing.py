"""Interval timing for the benchmark loop, and unit conversion of timestamps.

``Timer`` records (start, stop) pairs from any clock. Each record is two list
appends, nothing more, so a timer can sit in the hot path. Timestamps are kept
exactly as the clock returned them: with ``time.perf_counter_ns`` and
``timer_unit="ns"`` they stay int nanoseconds, and durations are computed in
integers before any conversion to float.

A timer is not thread-safe: give each worker its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, overload

import numpy as np
import numpy.typing as npt

from neuronperf_core.errors import NeuronPerfError

__all__ = ["UNITS", "Timer", "TimerStateError", "UnknownUnitError", "timestamp_convert"]

# Ticks per second of each unit; ints, so ratios between units are exact.
_PER_SECOND = {"ns": 1_000_000_000, "us": 1_000_000, "ms": 1_000, "s": 1}
UNITS = tuple(_PER_SECOND)


class UnknownUnitError(NeuronPerfError, ValueError):
    """A time unit other than ns, us, ms or s."""


class TimerStateError(NeuronPerfError, RuntimeError):
    """A Timer was used out of order: stop() without start(), start() twice, avg() of nothing."""


def _check_unit(unit: str) -> None:
    if unit not in _PER_SECOND:
        raise UnknownUnitError(f"Unknown time unit {unit!r}; use one of {', '.join(UNITS)}.")


@overload
def timestamp_convert(values: float, from_unit: str, to_unit: str) -> float: ...
@overload
def timestamp_convert(
    values: npt.ArrayLike, from_unit: str, to_unit: str
) -> float | npt.NDArray[np.float64]: ...
def timestamp_convert(
    values: npt.ArrayLike, from_unit: str, to_unit: str
) -> float | npt.NDArray[np.float64]:
    """Convert times between "ns", "us", "ms" and "s".

    A scalar gives a float; a list or array gives a float64 numpy array.
    """
    _check_unit(from_unit)
    _check_unit(to_unit)
    array = np.asarray(values, dtype=np.float64)
    src, dst = _PER_SECOND[from_unit], _PER_SECOND[to_unit]
    # Multiply or divide by an exact integer ratio: 1500 ns -> 1.5 us exactly.
    converted = array * (dst // src) if dst >= src else array / (src // dst)
    return float(converted) if converted.ndim == 0 else converted


class Timer:
    """Records (start, stop) pairs read from ``timer_fn``, a clock in ``timer_unit``.

    ``with timer:`` records one pair; so does ``start()`` followed by ``stop()``.
    ``len(timer)`` is the number of pairs; iterating gives each duration in seconds.
    """

    def __init__(
        self, timer_fn: Callable[[], float] = time.perf_counter, timer_unit: str = "s"
    ) -> None:
        _check_unit(timer_unit)
        self.timer_fn = timer_fn
        self.timer_unit = timer_unit
        self._starts: list[float] = []
        self._stops: list[float] = []
        self._pending: float | None = None  # the start of the interval in progress
        self._given: tuple[npt.NDArray[Any], npt.NDArray[Any]] | None = None  # from_intervals

    @classmethod
    def from_intervals(
        cls,
        starts: npt.ArrayLike,
        stops: npt.ArrayLike,
        timer_fn: Callable[[], float] = time.perf_counter_ns,
        timer_unit: str = "ns",
    ) -> Timer:
        """A timer holding intervals measured elsewhere, ``starts[i]`` to ``stops[i]``, in
        ``timer_unit`` (by default the int nanoseconds of ``time.perf_counter_ns``, as raw
        benchmark results hold them); ``start``/``stop`` add more. The values are kept
        exactly, and arrays are not copied (a million samples make no Python objects)."""
        begin, end = np.asarray(starts).ravel(), np.asarray(stops).ravel()
        if begin.shape != end.shape:
            raise ValueError(
                f"Timer.from_intervals() needs one stop per start, got {begin.size} starts "
                f"and {end.size} stops."
            )
        timer = cls(timer_fn, timer_unit)
        timer._given = (begin, end)
        return timer

    def _pairs(self) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
        """Every start and every stop: the given intervals, then those recorded here."""
        recorded = np.asarray(self._starts), np.asarray(self._stops)
        if self._given is None:
            return recorded
        if not self._starts:
            return self._given
        starts, stops = self._given
        return np.concatenate([starts, recorded[0]]), np.concatenate([stops, recorded[1]])

    def start(self) -> None:
        """Start an interval."""
        if self._pending is not None:
            raise TimerStateError(
                "Timer.start() was called twice without stop(); call stop() to end the "
                "interval in progress, or reset() to discard it."
            )
        self._pending = self.timer_fn()  # the clock is read last, after the check

    def stop(self) -> None:
        """End the interval in progress and record it."""
        now = self.timer_fn()  # read the clock first, before any bookkeeping
        if self._pending is None:
            raise TimerStateError("Timer.stop() was called without start(); call start() first.")
        self._starts.append(self._pending)
        self._stops.append(now)
        self._pending = None

    def reset(self) -> None:
        """Forget every recorded interval and any interval in progress."""
        self._starts.clear()
        self._stops.clear()
        self._pending = None
        self._given = None

    def __enter__(self) -> Timer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()  # an interval that raised still took the time it took

    def __len__(self) -> int:
        return len(self._starts) + (0 if self._given is None else self._given[0].size)

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        """The (start, stop) pairs in the timer's unit, as 1.x iterated them."""
        return iter([(start, stop) for start, stop in self.timestamps().tolist()])

    def timestamps(self, unit: str | None = None) -> npt.NDArray[Any]:
        """The (start, stop) pairs, shape (n, 2).

        With ``unit=None`` the values are the clock's own, unconverted (int64 for an
        int clock); with a unit they are converted to float64 in that unit.
        """
        raw = np.column_stack(self._pairs())
        if unit is None:
            return raw
        return np.asarray(timestamp_convert(raw, self.timer_unit, unit))

    def durations(self, unit: str = "s") -> npt.NDArray[np.float64]:
        """The length of each recorded interval, as float64 in ``unit``."""
        # Subtract before converting, so int nanoseconds subtract exactly.
        starts, stops = self._pairs()
        raw = stops - starts
        return np.asarray(timestamp_convert(raw, self.timer_unit, unit), dtype=np.float64)

    def total_duration(self, unit: str = "s") -> float:
        """The summed length of the recorded intervals in ``unit`` (0.0 when none)."""
        starts, stops = self._pairs()
        raw = np.sum(stops - starts)
        return float(timestamp_convert(raw, self.timer_unit, unit))

    def avg(self, unit: str = "s") -> float:
        """The mean interval length in ``unit``; 0 with no interval recorded (as in 1.x, whose
        scripts average the timers of steps that did not run)."""
        if len(self) == 0:
            return 0.0
        return self.total_duration(unit) / len(self)

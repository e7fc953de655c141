"""Timer and timestamp_convert, timed by scripted fake clocks (never by the real one)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from neuronperf_core.errors import NeuronPerfError
from neuronperf_core.timing import (
    UNITS,
    Timer,
    TimerStateError,
    UnknownUnitError,
    timestamp_convert,
)


def clock(*values: float) -> Callable[[], float]:
    """A clock returning ``values`` in order, failing the test if read once more."""
    it = iter(values)

    def read() -> float:
        try:
            return next(it)
        except StopIteration:
            raise AssertionError("the clock was read more often than scripted") from None

    return read


def timer_with(intervals: Iterable[tuple[float, float]], unit: str = "s") -> Timer:
    values = [v for pair in intervals for v in pair]
    timer = Timer(clock(*values), timer_unit=unit)
    for _ in range(len(values) // 2):
        timer.start()
        timer.stop()
    return timer


# ---------------------------------------------------------------- recording


def test_context_manager_records_one_pair_per_block() -> None:
    timer = Timer(clock(1.0, 1.5, 10.0, 12.0))
    with timer as entered:
        assert entered is timer
    with timer:
        pass
    assert len(timer) == 2
    np.testing.assert_array_equal(timer.timestamps(), [[1.0, 1.5], [10.0, 12.0]])
    assert timer.timestamps().shape == (2, 2)


def test_context_manager_records_and_reraises_when_the_block_raises() -> None:
    timer = Timer(clock(0.0, 3.0))
    with pytest.raises(KeyError), timer:
        raise KeyError("boom")
    assert timer.durations().tolist() == [3.0]


def test_start_stop_each_read_the_clock_exactly_once() -> None:
    timer = timer_with([(0.0, 1.0), (2.0, 4.0), (5.0, 8.0)])  # the clock fails on a 7th read
    assert len(timer) == 3
    assert timer.durations().tolist() == [1.0, 2.0, 3.0]


def test_empty_timer() -> None:
    timer = Timer(clock())
    assert len(timer) == 0
    assert timer.timestamps().shape == (0, 2)
    assert timer.durations().shape == (0,)
    assert timer.total_duration() == 0.0
    assert list(timer) == []


def test_reset_forgets_records_and_the_interval_in_progress() -> None:
    timer = Timer(itertools.count().__next__)  # 0, 1, 2, ...
    timer.start()
    timer.stop()
    timer.start()  # reads 2, then discarded
    timer.reset()
    assert len(timer) == 0
    assert timer.timestamps().shape == (0, 2)
    with pytest.raises(TimerStateError):
        timer.stop()
    timer.start()
    timer.stop()
    assert len(timer) == 1
    assert timer.timestamps()[0, 0] > 2


# ---------------------------------------------------------------- errors


def test_stop_without_start_is_an_error_and_records_nothing() -> None:
    timer = Timer(clock(5.0))
    with pytest.raises(TimerStateError, match=r"stop\(\) was called without start\(\)"):
        timer.stop()
    assert len(timer) == 0


def test_start_twice_is_an_error_and_keeps_the_first_start() -> None:
    timer = Timer(clock(1.0, 5.0))  # the refused start() must not read the clock
    timer.start()
    with pytest.raises(TimerStateError, match=r"start\(\) was called twice"):
        timer.start()
    timer.stop()
    assert timer.timestamps().tolist() == [[1.0, 5.0]]


def test_avg_of_nothing_is_zero_as_in_1x() -> None:
    assert Timer(clock()).avg() == 0.0  # return_timers gives empty timers for steps not run


def test_state_errors_are_neuronperf_errors() -> None:
    assert issubclass(TimerStateError, NeuronPerfError)
    assert issubclass(TimerStateError, RuntimeError)
    assert issubclass(UnknownUnitError, NeuronPerfError)
    assert issubclass(UnknownUnitError, ValueError)


@pytest.mark.parametrize(
    "call",
    [
        lambda: Timer(timer_unit="sec"),
        lambda: timer_with([(0.0, 1.0)]).durations("sec"),
        lambda: timer_with([(0.0, 1.0)]).total_duration("sec"),
        lambda: timer_with([(0.0, 1.0)]).avg("sec"),
        lambda: timer_with([(0.0, 1.0)]).timestamps("sec"),
        lambda: timestamp_convert(1.0, "sec", "s"),
        lambda: timestamp_convert(1.0, "s", "sec"),
    ],
)
def test_unknown_unit_names_the_valid_ones(call: Callable[[], object]) -> None:
    with pytest.raises(UnknownUnitError, match=r"'sec'.*ns, us, ms, s"):
        call()


# ---------------------------------------------------------------- units


def test_durations_total_and_avg_in_each_unit() -> None:
    timer = timer_with([(0.0, 0.25), (1.0, 1.75)])
    assert timer.durations().tolist() == [0.25, 0.75]
    assert timer.durations("ms").tolist() == [250.0, 750.0]
    assert timer.durations("us").tolist() == [250_000.0, 750_000.0]
    assert timer.durations("ns").tolist() == [250_000_000.0, 750_000_000.0]
    assert timer.durations().dtype == np.float64
    assert timer.total_duration() == 1.0
    assert timer.total_duration("ms") == 1000.0
    assert timer.avg() == 0.5
    assert timer.avg("us") == 500_000.0
    assert [stop - start for start, stop in timer] == [0.25, 0.75]  # (start, stop), as 1.x


def test_timestamps_converted_on_request() -> None:
    timer = timer_with([(1500, 4000)], unit="ms")
    assert timer.timestamps("s").tolist() == [[1.5, 4.0]]
    assert timer.timestamps("s").dtype == np.float64
    assert timer.durations().tolist() == [2.5]


def test_integer_nanosecond_clock_is_stored_and_subtracted_exactly() -> None:
    # Past 2**53, float64 cannot hold every integer: float storage would round these.
    start, stop = 2**62 + 1, 2**62 + 1_000_000_007
    assert float(start) != start
    timer = timer_with([(start, stop)], unit="ns")
    stamps = timer.timestamps()
    assert stamps.dtype == np.int64
    assert stamps.tolist() == [[start, stop]]
    assert timer.durations("ns").tolist() == [1_000_000_006.0]
    assert timer.total_duration("ns") == 1_000_000_006.0
    assert timer.durations("s").tolist() == [1.000000006]


def test_perf_counter_ns_works_as_the_clock() -> None:
    timer = Timer(time.perf_counter_ns, timer_unit="ns")
    for _ in range(3):
        with timer:
            pass
    assert len(timer) == 3
    assert np.issubdtype(timer.timestamps().dtype, np.integer)
    assert (timer.durations("ns") >= 0).all()  # perf_counter_ns is monotonic


# ---------------------------------------------------------------- timestamp_convert


def test_convert_scalar_gives_a_float() -> None:
    for value in (1500, 1500.0, np.int64(1500), np.array(1500)):
        result = timestamp_convert(value, "ns", "us")
        assert type(result) is float
        assert result == 1.5


def test_convert_sequence_gives_a_float64_array() -> None:
    for values in ([1, 2], (1, 2), np.array([1, 2], dtype=np.int64)):
        result = timestamp_convert(values, "s", "ms")
        assert isinstance(result, np.ndarray)
        assert result.dtype == np.float64
        assert result.tolist() == [1000.0, 2000.0]


@pytest.mark.parametrize(
    ("value", "src", "dst", "expected"),
    [
        (1.0, "s", "ns", 1e9),
        (1.0, "s", "us", 1e6),
        (1.0, "s", "ms", 1e3),
        (1.0, "ms", "us", 1e3),
        (3.0, "us", "ns", 3e3),
        (1e9, "ns", "s", 1.0),
        (1.0, "ns", "s", 1e-9),
        (250.0, "ms", "s", 0.25),
        # Divided by an exact 10**k, not multiplied by an inexact 1e-k (3 * 1e-9 != 3e-9).
        (3.0, "ns", "s", 3e-9),
        (9.0, "ms", "s", 0.009),
        (5.0, "us", "s", 5e-6),
        (7.0, "us", "us", 7.0),
    ],
)
def test_convert_factors(value: float, src: str, dst: str, expected: float) -> None:
    assert timestamp_convert(value, src, dst) == expected


@given(
    st.floats(min_value=-1e12, max_value=1e12, allow_nan=False),
    st.sampled_from(UNITS),
    st.sampled_from(UNITS),
)
def test_convert_round_trip(value: float, src: str, dst: str) -> None:
    back = timestamp_convert(timestamp_convert(value, src, dst), dst, src)
    assert back == pytest.approx(value, rel=1e-12, abs=1e-300)

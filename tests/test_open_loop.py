"""Open-loop load (``arrival_rate``): the arrival processes, the serving loop on a fake clock
(scheduling, latency counted from each request's due time, what is left at the end), the
report's fields, and real runs with each built-in runner."""

from __future__ import annotations

import re
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_worker import make_job

import neuronperf as npf
from neuronperf_core.benchmarking import arrivals
from neuronperf_core.benchmarking.arrivals import ArrivalsError, Schedule, read_trace
from neuronperf_core.benchmarking.runners import close_open_loop, raw_result
from neuronperf_core.benchmarking.worker import (
    OPEN_LOOP_COLUMNS,
    Stop,
    WorkerResult,
    _Samples,
    open_loop,
)
from neuronperf_core.options import OptionError
from neuronperf_core.reporting import get_reports
from neuronperf_core.uncertainty import fell_behind

MS = 1_000_000
S = 1_000_000_000


# -- arrival processes -------------------------------------------------------------------


def offsets(schedule: Schedule, until_ns: int) -> np.ndarray:
    n = schedule.due_before(until_ns)  # draws the arrivals up to until_ns
    return schedule.offsets[:n]


def test_poisson_arrivals_are_seeded_and_have_the_rate_asked_for() -> None:
    first = offsets(Schedule("poisson", 1000.0, 1, 0, seed=7), 100 * S)
    again = offsets(Schedule("poisson", 1000.0, 1, 0, seed=7), 100 * S)
    other = offsets(Schedule("poisson", 1000.0, 1, 0, seed=8), 100 * S)
    assert np.array_equal(first, again)  # the same seed, the same arrivals
    assert not np.array_equal(first[:100], other[:100])
    # 100,000 expected: the count's standard deviation is 316, so 2% is 6 of them
    assert abs(len(first) - 100_000) < 2_000
    gaps = np.diff(first) / 1e6
    assert abs(gaps.mean() - 1.0) < 0.02  # exponential gaps of mean 1/rate ...
    assert abs(gaps.std() / gaps.mean() - 1.0) < 0.02  # ... whose std equals their mean


def test_each_copy_draws_its_own_share_and_the_shares_add_up_to_the_rate() -> None:
    copies = [Schedule("poisson", 1000.0, 4, k, seed=1) for k in range(4)]
    shares = [offsets(c, 50 * S) for c in copies]
    for share in shares:  # 250/s each, independent streams
        assert abs(len(share) - 12_500) < 500
    assert not np.array_equal(shares[0][:50], shares[1][:50])
    merged = np.sort(np.concatenate(shares))
    assert abs(len(merged) - 50_000) < 1_000
    gaps = np.diff(merged) / 1e6  # the union is again Poisson: exponential gaps of 1 ms
    assert abs(gaps.std() / gaps.mean() - 1.0) < 0.03


def test_constant_arrivals_are_dealt_round_robin_to_the_copies() -> None:
    copies = [Schedule("constant", 100.0, 3, k) for k in range(3)]
    assert [c.take() for c in copies] == [0, 10 * MS, 20 * MS]
    merged = np.sort(np.concatenate([offsets(c, 1 * S) for c in copies]))
    assert np.array_equal(merged, np.arange(100) * 10 * MS)


def write_trace(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "arrivals.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_trace_replays_as_recorded_or_rescaled_to_a_rate(tmp_path: Path) -> None:
    path = write_trace(tmp_path, ["# seconds", "10.000", "10.010", "", "10.030", "10.060"])
    trace = read_trace(path)
    assert trace.tolist() == [0, 10 * MS, 30 * MS, 60 * MS]  # relative to the first
    assert arrivals.trace_rate(trace) == pytest.approx(50.0)  # 3 gaps in 60 ms
    as_recorded = [Schedule("poisson", None, 2, k, trace_ns=trace) for k in range(2)]
    assert as_recorded[0].offsets.tolist() == [0, 30 * MS]
    assert as_recorded[1].offsets.tolist() == [10 * MS, 60 * MS]
    assert as_recorded[0].take() == 0
    assert as_recorded[0].take() == 30 * MS
    assert as_recorded[0].take() is None  # the copy's share is over
    twice_as_fast = Schedule("poisson", 100.0, 1, 0, trace_ns=trace)
    assert twice_as_fast.offsets.tolist() == [0, 5 * MS, 15 * MS, 30 * MS]


@pytest.mark.parametrize(
    ("lines", "says"),
    [
        (["0.0", "0.1", "soon"], "arrivals.txt:3: 'soon' is not a time in seconds"),
        (["0.5"], "holds 1 arrival time(s): a replay needs at least 2"),
        (["0.0", "inf"], "is not a finite time"),
    ],
)
def test_a_trace_that_cannot_be_replayed_says_where(
    tmp_path: Path, lines: list[str], says: str
) -> None:
    with pytest.raises(ArrivalsError, match=re.escape(says)):
        read_trace(write_trace(tmp_path, lines))


# -- the serving loop, on a fake clock --------------------------------------------------


class FakeClock:
    """A clock that moves only when the fake model runs or a worker waits."""

    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now


def serve_on(clock: FakeClock, service_ms: float) -> Any:
    def model(*_: Any) -> None:
        clock.now += int(service_ms * MS)

    return model


def fake_wait(clock: FakeClock) -> Any:
    def wait_until(due: int, stop_at: list[int], _clock: Any) -> bool:
        if due >= stop_at[0]:
            return False
        clock.now = due  # wakes exactly on time: no generator lag
        return True

    return wait_until


def run_open_loop(
    schedule: Schedule, service_ms: float, stop_ns: int, clock: FakeClock | None = None
) -> tuple[int, np.ndarray]:
    clock = clock or FakeClock()
    samples = _Samples(10_000, OPEN_LOOP_COLUMNS)
    count, _ = open_loop(
        serve_on(clock, service_ms),
        (),
        schedule,
        0,
        Stop(stop_ns),
        1 << 40,
        samples,
        clock=clock,
        wait_until=fake_wait(clock),
    )
    return count, samples.stamps()


def test_a_fast_model_waits_for_each_arrival_and_its_latency_is_its_service_time() -> None:
    count, stamps = run_open_loop(Schedule("constant", 100.0, 1, 0), 5, 1 * S)
    due, picked, sent, end = stamps.T
    assert count == 100
    assert np.array_equal(due, np.arange(100) * 10 * MS)
    assert np.array_equal(sent, due)  # sent on time
    assert np.all(picked[1:] < due[1:])  # the worker was free before each arrival
    assert np.array_equal(end - due, np.full(100, 5 * MS))


def test_a_slow_model_queues_the_arrivals_and_latency_counts_from_their_due_time() -> None:
    # arrivals every 10 ms, 15 ms each: request k ends at 15(k+1) ms, due at 10k ms
    schedule = Schedule("constant", 100.0, 1, 0)
    count, stamps = run_open_loop(schedule, 15, 1 * S)
    due, _, sent, end = stamps.T
    k = np.arange(count)
    assert np.array_equal(end - due, (15 + 5 * k) * MS)  # the queue grows 5 ms a request
    assert np.array_equal(sent[1:], end[:-1])  # each sent the moment the last returned
    # the window closed at 1 s: 67 requests started (the last ran 990 -> 1005 ms), 100
    # arrived, so 33 were left queued
    assert count == 67
    worker = WorkerResult(0, 0, count, int(end[-1]), 1, stamps, [])
    close_open_loop(schedule, [worker], 0, 1 * S)
    assert worker.late == 33
    assert worker.open_window_ns == (0, 1 * S)  # the schedule's window, start to deadline


def test_a_closed_loop_hides_what_an_open_loop_shows() -> None:
    """Coordinated omission: a model that stalls 100 ms every second, at 1 ms a call. A
    closed loop sends it nothing while it stalls: one slow call in a thousand. At 500
    requests per second 50 requests queue behind each stall."""

    def stalling(clock: FakeClock) -> Any:
        stalled: set[int] = set()

        def model(*_: Any) -> None:
            second = clock.now // S
            clock.now += MS if second in stalled else 100 * MS  # the first call of a second
            stalled.add(second)

        return model

    clock = FakeClock()
    closed = []
    model = stalling(clock)
    while clock.now < 10 * S:
        start = clock.now
        model()
        closed.append(clock.now - start)
    clock = FakeClock()
    samples = _Samples(100_000, OPEN_LOOP_COLUMNS)
    open_loop(
        stalling(clock),
        (),
        Schedule("constant", 500.0, 1, 0),
        0,
        Stop(10 * S),
        1 << 40,
        samples,
        clock=clock,
        wait_until=fake_wait(clock),
    )
    due, _, _, end = samples.stamps().T
    closed_p99 = np.percentile(closed, 99) / MS
    open_p99 = np.percentile(end - due, 99) / MS
    assert closed_p99 == 1.0
    assert open_p99 > 90.0  # the requests that waited out a stall


def test_windows_of_until_stable_serve_every_arrival_once() -> None:
    """until_stable times window after window: an arrival taken when the first window
    closed is served first in the next, not lost."""
    clock, schedule = FakeClock(), Schedule("constant", 100.0, 1, 0)
    samples = _Samples(1000, OPEN_LOOP_COLUMNS)
    held: list[int | None] = [None]
    count = 0
    for window_end in (505 * MS, 1 * S):  # the first closes while the worker waits
        count, _ = open_loop(
            serve_on(clock, 5),
            (),
            schedule,
            0,
            Stop(window_end),
            1 << 40,
            samples,
            count,
            clock=clock,
            wait_until=fake_wait(clock),
            held=held,
        )
    due = samples.stamps()[:, 0]
    assert count == 100
    assert np.array_equal(due, np.arange(100) * 10 * MS)  # none skipped, none twice


def test_a_stop_ends_the_wait_for_an_arrival() -> None:
    clock = FakeClock()
    stop = Stop(1 * S)

    def stopped_while_waiting(due: int, stop_at: list[int], _: Any) -> bool:
        stop.now()  # Ctrl-C while the worker waits for the next arrival
        return False

    count, _ = open_loop(
        serve_on(clock, 1),
        (),
        Schedule("constant", 10.0, 1, 0),
        0,
        stop,
        1 << 40,
        _Samples(100, OPEN_LOOP_COLUMNS),
        clock=clock,
        wait_until=stopped_while_waiting,
    )
    assert count == 1  # the first arrival was due at once; the wait for the second failed


# -- reports ------------------------------------------------------------------------------


def report_of(worker: WorkerResult, **config: Any) -> dict[str, Any]:
    """The report of a finished 1-copy open loop (constant, 100/s, 1 s) whose only worker is
    ``worker``; ``config`` changes the config."""
    job = make_job(duration=1.0)
    changes = {"arrival_rate": 100.0, "arrivals": "constant", **config}
    job = replace(job, config=replace(job.config, **changes))
    (report,) = get_reports([raw_result(job, "finished", workers=[worker])])
    return report


def test_reports_carry_the_offered_and_achieved_rates_and_what_was_left() -> None:
    schedule = Schedule("constant", 100.0, 1, 0)
    count, stamps = run_open_loop(schedule, 15, 1 * S)
    worker = WorkerResult(0, 0, count, int(stamps[-1, 3]), 1, stamps, [], late=33)
    report = report_of(worker)
    total_s = report["total_s"]
    assert total_s == pytest.approx(1.005)  # the first due time to the last end
    assert report["late_at_end"] == 33
    assert report["offered_rate"] == pytest.approx(100 / total_s)
    assert report["achieved_rate"] == pytest.approx(67 / total_s)
    assert report["latency_ms_p0"] == pytest.approx(15.0)  # from the due time ...
    assert report["infer_avg_ms"] == pytest.approx(15.0)  # ... the service alone
    assert report["arrival_lag_us_p99"] is None  # the worker never waited for an arrival
    assert report["queued_ms_avg"] == pytest.approx(5 * (count - 1) / 2)
    assert report["arrival_rate"] == 100.0 and report["arrivals"] == "constant"


def test_the_window_of_an_open_loop_is_its_schedules_start_to_deadline() -> None:
    """Not its first arrival to its last end: a copy whose first arrival comes 10 ms in and
    whose last request ended 5 ms before the deadline still ran for the whole duration."""
    schedule = Schedule("constant", 100.0, 2, 1)  # the second of 2 copies: 10, 30, ... ms
    count, stamps = run_open_loop(schedule, 5, 1 * S)
    worker = WorkerResult(0, 0, count, int(stamps[-1, 3]), 1, stamps, [])
    close_open_loop(schedule, [worker], 0, 1 * S)
    report = report_of(worker)
    assert stamps[0, 0] == 10 * MS and stamps[-1, 3] == 995 * MS
    assert report["total_s"] == 1.0
    assert report["late_at_end"] == 0
    assert report["offered_rate"] == report["achieved_rate"] == 50.0


def test_a_generator_that_lags_is_warned_about() -> None:
    stamps = np.array([[0, -5 * MS, 4 * MS, 5 * MS]] * 100, dtype=np.int64)  # sent 4 ms late
    stamps[:, :] += (np.arange(100) * 10 * MS)[:, None]
    worker = WorkerResult(0, 0, 100, int(stamps[-1, 3]), 1, stamps, [])
    report = report_of(worker)
    assert report["arrival_lag_us_p99"] == pytest.approx(4000.0)
    assert any("could not keep up" in w for w in report["warnings"])


def test_closed_loop_reports_leave_the_open_loop_fields_empty() -> None:
    stamps = np.array([[0, MS], [MS, 2 * MS]], dtype=np.int64)
    worker = WorkerResult(0, 0, 2, 2 * MS, 1, stamps, [])
    report = report_of(worker, arrival_rate=None, arrivals="poisson")
    assert report["offered_rate"] is None and report["late_at_end"] is None


# -- real runs ----------------------------------------------------------------------------


def load_sleeper(_: str, device_id: int = 0) -> Any:
    def model(x: Any) -> Any:
        time.sleep(0.001)
        return x

    return model


def run(**options: Any) -> list[dict[str, Any]]:
    loaded: list[int] = []

    def load(path: str, device_id: int = 0) -> Any:
        loaded.append(device_id)
        return load_sleeper(path, device_id)

    settings = {
        "batch_sizes": [1],
        "n_models": [2],
        "workers_per_model": [1],
        "duration": 2,
        "results_dir": None,
        "verbosity": 0,
        **options,
    }
    return npf.benchmark(load, "sleeper", np.zeros((1, 4)), **settings)


@pytest.mark.parametrize("runner", ["threads", "processes", "interpreters"])
def test_every_runner_keeps_up_with_a_rate_the_model_can_serve(runner: str) -> None:
    (report,) = run(arrival_rate=100, runner=runner)
    assert report["status"] == "finished", report["error"]
    assert report["arrival_rate"] == 100.0 and report["arrivals"] == "poisson"
    # kept up: the odd arrival due in the last moment may still be waiting for a worker to
    # wake on a busy machine, but no more than the verdict allows (1 %)
    assert fell_behind(report) is None
    assert report["achieved_rate"] == pytest.approx(report["offered_rate"], rel=0.01)
    assert 50 < report["offered_rate"] < 150  # about 200 Poisson arrivals in 2 s
    assert report["latency_ms_p50"] >= 1.0  # the model sleeps 1 ms


def test_a_list_of_rates_sweeps_them_and_an_overload_queues() -> None:
    low, high = run(arrival_rate=[50, 5000], runner="threads", n_models=[1])
    assert [low["arrival_rate"], high["arrival_rate"]] == [50.0, 5000.0]
    assert fell_behind(low) is None
    # one copy serves at most ~900/s: most of 10,000 arrivals are still queued at the end,
    # and the ones served waited long
    assert high["late_at_end"] > 5000
    assert high["achieved_rate"] < high["offered_rate"] / 2
    assert high["latency_ms_p50"] > 50 * low["latency_ms_p50"]


def test_a_recorded_trace_is_replayed_to_the_copies(tmp_path: Path) -> None:
    times = [f"{1000.0 + k * 0.01:.3f}" for k in range(100)]  # 100/s for a second
    trace = write_trace(tmp_path, times)
    (as_recorded,) = run(arrivals=str(trace), runner="threads", duration=2)
    assert as_recorded["status"] == "finished", as_recorded["error"]
    assert as_recorded["arrival_rate"] is None and as_recorded["arrivals"] == str(trace)
    # every arrival served, both copies' shares: then nothing more arrives until the end
    assert as_recorded["total_infs"] == 100 and as_recorded["late_at_end"] == 0
    assert as_recorded["offered_rate"] == pytest.approx(50.0, rel=0.01)  # 100 in 2 s
    (faster,) = run(arrivals=str(trace), arrival_rate=[200], runner="threads", duration=2)
    assert faster["total_infs"] == 100  # the same arrivals, in half the time


def test_the_same_seed_offers_the_same_arrivals() -> None:
    first, again = run(arrival_rate=[200, 200], runner="threads", n_models=[1], duration=1)
    assert first["late_at_end"] + first["total_infs"] == again["late_at_end"] + again["total_infs"]


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"arrivals": "constant"}, "arrivals='constant' needs a rate"),
        ({"arrival_rate": 10, "duration": 0}, "duration=0 (one pass) gives it no time"),
        ({"arrival_rate": [10, 0]}, "arrival_rate must be requests per second above 0"),
        ({"arrivals": "no-such-file.txt"}, "neither 'poisson' nor 'constant'"),
    ],
)
def test_an_open_loop_it_cannot_run_is_refused_before_anything_loads(
    options: dict[str, Any], says: str
) -> None:
    loaded: list[int] = []

    def load(path: str, device_id: int = 0) -> Any:
        loaded.append(device_id)
        return load_sleeper(path)

    with pytest.raises((OptionError, ArrivalsError), match=re.escape(says)):
        npf.benchmark(load, "m", np.zeros((1, 4)), batch_sizes=[1], results_dir=None, **options)
    assert loaded == []


def test_evaluate_takes_no_arrival_rate() -> None:
    rows = [(np.zeros(4), 0)] * 4
    with pytest.raises(OptionError, match="arrival_rate and arrivals apply to benchmark only"):
        npf.evaluate(load_sleeper, "m", rows, metrics="accuracy", arrival_rate=10)

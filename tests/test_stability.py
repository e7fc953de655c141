"""Warm-up, sub-windows and the run's record through real benchmark runs (no timed
assertions: what is checked is counted, not how long it took)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import neuronperf as npf
from neuronperf import cpu
from neuronperf_core import uncertainty
from neuronperf_core.benchmarking.config import BenchmarkConfig
from neuronperf_core.benchmarking.stability import StableVotes, WindowBoard
from neuronperf_core.benchmarking.worker import NEVER, Job, ModelCopy, Stop, run_worker
from neuronperf_core.options import OptionError
from neuronperf_core.reporting import REPORT_FIELDS

S = 1_000_000_000

X = np.ones(4)
QUICK: dict[str, Any] = {
    "duration": 60,
    "max_infers": 30,
    "n_models": 1,
    "workers_per_model": 1,
    "stats_interval": 0,
    "results_dir": None,
    "runner": "threads",
}


class CountingModel:
    """Counts its calls; sleeps ``latency_s`` in each."""

    calls = 0

    def __init__(self, latency_s: float = 0.0) -> None:
        self.latency_s = latency_s

    def __call__(self, x: Any) -> Any:
        import time

        type(self).calls += 1
        if self.latency_s:
            time.sleep(self.latency_s)
        return x


@pytest.fixture(autouse=True)
def zero_calls() -> None:
    CountingModel.calls = 0


def test_warm_up_runs_the_calls_asked_for_and_reports_them() -> None:
    (report,) = cpu.benchmark(CountingModel(), X, warmup_infers=3, **QUICK)
    assert CountingModel.calls == 3 + QUICK["max_infers"]
    assert report["warmup_infers"] == 3 and report["warmup_avg_infers"] == 3
    assert report["warmup_seconds"] == 0.0


def test_warm_up_can_be_none_at_all() -> None:
    (report,) = cpu.benchmark(CountingModel(), X, warmup_infers=0, **QUICK)
    assert CountingModel.calls == QUICK["max_infers"] and report["warmup_avg_infers"] == 0


def test_warm_up_in_seconds_runs_at_least_that_long() -> None:
    # 10 ms per call: 0.05 s of warm-up needs at least 5 calls, whatever the machine does
    (report,) = cpu.benchmark(
        CountingModel(latency_s=0.01), X, warmup_infers=1, warmup_seconds=0.05, **QUICK
    )
    assert report["warmup_avg_infers"] >= 5
    assert report["warmup_avg_ms"] >= 50.0
    assert CountingModel.calls == report["warmup_avg_infers"] + QUICK["max_infers"]


@pytest.mark.parametrize(
    ("keyword", "value", "message"),
    [
        ("warmup_infers", -1, "warmup_infers must be a whole number >= 0"),
        ("warmup_seconds", -0.5, "warmup_seconds must be a finite number of seconds >= 0"),
        ("window_s", 0, "window_s must be a number of seconds > 0"),
        ("stability_pct", 100, "stability_pct must be a percentage above 0 and below 100"),
        ("intra_op_threads", 0, "intra_op_threads must be a whole number of at least 1"),
    ],
)
def test_bad_settings_are_refused_before_anything_runs(
    keyword: str, value: Any, message: str
) -> None:
    with pytest.raises(OptionError, match=message):
        cpu.benchmark(CountingModel(), X, **{**QUICK, keyword: value})
    assert CountingModel.calls == 0


def test_python_callables_refuse_a_thread_count_neuronperf_cannot_set() -> None:
    with pytest.raises(OptionError, match="cannot set its framework's thread count"):
        cpu.benchmark(CountingModel(), X, intra_op_threads=2, **QUICK)
    assert CountingModel.calls == 0


def test_python_callables_refuse_a_transfer_neuronperf_does_not_make() -> None:
    with pytest.raises(OptionError, match="neuronperf does not move it anywhere"):
        cpu.benchmark(CountingModel(), X, transfer="device", **QUICK)
    assert CountingModel.calls == 0


def test_every_report_and_results_file_records_the_machine_and_the_call(tmp_path: Path) -> None:
    results = tmp_path / "run.json"
    options = {**QUICK, "results_dir": None, "results_file": results}
    (report,) = cpu.benchmark(CountingModel(), X, window_s=0.5, **options)
    (saved,) = json.loads(results.read_text())
    for r in (report, saved):
        assert set(REPORT_FIELDS) <= set(r)
        assert r["host"] and r["cpu_count"] >= 1 and r["memory_gb"] and r["os"]
        assert r["versions"]["neuronperf-core"]
        assert r["call"].startswith("benchmark(") and "window_s=0.5" in r["call"]
        assert "max_infers=30" in r["call"] and "runner='threads'" in r["call"]
        assert r["run_started_utc"] and r["started_utc"]
        assert r["intra_op_threads"] is None  # a Python callable's are its own
        assert r["other_cpu_s"] is not None and r["other_cpu_s"] >= 0
        assert isinstance(r["busy_machine"], bool)
        assert r["valid"] is False  # 30 inferences: too few for p99, far below 10 s
        assert any("p99" in reason for reason in r["invalid_reasons"])


# ---------------------------------------------------------------- until_stable


def board(n_workers: int = 1, min_windows: int = 0, tolerance: float = 0.1) -> Any:
    changes: list[bool] = []
    b = WindowBoard(n_workers, 0, S, tolerance, min_windows * S, changes.append)
    return b, changes


def lat(ms: float, n: int = 10) -> Any:
    return np.full(n, int(ms * 1e6), np.int64)


def test_a_board_judges_a_window_once_every_worker_posted_it() -> None:
    b, changes = board(n_workers=2)
    for window, (rate, ms) in enumerate([(50, 2.0), (100, 1.0), (104, 1.0), (100, 1.05)]):
        b.post(window, rate // 2, lat(ms))
        if window == 0:
            assert b.rates == []  # the other worker has not posted window 0 yet
        b.post(window, rate - rate // 2, lat(ms))
    assert b.rates == [50.0, 100.0, 104.0, 100.0]
    assert changes == [False, True]  # unstable at 3 windows, stable at the 4th
    b.post(4, 100, lat(3.0))
    b.post(4, 100, lat(3.0))
    assert changes == [False, True, False]


def test_an_open_loop_board_judges_latency_alone() -> None:
    """Its window counts are what the arrivals brought (Poisson: 12 % apart here)."""
    for open_loop, expected in ((False, [False]), (True, [False, True])):
        changes: list[bool] = []
        b = WindowBoard(1, 0, S, 0.1, 0, changes.append, open_loop)
        for window, count in enumerate([88, 112, 100]):
            b.post(window, count, lat(1.0))
        assert changes == expected


def test_a_board_waits_for_the_minimum_duration() -> None:
    b, changes = board(min_windows=5)
    for window in range(5):
        b.post(window, 100, lat(1.0))
    assert changes == [False, True] and len(b.rates) == 5


def test_the_config_stops_when_every_copy_is_stable() -> None:
    stops: list[int] = []
    votes = StableVotes(2, lambda: stops.append(1))
    votes.vote(0, True)
    votes.vote(1, False)
    votes.vote(0, False)
    votes.vote(1, True)
    assert stops == []
    votes.vote(0, True)
    votes.vote(1, True)
    assert stops == [1]  # once


@pytest.mark.parametrize("max_samples", [4, 64, 1_000_000])
def test_timing_in_windows_keeps_every_sample_where_it_belongs(max_samples: int) -> None:
    posted: list[tuple[int, int]] = []

    class Recorder(WindowBoard):
        def post(self, window: int, count: int, latency_ns: Any) -> None:
            posted.append((window, count))

    config = BenchmarkConfig(
        model_name="m", model_filename="m", input_idx=0, batch_size=1, pipeline_size=1,
        cast_mode=None, n_models=1, workers_per_model=1, device_type="cpu",
        runner="threads", duration=1.0, max_infers=None,
    )  # fmt: skip
    job = Job(config=config, load_fn=lambda *a, **k: None, model_input=X, max_samples=max_samples)
    calls: list[int] = []

    def model(x: Any) -> Any:
        calls.append(time.perf_counter_ns())
        return x

    start = time.perf_counter_ns()
    recorder = Recorder(1, start, 20_000, 0.1, 0, lambda stable: None)  # 20 us windows
    result = run_worker(job, ModelCopy(0, model), 0, iter(()), Stop(NEVER), 500, recorder)
    assert result.count == len(calls) == 500
    kept, stride = result.stamps.shape[0], result.stride
    assert kept == -(-500 // stride) and kept <= max_samples
    inside = np.asarray(calls, np.int64)[::stride]  # kept sample j is inference j * stride
    assert (result.stamps[:, 0] <= inside).all() and (inside <= result.stamps[:, 1]).all()
    assert [w for w, _ in posted] == list(range(len(posted)))  # every window, in order
    # each window counts its kept samples x the stride: what ended in it, give or take one
    assert posted and sum(n for _, n in posted) <= 500 + stride


class Drifting:
    """Each call slower than the last: 1 ms at first, 1 ms more every 0.3 s. Any three
    windows of 0.1 s differ by far more than 10 %, wherever they fall."""

    def __init__(self) -> None:
        self.start: float | None = None

    def __call__(self, x: Any) -> Any:
        now = time.perf_counter()
        self.start = self.start or now
        time.sleep(0.001 * (1 + (now - self.start) / 0.3))
        return x


def test_until_stable_runs_to_the_maximum_duration_when_never_stable() -> None:
    (report,) = cpu.benchmark(
        Drifting(), X, until_stable=True, window_s=0.1,
        **{**QUICK, "duration": 0.6, "max_infers": None},
    )  # fmt: skip
    assert report["until_stable"] is True and report["stable"] is False
    # ran to its maximum, 0.6 s from the shared start (the first inference starts just after)
    assert report["total_s"] > 0.55 and report["n_windows"] >= 5


@pytest.mark.parametrize("runner", ["threads", "processes"])
def test_until_stable_stops_a_steady_config_early(
    runner: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(uncertainty, "MIN_VALID_DURATION_S", 0.0)  # forked copies inherit it
    # a 1 ms sleep, judged at a 50 % tolerance: stable within a few windows of 20 ms
    # on any machine; the maximum, 60 s, is never reached
    (report,) = cpu.benchmark(
        npf.DummyModel(latency_s=0.001), X, until_stable=True, window_s=0.02,
        stability_pct=50, **{**QUICK, "runner": runner, "n_models": 2, "max_infers": None},
    )  # fmt: skip
    assert report["status"] == "finished" and report["stable"] is True
    assert report["n_windows"] < 60 / 0.02


def test_stopping_a_config_stops_the_window_each_worker_is_timing() -> None:
    stop = Stop(NEVER)
    first, second = stop.window(10**18), stop.window(10**18)  # two workers' equal windows
    stop.unlink(first)
    stop.now()  # Ctrl-C, or every copy stable
    assert second.at[0] == 0 and first.at[0] == 10**18  # the unlinked one is done already
    assert stop.window(10**18).at[0] == 0  # a window opened after the stop is over at once

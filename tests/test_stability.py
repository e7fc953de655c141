"""Warm-up, sub-windows and the run's record through real benchmark runs (no timed
assertions: what is checked is counted, not how long it took)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from neuronperf import cpu
from neuronperf_core.options import OptionError
from neuronperf_core.reporting import REPORT_FIELDS

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

"""Reports from hand-built raw results whose every number is known in advance."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neuronperf_core.benchmarking.config import BenchmarkConfig
from neuronperf_core.errors import NeuronPerfError
from neuronperf_core.reporting import (
    REPORT_FIELDS,
    SUMMARY_COLS,
    ReportError,
    get_reports,
    print_reports,
    write_csv,
    write_json,
)

MS = 1_000_000  # ns
S = 1_000_000_000  # ns

# The 1.x report fields, spelled out here so that a rename in the module fails a test.
V1_FIELDS = [
    "n_models",
    "workers_per_model",
    "pipeline_size",
    "batch_size",
    "model_name",
    "model_filename",
    "device_type",
    "instance_type",
    "multiprocess",
    "multiinterpreter",
    "status",
    "throughput_avg",
    "throughput_peak",
    "latency_ms_p0",
    "latency_ms_p50",
    "latency_ms_p90",
    "latency_ms_p95",
    "latency_ms_p99",
    "latency_ms_p100",
    "latency_ms_avg",
    "load_avg_ms",
    "warmup_avg_ms",
    "env_setup_avg_ms",
    "setup_avg_ms",
    "input_avg_ms",
    "preprocess_avg_ms",
    "infer_avg_ms",
    "postprocess_avg_ms",
    "e2e_avg_ms",
    "worker_avg_s",
    "total_infs",
    "total_s",
    "cpu_avg_percent",
    "cpu_percent_p50",
    "mem_avg_percent",
    "mem_percent_p50",
    "cost_per_1m_inf",
]

MEASURED = [
    "throughput_avg",
    "throughput_peak",
    "latency_ms_p0",
    "latency_ms_p50",
    "latency_ms_p100",
    "latency_ms_avg",
    "latency_ms_std",
    "e2e_avg_ms",
    "infer_avg_ms",
    "worker_avg_s",
    "load_avg_ms",
    "cpu_avg_percent",
    "mem_percent_p50",
    "cost_per_1m_inf",
    "total_s",
    "harness_overhead_us",
]


def config(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = dict(
        model_name="resnet",
        model_filename="models/resnet_b4_p1_abcdefgh.pt",
        input_idx=1,
        batch_size=4,
        pipeline_size=1,
        cast_mode="fp32",
        n_models=2,
        workers_per_model=2,
        device_type="neuron",
        runner="processes",
        duration=10.0,
        max_infers=None,
        instance_type="inf2.xlarge",
        extra={"performance_level": 3},
    )
    fields.update(overrides)
    return BenchmarkConfig(**fields).to_dict()


def worker(start_ns: Any, end_ns: Any, copy_id: int = 0, worker_id: int = 0, **phases: Any) -> Any:
    start = np.asarray(start_ns, dtype=np.int64)
    end = np.asarray(end_ns, dtype=np.int64)
    return {
        "copy_id": copy_id,
        "worker_id": worker_id,
        "count": len(start),
        "start_ns": start,
        "end_ns": end,
        "phases_ns": {k: np.asarray(v, dtype=np.int64) for k, v in phases.items()}
        or {"infer": end - start},
    }


def ends_worker(end_ns: Any, latency_ns: int = MS, **kw: Any) -> Any:
    """A worker whose inferences end at ``end_ns`` and each take ``latency_ns``."""
    end = np.asarray(end_ns, dtype=np.int64)
    return worker(end - latency_ns, end, **kw)


def raw(
    workers: list[Any] | None = None,
    window_ns: tuple[int, int] | None = (0, 10 * S),
    status: str = "finished",
    error: str | None = None,
    copies: list[Any] | None = None,
    stats: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    overhead_ns: float | None = 250.0,
    **config_overrides: Any,
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "config": config(**config_overrides),
        "status": status,
        "error": error,
        "window_ns": None if window_ns is None else list(window_ns),
        "copies": copies if copies is not None else [],
        "workers": workers if workers is not None else [],
        "overhead_ns": overhead_ns,
        "stats": stats if stats is not None else {},
        "metrics": metrics if metrics is not None else {},
    }
    return result


def one(result: dict[str, Any], cost_per_hour: float | None = None) -> dict[str, Any]:
    [report] = get_reports([result], cost_per_hour=cost_per_hour)
    return report


def plain_types_only(value: Any) -> None:
    if isinstance(value, dict):
        for v in value.values():
            plain_types_only(v)
    elif isinstance(value, list):
        for v in value:
            plain_types_only(v)
    else:
        assert type(value) in (int, float, str, bool, type(None)), (value, type(value))
        assert not (isinstance(value, float) and math.isnan(value))


# ---------------------------------------------------------------- fields and config


def test_report_fields_in_order_with_1x_fields_first() -> None:
    report = one(raw([ends_worker([S])]))
    assert list(REPORT_FIELDS[: len(V1_FIELDS)]) == V1_FIELDS
    assert list(report)[: len(REPORT_FIELDS)] == list(REPORT_FIELDS)
    for new in ("latency_ms_std", "latency_samples", "latency_percentile_method"):
        assert new in REPORT_FIELDS
    assert {"harness_overhead_us", "error", "cast_mode", "runner"} <= set(REPORT_FIELDS)


def test_config_fields_and_extra_are_copied() -> None:
    report = one(raw([ends_worker([S])], runner="interpreters", max_infers=500))
    expected = {
        "n_models": 2,
        "workers_per_model": 2,
        "pipeline_size": 1,
        "batch_size": 4,
        "model_name": "resnet",
        "model_filename": "models/resnet_b4_p1_abcdefgh.pt",
        "device_type": "neuron",
        "instance_type": "inf2.xlarge",
        "multiprocess": True,
        "multiinterpreter": True,
        "status": "finished",
        "cast_mode": "fp32",
        "runner": "interpreters",
        "duration": 10.0,
        "max_infers": 500,
        "input_idx": 1,
        "performance_level": 3,
        "error": None,
        "latency_percentile_method": "linear",
    }
    assert {k: report[k] for k in expected} == expected
    threads = one(raw([ends_worker([S])], runner="threads"))
    assert (threads["multiprocess"], threads["multiinterpreter"]) == (False, False)


# ---------------------------------------------------------------- latency


def test_latency_percentiles_known_values() -> None:
    # Latencies 1..5 ms over two workers; linear method: p90 at rank 3.6 -> 4.6 ms.
    w0 = worker([0, 0, 0], [1 * MS, 3 * MS, 5 * MS])
    w1 = worker([10 * MS, 10 * MS], [12 * MS, 14 * MS], worker_id=1)
    report = one(raw([w0, w1]))
    assert report["latency_ms_p0"] == 1.0
    assert report["latency_ms_p50"] == 3.0
    assert report["latency_ms_p90"] == pytest.approx(4.6, rel=1e-12)
    assert report["latency_ms_p95"] == pytest.approx(4.8, rel=1e-12)
    assert report["latency_ms_p99"] == pytest.approx(4.96, rel=1e-12)
    assert report["latency_ms_p100"] == 5.0
    assert report["latency_ms_avg"] == report["e2e_avg_ms"] == 3.0
    assert report["latency_ms_std"] == pytest.approx(math.sqrt(2), rel=1e-12)  # ddof=0
    assert report["latency_samples"] == report["total_infs"] == 5


def test_latency_percentiles_equal_numpy_linear_on_pooled_workers() -> None:
    rng = np.random.default_rng(7)
    workers, pooled = [], []
    for i in range(3):
        start = np.cumsum(rng.integers(1, 5 * MS, 1000))
        latency = rng.integers(100_000, 40 * MS, 1000)
        workers.append(worker(start, start + latency, worker_id=i))
        pooled.append(latency)
    lat = np.concatenate(pooled)
    report = one(raw(workers))
    for p in (0, 50, 90, 95, 99, 100):
        expected = float(np.percentile(lat, p, method="linear")) / MS
        assert report[f"latency_ms_p{p}"] == pytest.approx(expected, rel=1e-12, abs=0)
    assert report["latency_ms_avg"] == pytest.approx(lat.mean() / MS, rel=1e-12)
    assert report["latency_ms_std"] == pytest.approx(lat.std() / MS, rel=1e-12)
    assert report["latency_samples"] == 3000


def test_latency_is_end_to_end_and_phases_are_their_own_means() -> None:
    # e2e 10 ms each; infer 6 and 8 ms; input 1 ms; no pre/postprocess ran.
    w = worker([0, 20 * MS], [10 * MS, 30 * MS], input=[MS, MS], infer=[6 * MS, 8 * MS])
    report = one(raw([w]))
    assert report["latency_ms_p50"] == report["e2e_avg_ms"] == 10.0
    assert report["infer_avg_ms"] == 7.0
    assert report["input_avg_ms"] == 1.0
    assert report["preprocess_avg_ms"] is None
    assert report["postprocess_avg_ms"] is None


def test_thinned_samples_count_every_inference_they_stand_for() -> None:
    # 7 inferences kept with stride 2: samples are inferences 0, 2, 4, 6.
    end = np.array([100, 300, 500, 700], dtype=np.int64) * MS + S
    w = {"copy_id": 0, "worker_id": 0, "count": 7, "stride": 2, "last_end_ns": int(end[-1])}
    w.update(start_ns=end - MS, end_ns=end, phases_ns={"infer": np.full(4, MS, np.int64)})
    result = raw([w], status="interrupted", error="Interrupted by the user (Ctrl-C).")
    result["window_ns"] = [S, S + 2 * S]
    report = one(result)
    assert report["total_infs"] == 7
    assert report["latency_samples"] == 4
    assert report["throughput_avg"] == 7 * 4 / 2.0
    assert report["throughput_peak"] == 4 * 2 * 4  # 4 samples of 2 inferences each, batch 4
    assert report["status"] == "interrupted"
    assert report["error"] == "Interrupted by the user (Ctrl-C)."


def test_arrays_that_went_through_json_as_lists_work() -> None:
    result = raw([ends_worker([S, 2 * S])])
    result["workers"] = json.loads(json.dumps(result["workers"], default=lambda a: a.tolist()))
    assert one(result)["total_infs"] == 2


# ---------------------------------------------------------------- throughput


def test_throughput_avg_is_inferences_times_batch_over_window() -> None:
    report = one(raw([ends_worker(np.arange(1, 11) * S // 5)], window_ns=(S, 3 * S)))
    assert report["total_infs"] == 10
    assert report["total_s"] == 2.0
    assert report["throughput_avg"] == 10 * 4 / 2.0


def test_throughput_peak_finds_a_burst() -> None:
    # 10 s window; one inference ending at 0.5, 1.5, ..., 9.5 s, and a burst of 30 ending
    # 1 ms apart from 5.000 s. Best 1-s window: (4.029, 5.029] or (4.5, 5.5]: 31 inferences.
    background = (np.arange(10) * S + S // 2).tolist()
    burst = (5 * S + np.arange(30) * MS).tolist()
    w0 = ends_worker(background)
    w1 = ends_worker(burst, worker_id=1)
    report = one(raw([w1, w0], batch_size=2))
    assert report["throughput_peak"] == 31 * 2
    assert report["throughput_avg"] == 40 * 2 / 10


def test_throughput_peak_window_is_open_on_the_left() -> None:
    # Ends exactly 1 s apart: every window (end - 1 s, end] holds one inference.
    report = one(raw([ends_worker([1 * S, 2 * S, 3 * S])], window_ns=(0, 3 * S), batch_size=1))
    assert report["throughput_peak"] == 1.0
    assert report["throughput_avg"] == 1.0


@settings(max_examples=60, deadline=None)
@given(
    ends=st.lists(st.integers(0, 5 * S), min_size=1, max_size=60),
    batch=st.integers(1, 8),
)
def test_throughput_peak_equals_brute_force(ends: list[int], batch: int) -> None:
    report = one(raw([ends_worker(ends)], window_ns=(0, 5 * S), batch_size=batch))
    brute = max(sum(1 for e in ends if end - S < e <= end) for end in ends)
    assert report["throughput_peak"] == brute * batch


def test_throughput_peak_on_a_million_samples() -> None:
    # 1,000,000 inferences ending every 2 us over a 2 s window: 500,000 per second.
    end = np.arange(1, 1_000_001, dtype=np.int64) * 2_000
    report = one(raw([worker(end - 1_000, end)], window_ns=(0, 2 * S), batch_size=1))
    assert report["throughput_peak"] == 500_000.0
    assert report["throughput_avg"] == 500_000.0
    assert report["latency_ms_p99"] == 0.001


@pytest.mark.parametrize("window_ns", [1, 1_000, 200 * MS, S - 1])
def test_short_windows_give_finite_throughput_and_peak_equals_avg(window_ns: int) -> None:
    report = one(raw([worker([0], [window_ns])], window_ns=(0, window_ns), batch_size=3))
    expected = 3 / (window_ns / S)
    assert report["throughput_avg"] == pytest.approx(expected, rel=1e-12)
    assert report["throughput_peak"] == report["throughput_avg"]
    assert math.isfinite(report["throughput_avg"])


@pytest.mark.parametrize(
    ("workers", "window_ns"),
    [
        ([], (0, 10 * S)),  # nothing completed
        ([worker([], [])], (0, 10 * S)),  # a worker that completed nothing
        ([ends_worker([5])], (5, 5)),  # an empty window
        ([ends_worker([S])], None),  # no window recorded
    ],
)
def test_throughput_is_none_not_nan_without_data(workers: list[Any], window_ns: Any) -> None:
    report = one(raw(workers, window_ns=window_ns), cost_per_hour=1.0)
    assert report["throughput_avg"] is None
    assert report["throughput_peak"] is None
    assert report["cost_per_1m_inf"] is None
    json.dumps(report, allow_nan=False)


# ---------------------------------------------------------------- copies, workers, stats, cost


def test_copy_averages_in_ms() -> None:
    copies = [
        {"copy_id": 0, "env_setup_ns": 0, "load_ns": 10 * MS, "setup_ns": MS, "warmup_ns": 4 * MS},
        {"copy_id": 1, "env_setup_ns": 0, "load_ns": 30 * MS, "setup_ns": 0, "warmup_ns": 6 * MS},
    ]
    report = one(raw([ends_worker([S])], copies=copies))
    assert report["load_avg_ms"] == 20.0
    assert report["warmup_avg_ms"] == 5.0
    assert report["setup_avg_ms"] == 0.5
    assert report["env_setup_avg_ms"] == 0.0  # no hook given: 0, as the raw result says
    assert one(raw([ends_worker([S])], copies=[]))["load_avg_ms"] is None


def test_worker_avg_s_is_mean_of_each_workers_span() -> None:
    a = worker([0, S], [S // 2, 2 * S])  # 0 .. 2 s
    b = worker([S, 3 * S], [2 * S, 4 * S], worker_id=1)  # 1 .. 4 s
    idle = worker([], [], worker_id=2)  # no inferences: no span
    assert one(raw([a, b, idle]))["worker_avg_s"] == 2.5
    assert one(raw([idle]))["worker_avg_s"] is None


def test_cpu_and_mem_are_true_means_and_medians_of_the_samples() -> None:
    # 1.x averaged six percentiles: (0+0+0+100+100+100)/6 = 50 here; the true mean is 25.
    stats = {"interval_s": 0.5, "cpu_percent": np.array([0.0, 0.0, 0.0, 100.0])}
    stats["mem_percent"] = np.array([10.0, 20.0, 60.0])
    report = one(raw([ends_worker([S])], stats=stats))
    assert report["cpu_avg_percent"] == 25.0
    assert report["cpu_percent_p50"] == 0.0
    assert report["mem_avg_percent"] == 30.0
    assert report["mem_percent_p50"] == 20.0


@pytest.mark.parametrize(
    "stats", [{}, {"interval_s": 0.5, "cpu_percent": np.empty(0), "mem_percent": []}]
)
def test_cpu_and_mem_are_none_without_samples(stats: dict[str, Any]) -> None:
    report = one(raw([ends_worker([S])], stats=stats))
    fields = ("cpu_avg_percent", "cpu_percent_p50", "mem_avg_percent", "mem_percent_p50")
    assert [report[f] for f in fields] == [None] * 4


def test_cost_per_1m_inferences() -> None:
    # 1000 inferences of batch 1 in 1 s: 1000 inf/s; $3.60/h -> $1.00 per million.
    result = raw([ends_worker(np.arange(1, 1001) * MS)], window_ns=(0, S), batch_size=1)
    assert one(result, cost_per_hour=3.6)["cost_per_1m_inf"] == pytest.approx(1.0, rel=1e-12)
    assert one(result)["cost_per_1m_inf"] is None
    with pytest.raises(ReportError, match="cost_per_hour"):
        get_reports([result], cost_per_hour=-1.0)


def test_harness_overhead_in_us() -> None:
    assert one(raw([ends_worker([S])], overhead_ns=250.0))["harness_overhead_us"] == 0.25
    assert one(raw([ends_worker([S])], overhead_ns=None))["harness_overhead_us"] is None


# ---------------------------------------------------------------- metrics, failures, types


def test_metrics_are_passed_through_as_plain_values() -> None:
    metrics = {
        "Accuracy": np.float64(0.75),
        "topk": np.array([0.5, 0.9]),
        "count": np.int64(12),
        "status": "clash",
    }
    report = one(raw([ends_worker([S])], metrics=metrics, extra={"status": "finished", "x": 1}))
    assert report["Accuracy"] == 0.75 and type(report["Accuracy"]) is float
    assert report["topk"] == [0.5, 0.9]
    assert report["count"] == 12 and type(report["count"]) is int
    # Names taken by report fields get a prefix instead of overwriting them.
    assert report["status"] == "finished"  # the benchmark's, from the raw result
    assert report["metric_status"] == "clash"
    assert report["index_status"] == "finished"
    assert report["x"] == 1


def test_non_finite_metric_values_become_none() -> None:
    report = one(raw([ends_worker([S])], metrics={"mae": float("nan"), "r2": np.float32("inf")}))
    assert report["mae"] is None
    assert report["r2"] is None


@pytest.mark.parametrize("status", ["error", "killed"])
def test_failed_config_still_gets_a_report(status: str) -> None:
    report = one(
        raw(
            None,
            window_ns=None,
            status=status,
            error="Model failed to load: out of NeuronCores; try n_models=1.",
            overhead_ns=None,
        ),
        cost_per_hour=2.0,
    )
    assert report["status"] == status
    assert report["error"].startswith("Model failed to load")
    assert report["model_name"] == "resnet" and report["n_models"] == 2
    assert report["total_infs"] == report["latency_samples"] == 0
    assert [report[f] for f in MEASURED] == [None] * len(MEASURED)
    plain_types_only(report)


def test_reports_are_plain_json_serialisable_python() -> None:
    stats = {"interval_s": 0.5, "cpu_percent": np.array([1.0]), "mem_percent": np.array([2.0])}
    copies = [{"copy_id": 0, "env_setup_ns": 0, "load_ns": MS, "setup_ns": 0, "warmup_ns": 0}]
    report = one(raw([ends_worker([S, 2 * S])], copies=copies, stats=stats), cost_per_hour=1.0)
    plain_types_only(report)
    assert json.loads(json.dumps(report, allow_nan=False)) == report


def test_one_report_per_result_in_order() -> None:
    reports = get_reports([raw([ends_worker([S])], batch_size=b) for b in (1, 8, 2)])
    assert [r["batch_size"] for r in reports] == [1, 8, 2]
    assert get_reports([]) == []


def test_1x_tuples_and_bare_dicts_are_rejected_clearly() -> None:
    with pytest.raises(ReportError, match=r"1\.x \(config, results\) tuples"):
        get_reports([({"batch_size": 1}, [])])  # type: ignore[list-item]
    with pytest.raises(ReportError, match=r"get_reports\(\[result\]\)"):
        get_reports(raw([]))  # type: ignore[arg-type]
    assert issubclass(ReportError, NeuronPerfError) and issubclass(ReportError, ValueError)


def test_count_larger_than_arrays_is_reported_as_malformed() -> None:
    w = ends_worker([S, 2 * S])
    w["count"] = 5
    with pytest.raises(ReportError, match=r"results\[0\] is malformed.*start_ns"):
        get_reports([raw([w])])
    w["count"], w["stride"] = 4, 2  # 2 samples: right
    assert one(raw([w]))["total_infs"] == 4


# ---------------------------------------------------------------- print_reports


def report_with(**values: Any) -> dict[str, Any]:
    report = dict.fromkeys(REPORT_FIELDS)
    report.update(values)
    return report


@pytest.fixture(autouse=True)
def no_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables printed to a file keep their natural width, unless COLUMNS says otherwise."""
    monkeypatch.delenv("COLUMNS", raising=False)


def table(reports: list[dict[str, Any]], **kw: Any) -> list[str]:
    out = io.StringIO()
    print_reports(reports, file=out, **kw)
    return out.getvalue().splitlines()


def spans(lines: list[str]) -> list[tuple[int, int]]:
    """Where each column is, from the header rule (dashes as wide as the column)."""
    rule = next(line for line in lines if set(line) <= {"-", " "})
    return [(m.start(), m.end()) for m in re.finditer("-+", rule)]


def cells(lines: list[str], line: str) -> list[str]:
    return [line[a:b].strip() for a, b in spans(lines)]


def headers(lines: list[str]) -> list[str]:
    """The column names, a wrapped header joined again (``latency_ms_`` over ``p50``)."""
    above = lines[: lines.index(next(x for x in lines if set(x) <= {"-", " "}))]
    return ["".join(cells(lines, line)[i] for line in above) for i in range(len(spans(lines)))]


def column(lines: list[str], name: str) -> list[str]:
    """The cells under header ``name`` (one line per row in these tests)."""
    index = headers(lines).index(name)
    rule = next(i for i, x in enumerate(lines) if set(x) <= {"-", " "})
    return [cells(lines, line)[index] for line in lines[rule + 1 :]]


def test_print_reports_sorts_best_first_by_throughput_peak_and_shows_it() -> None:
    reports = [
        report_with(throughput_peak=10.0, batch_size=1, model_filename="/abs/path/a.pt2"),
        report_with(throughput_peak=30.0, batch_size=3, model_filename="/abs/path/c.pt2"),
        report_with(throughput_peak=20.0, batch_size=2, model_filename="/abs/path/b.pt2"),
    ]
    lines = table(reports)
    assert headers(lines) == [*SUMMARY_COLS, "throughput_peak"]
    assert column(lines, "throughput_peak") == ["30.000", "20.000", "10.000"]  # best first
    assert column(lines, "batch_size") == ["3", "2", "1"]
    assert column(lines, "model_filename") == ["c.pt2", "b.pt2", "a.pt2"]  # names, no folders
    # reverse as in NeuronPerf 1.x: False lowest first, True highest first
    assert column(table(reports, reverse=False), "batch_size") == ["1", "2", "3"]
    assert column(table(reports, reverse=True), "batch_size") == ["3", "2", "1"]


def test_print_reports_shows_lowest_latency_first() -> None:
    reports = [report_with(latency_ms_p50=v, batch_size=i) for i, v in enumerate([2.0, 1.0, 3.0])]
    lines = table(reports, cols=["batch_size"], sort_by="latency_ms_p50")
    assert column(lines, "latency_ms_p50") == ["1.000", "2.000", "3.000"]


@pytest.mark.parametrize("reverse", [False, True])
def test_print_reports_puts_none_last(reverse: bool) -> None:
    reports = [
        report_with(latency_ms_p50=None, model_filename="none1"),
        report_with(latency_ms_p50=2.0, model_filename="two"),
        report_with(latency_ms_p50=None, model_filename="none2"),
        report_with(latency_ms_p50=1.0, model_filename="one"),
    ]
    lines = table(reports, sort_by="latency_ms_p50", reverse=reverse)
    known = ["one", "two"] if not reverse else ["two", "one"]
    assert column(lines, "model_filename") == [*known, "none1", "none2"]
    assert column(lines, "latency_ms_p50")[2:] == ["N/A", "N/A"]


def test_print_reports_sorts_by_any_field_and_keeps_order_without_sort_by() -> None:
    reports = [report_with(model_name=n, batch_size=i) for i, n in enumerate("bca")]
    lines = table(reports, cols=["batch_size"], sort_by="model_name")
    assert headers(lines) == ["batch_size", "model_name"]
    assert column(lines, "model_name") == ["a", "b", "c"]
    assert column(table(reports, cols=["model_name"], sort_by=None), "model_name") == [
        "b",
        "c",
        "a",
    ]


def test_print_reports_sorts_by_metric_fields_of_real_reports() -> None:
    reports = get_reports(
        [
            raw([ends_worker([S])], metrics={"accuracy": a}, batch_size=b)
            for a, b in ((0.9, 1), (0.7, 2))
        ]
    )
    lines = table(reports, cols=["batch_size"], sort_by="accuracy")
    assert column(lines, "accuracy") == ["0.700", "0.900"]


def test_print_reports_formats_floats_and_none() -> None:
    reports = [
        report_with(throughput_avg=1234.56789, latency_ms_p50=0.0001234, latency_ms_p90=12.34567)
    ]
    cols = ["throughput_avg", "latency_ms_p50", "latency_ms_p90", "latency_ms_p99"]
    lines = table(reports, cols=cols, sort_by=None)
    assert lines[2].split() == ["1234.6", "0.000123", "12.346", "N/A"]


def test_print_reports_aligns_columns() -> None:
    reports = [
        report_with(throughput_peak=5.0, model_filename="short"),
        report_with(throughput_peak=123456.0, model_filename="a_much_longer_name"),
    ]
    lines = table(reports, cols=["throughput_peak", "model_filename"], sort_by="throughput_peak")
    numbers_end = {
        line.index(cell) + len(cell)
        for line, cell in zip(lines[2:], ["123456.0", "5.000"], strict=True)
    }
    assert len(numbers_end) == 1  # numbers right-aligned
    names_start = {
        line.index(name) for line, name in zip(lines[2:], ["a_much", "short"], strict=True)
    }
    assert len(names_start) == 1  # text left-aligned
    assert lines[1].split() == ["-" * len("throughput_peak"), "-" * len("a_much_longer_name")]


def test_print_reports_fits_the_width_columns_gives(monkeypatch: pytest.MonkeyPatch) -> None:
    """At 100 columns the summary table fits: headers wrap after an underscore first, then
    the file name at its underscores; the numbers stay whole."""
    name = "digits_mlp_b32_p1_pz7uuyjx.pt2"
    reports = [
        report_with(
            throughput_avg=1327523.286, throughput_peak=1400000.0, latency_ms_p50=0.023,
            latency_ms_p99=8.23, n_models=2, pipeline_size=1, workers_per_model=2,
            batch_size=32, model_filename=f"/a/long/absolute/folder/models/{name}",
        )
    ]  # fmt: skip
    natural = table(reports)
    assert len(natural) == 3 and max(map(len, natural)) > 100
    monkeypatch.setenv("COLUMNS", "100")
    lines = table(reports)
    assert max(map(len, lines)) <= 100
    assert headers(lines) == [*SUMMARY_COLS, "throughput_peak"]
    assert column(lines, "throughput_avg")[0] == "1327523.3"
    rule = next(i for i, x in enumerate(lines) if set(x) <= {"-", " "})
    file_cells = [
        cells(lines, line)[SUMMARY_COLS.index("model_filename")] for line in lines[rule + 1 :]
    ]
    assert "".join(file_cells) == name and len(file_cells) == 2


def test_print_reports_writes_to_stdout_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    print_reports([report_with(throughput_peak=1.0)])
    assert capsys.readouterr().out.splitlines()[0].split()[-1] == "throughput_peak"


@pytest.mark.parametrize(
    "kwargs",
    [{"cols": ["throughput_avg", "thruput"]}, {"sort_by": "thruput"}],
)
def test_unknown_column_or_sort_field_lists_valid_fields(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ReportError, match="'thruput'") as info:
        table([report_with(throughput_peak=1.0)], **kwargs)
    assert "Valid fields:" in str(info.value)
    assert "latency_ms_p99" in str(info.value).split("Valid fields:")[1]


# ---------------------------------------------------------------- CSV and JSON


@pytest.fixture
def reports() -> list[dict[str, Any]]:
    first = raw([ends_worker([S, 2 * S])], metrics={"accuracy": 0.5})
    second = raw([], status="error", error="it broke, retry", metrics={"f1": 0.25})
    return get_reports([first, second], cost_per_hour=1.0)


def test_csv_writes_every_field_reference_order_first_and_empty_cells(
    reports: list[dict[str, Any]], tmp_path: Path
) -> None:
    name = write_csv(reports, tmp_path / "out.csv")
    assert name == os.fspath(tmp_path / "out.csv")
    with open(name, newline="") as f:
        rows = list(csv.reader(f))
    header = rows[0]
    assert header == [*REPORT_FIELDS, "performance_level", "accuracy", "f1"]
    first, second = (dict(zip(header, row, strict=True)) for row in rows[1:])
    assert float(first["throughput_avg"]) == reports[0]["throughput_avg"]  # full precision
    assert first["f1"] == ""  # missing: an empty cell, not a word to parse
    assert second["throughput_avg"] == "" and second["accuracy"] == ""
    assert second["error"] == "it broke, retry"  # quoted, comma survives


def test_csv_selected_columns(reports: list[dict[str, Any]], tmp_path: Path) -> None:
    name = write_csv(reports, tmp_path / "out.csv", cols=["batch_size", "accuracy"])
    assert Path(name).read_text() == "batch_size,accuracy\n4,0.5\n4,\n"
    with pytest.raises(ReportError, match=r"'nope'.*Valid fields:"):
        write_csv(reports, tmp_path / "bad.csv", cols=["nope"])
    assert not (tmp_path / "bad.csv").exists()


def test_csv_writes_lists_as_json_not_python_reprs(tmp_path: Path) -> None:
    reports = [
        report_with(input_shapes=[[1, 64]], input_dtypes=["float32"], multiprocess=True,
                    index_extra={"a": None}, model_name="m", cost_per_1m_inf=None)
    ]  # fmt: skip
    cols = ["input_shapes", "input_dtypes", "multiprocess", "index_extra", "cost_per_1m_inf"]
    name = write_csv(reports, tmp_path / "out.csv", cols=cols)
    with open(name, newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert json.loads(row["input_shapes"]) == [[1, 64]]
    assert json.loads(row["input_dtypes"]) == ["float32"]
    assert json.loads(row["multiprocess"]) is True
    assert json.loads(row["index_extra"]) == {"a": None}
    assert row["cost_per_1m_inf"] == ""


def test_json_round_trip(reports: list[dict[str, Any]], tmp_path: Path) -> None:
    name = write_json(reports, tmp_path / "out.json")
    assert json.loads(Path(name).read_text()) == reports


def test_json_refuses_nan_in_hand_made_reports(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="JSON"):
        write_json([{"throughput_avg": float("nan")}], tmp_path / "nan.json")
    assert list(tmp_path.iterdir()) == []


def test_empty_reports_write_an_empty_list_or_only_a_header(tmp_path: Path) -> None:
    assert Path(write_json([], tmp_path / "e.json")).read_text() == "[]\n"
    header = Path(write_csv([], tmp_path / "e.csv")).read_text()
    assert header == ",".join(REPORT_FIELDS) + "\n"


@pytest.mark.parametrize(("writer", "ext"), [(write_csv, "csv"), (write_json, "json")])
def test_default_filename_in_current_directory(
    writer: Any, ext: str, reports: list[dict[str, Any]], tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.chdir(tmp_path)
    name = writer(reports)
    assert re.fullmatch(rf"resnet\.results-\d{{8}}-\d{{6}}\.{ext}", name)
    assert [p.name for p in tmp_path.iterdir()] == [name]
    assert re.fullmatch(rf"model\.results-\d{{8}}-\d{{6}}\.{ext}", writer([]))
    slashed = writer([{**reports[0], "model_name": "org/bert"}])
    assert slashed.startswith("org_bert.results-")
    assert (tmp_path / slashed).exists()


def test_rewrites_replace_the_file_and_leave_no_temp_files(
    reports: list[dict[str, Any]], tmp_path: Path
) -> None:
    target = tmp_path / "run.json"
    write_json(reports[:1], target)
    write_json(reports, target)  # incremental: same file after the next config
    assert len(json.loads(target.read_text())) == 2
    write_csv(reports, tmp_path / "run.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.csv", "run.json"]


def test_a_failed_write_keeps_the_old_file_and_no_temp_file(
    reports: list[dict[str, Any]], tmp_path: Path, monkeypatch: Any
) -> None:
    target = tmp_path / "run.csv"
    write_csv(reports[:1], target)
    before = target.read_text()

    def crash(src: Any, dst: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        write_csv(reports, target)
    assert target.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["run.csv"]
